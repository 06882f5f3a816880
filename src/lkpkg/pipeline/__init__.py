"""Pipelines that compose the pieces: package → build → cache (→ registry → signature)."""
