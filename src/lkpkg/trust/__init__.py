"""Signing and verification: Docker Content Trust (notary) and cosign-compatible signatures.

`lkpkg.trust.dct` signs pushed tags with Docker Content Trust, as `docker push` with
DOCKER_CONTENT_TRUST=1 does, by driving Debian's `notary` CLI without a terminal: passphrases
come from DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE / DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE
and reach notary only through its environment. The push pipeline calls
`check_passphrases(env, may_need_root=...)` before pushing anything, then
`DCTSigner(TrustConfig.for_registry(domain)).sign(gun, [Target(tag, digest, size)])` after
pushing each platform image and the index. Its invariants are in README.md.

`lkpkg.trust.cosign` writes and checks cosign-style signatures stored in the registry.
"""
