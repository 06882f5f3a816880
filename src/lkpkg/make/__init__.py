"""The seed's `make` interface, kept word for word, on top of lkpkg.

This package holds data, not code: two makefiles that ship in the wheel and that a package's
(or a tree's) two-line `Makefile` includes by asking `lkpkg makefile [--tree]` where they are:

    LKPKG ?= lkpkg
    include $(shell $(LKPKG) makefile)

- `lkpkg.mk`, for one package directory: `make` (push and sign), `tag`, `push`, `show-tag`,
  `forcetag`, `forcepush` (and `build`, the same as `tag`);
- `lkpkg-tree.mk`, for a directory whose subdirectories are packages: the same targets over
  every subdirectory holding a build.yml, as one lkpkg invocation.

Invariants:

- every target is exactly one lkpkg command; the makefiles hold no build logic of their own;
- make variables map to flags one to one (ORG → --org, HASH → --hash, NOTRUST non-empty →
  --notrust, PLATFORMS → --platforms, LKPKG_FLAGS verbatim); an empty variable adds nothing;
- values are single-quoted for the shell, so any value reaches lkpkg as one argument;
- passphrases come from the environment only: a makefile refuses to run when one is set on
  make's command line or in a makefile.
"""
