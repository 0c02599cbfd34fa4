"""Ingestion of vector-store files: text extraction, offline token counting and chunking."""
