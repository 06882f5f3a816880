"""Supply-chain records of built images: SBOMs (SPDX 2.3), SLSA provenance, in-toto
statements, and their BuildKit-style attestation manifests in the cache."""
