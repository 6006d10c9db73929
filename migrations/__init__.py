"""Alembic environment and versions of the cartmem schema (run through ``cartmem db``)."""
