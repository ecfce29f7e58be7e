"""Alembic migrations of the site store (``env.py``, revisions in ``versions/``); run by ``Store.open``.

Both folders are packages so that setuptools ships their modules in the wheel (``setup.py`` discovers
packages by their ``__init__.py``); Alembic itself loads ``env.py`` and the revisions by file path.
"""
