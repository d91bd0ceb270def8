"""`emugen export`: the store's layers and the truth as Parquet, JSON Lines or CSV, in chunks.

May import everything up to the pipeline, and grade (for the truth's shape).
"""

KINDS = ("bronze", "silver", "quarantine", "gold", "truth")
FORMATS = ("parquet", "jsonl", "csv")
STREAMS = ("companies", "events")
