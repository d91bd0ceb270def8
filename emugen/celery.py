"""Celery's entry point: `celery -A emugen worker|beat|flower` look for `app` here.

The app itself is wired in `emugen.fleet.app`; this module only names it for Celery.
"""

from emugen.fleet.app import app

__all__ = ["app"]
