# lkpkg-tree.mk: the Makefile of a tree of packages (linuxkit's pkg/Makefile), on lkpkg.
#
# The tree's Makefile is two lines (`lkpkg init --tree DIR` writes them):
#
#     LKPKG ?= lkpkg
#     include $(shell $(LKPKG) makefile --tree)
#
# Every subdirectory holding a build.yml is a package, and each target runs lkpkg once with
# all of them (lkpkg orders them so that a package is built before those that use it):
#
#   make -C pkg build                      lkpkg build pkg/a pkg/b ... (tag is the same)
#   make -C pkg ORG=wombat NOTRUST=1 push  lkpkg push --org wombat --notrust pkg/a pkg/b ...
#   make -C pkg show-tag                   ORG/IMAGE:HASH of each package
#   make -C pkg forcetag, forcepush        build again even if the cache has the images
#   DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=... make -C pkg    push and sign them all
#
# Variables are those of lkpkg.mk (ORG, HASH, TAG_MODE, NOTRUST, PLATFORMS, LKPKG, LKPKG_FLAGS);
# LKPKG_DIRS='a b' picks packages by hand. Directory names must not contain whitespace.

ifeq ($(origin LKPKG_DIRS),undefined)
lkpkg_tree := $(patsubst %/,%,$(dir $(firstword $(MAKEFILE_LIST))))
LKPKG_DIRS := $(sort $(patsubst ./%,%,$(patsubst %/build.yml,%,$(wildcard $(lkpkg_tree)/*/build.yml))))
lkpkg_no_dirs := no package: no subdirectory of $(abspath $(lkpkg_tree)) holds a build.yml
endif

include $(dir $(lastword $(MAKEFILE_LIST)))lkpkg.mk
