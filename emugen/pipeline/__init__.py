"""The medallion stages as plain functions over a SQLAlchemy Session: bronze, silver, gold."""
