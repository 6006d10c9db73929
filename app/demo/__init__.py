"""`cartmem demo`: one shopping session through ingest, answers and reconciliation."""

from app.demo.run import DemoReport, run_demo

__all__ = ["DemoReport", "run_demo"]
