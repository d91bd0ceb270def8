"""Where landed batches also go: the landing zone (files under a local path or fsspec URL)."""
