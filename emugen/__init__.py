"""emugen: seeded synthetic data flowing bronze -> silver -> gold, on a Celery worker fleet."""

__version__ = "0.1.0"
