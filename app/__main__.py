"""``python -m app`` runs the ``cartmem`` command."""

from app.cli import run

run()
