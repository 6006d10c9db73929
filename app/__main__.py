"""``python -m app`` runs the ``cartmem`` command."""

from app.cli import run

# guarded: a process pool's spawned children (`cartmem synth --workers`) import this module
if __name__ == "__main__":
    run()
