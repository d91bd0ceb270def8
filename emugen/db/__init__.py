"""Storage: SQLAlchemy 2 tables for batches, bronze, truth, silver, quarantine and gold.

May import vocabulary and errors only: nothing above the store.
"""
