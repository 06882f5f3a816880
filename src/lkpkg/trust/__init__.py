"""Signing and verification: Docker Content Trust (notary) and cosign-compatible signatures.

Both are `lkpkg.trust.backend.TrustBackend`s (sign, verify), composed by `pipeline/sign.py`.
`dct` signs pushed tags with Docker Content Trust, as `docker push` with DOCKER_CONTENT_TRUST=1
does, by driving Debian's `notary` CLI without a terminal; `cosign` writes and checks
cosign-style signatures stored in the registry; `preflight` checks, before a push sends
anything, that signing will work. Settings (`config.DCTSettings`) and passphrases are read by
the CLI and passed in as values. Module map and invariants: README.md.
"""
