"""Ingest: PDFs, images and video frames as one streaming source of Items."""

from mmrag.pipeline.ingest.options import IngestConfig

__all__ = ["IngestConfig"]
