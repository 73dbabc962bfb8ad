"""Persistence: the engine, the SQLModel tables and one query module per table.

Only this package imports sqlmodel/SQLAlchemy. PostgreSQL-specific SQL stays in
small functions here so an embedded SQLite mode can swap them later.
"""
