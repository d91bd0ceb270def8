"""`emugen backfill`: simulated production history fanned out over the Celery fleet."""
