"""The consumer side: pinning the images a LinuxKit YAML uses, and planning builds for a fleet.

`verify` is the trust policy consumers apply before they use an image (`pin`, `cache pull`);
`yamlrefs` finds and rewrites image references in LinuxKit YAML files; `pin` resolves,
verifies and pins them; `plan` turns a package tree into waves of package-by-arch cells for
CI runners. Invariants are in README.md.
"""
