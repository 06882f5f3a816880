"""Registry credentials and TLS settings, read the way `docker login` and the docker daemon left
them: `config.json` (`auths`, `credsStore`, `credHelpers`), `docker-credential-*` helpers, and
`certs.d/<host>/` directories. See README.md in this package for the rules and invariants.

`keychain.Keychain` answers "which credential for this registry"; `tls.ssl_context_for` and
`tls.plain_http_allowed` answer "how to speak TLS to this host". Nothing here speaks HTTP.
"""
