"""Storage: SQLAlchemy 2 tables for batches, bronze, truth, silver, quarantine and gold."""
