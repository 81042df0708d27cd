"""Persistence: SQLAlchemy 2 models, repositories and a unit of work; Alembic migrations.

The same code runs on SQLite (the embedded default) and PostgreSQL (psycopg 3), chosen by URL.
"""
