"""Alembic migrations of the hub's database: ``env.py`` and one file per revision in ``versions/``.

`hub.migrate` runs them (at every start, and with ``hub db upgrade``); README.md here says how to add one.
"""
