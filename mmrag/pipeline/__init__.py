"""Pipeline stages: ingest, indexing job, retrieval plans, RAG, evaluation."""
