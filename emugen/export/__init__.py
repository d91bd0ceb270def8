"""`emugen export`: the store's layers and the truth as Parquet, JSON Lines or CSV, in chunks."""

KINDS = ("bronze", "silver", "quarantine", "gold", "truth")
FORMATS = ("parquet", "jsonl", "csv")
STREAMS = ("companies", "events")
