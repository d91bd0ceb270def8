"""Grading the answer: a pipeline's gold against the gold its declared lateness policy should
produce, computed from the truth and the arrival ledger, every wrong cell explained by records."""
