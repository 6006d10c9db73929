"""Evidence for each flag: the moments a flag rests on, drawn from the thumbnails ingest
kept, with the product's box where the model answered one and its catalog image."""

from app.evidence.service import EvidenceFile, write_evidence

__all__ = ["EvidenceFile", "write_evidence"]
