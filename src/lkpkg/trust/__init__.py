"""Signing and verification: Docker Content Trust (notary) and cosign-compatible signatures."""
