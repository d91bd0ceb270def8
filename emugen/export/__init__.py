"""`emugen export`: the store's layers, the truth and the arrival ledger as Parquet, JSON Lines
or CSV, in chunks.

May import everything up to the pipeline, and grade (for the truth's shape).
"""

KINDS = ("bronze", "silver", "quarantine", "gold", "truth", "arrivals")
FORMATS = ("parquet", "jsonl", "csv")
STREAMS = ("companies", "events")
