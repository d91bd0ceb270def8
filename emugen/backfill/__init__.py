"""`emugen backfill`: simulated production history fanned out over the Celery fleet.

May import everything up to the pipeline (the fleet sends its ticks: fleet/backfill.py).
"""
