"""Revisions of the site store, oldest first (``0001_initial``, ...); Alembic skips this file."""
