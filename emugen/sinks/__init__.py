"""Where landed batches also go: the landing zone (files under a local path or fsspec URL).

May import vocabulary, errors, files, settings and db; the pipeline lands and prunes
through it, so it never imports the pipeline.
"""
