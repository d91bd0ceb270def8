"""Grading an outside pipeline's output against the truth emugen recorded out of band.

May import everything up to the pipeline.
"""
