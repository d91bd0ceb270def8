"""The medallion stages as plain functions over a SQLAlchemy Session: bronze, silver, gold.

May import vocabulary, errors, contract, files, settings, generate, db and sinks.
"""
