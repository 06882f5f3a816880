# lkpkg.mk: the seed's package Makefile, word for word, with lkpkg doing the work.
#
# A package's Makefile is two lines (`lkpkg init DIR` writes them):
#
#     LKPKG ?= lkpkg
#     include $(shell $(LKPKG) makefile)
#
#   DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=... make
#                           build, push and sign ORG/IMAGE:HASH-ARCH, then the index
#                           ORG/IMAGE:HASH (lkpkg push .)
#   make ORG=wombat NOTRUST=1 tag            local image wombat/IMAGE:HASH-ARCH (lkpkg build)
#   make ORG=wombat NOTRUST=1 push           push wombat/IMAGE:HASH-ARCH and wombat/IMAGE:HASH
#   make ORG=wombat NOTRUST=1 HASH=foo push  the same as wombat/IMAGE:foo-ARCH and :foo
#   make show-tag                            print ORG/IMAGE:HASH
#   make forcetag, make forcepush            build again even if the cache has the image
#   make build                               the same as make tag
#
# Variables (an empty one adds no flag):
#   ORG          --org ORG (may carry a registry: localhost:5000/wombat)
#   HASH         --hash HASH
#   TAG_MODE     --tag-mode TAG_MODE: `deps` folds each package's dependencies' hashes into its
#                tag, so a new base rebuilds what is built on it (default: tree, linuxkit's tag)
#   NOTRUST      any non-empty value: --notrust (push without Docker Content Trust)
#   PLATFORMS    --platforms linux/amd64,linux/arm64 (default: the host's arch, passed
#                explicitly: `make tag`/`push` build the machine's arch, as the seed's did,
#                while `lkpkg build`/`push` alone build every arch of build.yml, as linuxkit)
#   LKPKG        the lkpkg command (default: lkpkg on PATH)
#   LKPKG_FLAGS  extra flags for build and push, as shell words: LKPKG_FLAGS='-v --cache /c'
#   LKPKG_DIRS   the package directories (default: the directory of the Makefile)
# Each value reaches lkpkg as one argument, whatever characters it holds.
#
# Passphrases are read from the environment by lkpkg, never from make: setting
# DOCKER_CONTENT_TRUST_*_PASSPHRASE or COSIGN_PASSWORD on make's command line (where ps and
# shell history show it) or in a makefile is refused.

LKPKG ?= lkpkg
LKPKG_FLAGS ?=

ifeq ($(origin LKPKG_DIRS),undefined)
LKPKG_DIRS := $(patsubst %/,%,$(dir $(firstword $(MAKEFILE_LIST))))
endif

lkpkg_secrets := DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE \
  DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE COSIGN_PASSWORD
$(foreach v,$(lkpkg_secrets),$(if $(filter command file override,$(firstword $(origin $(v)))),\
  $(error $(v) must come from the environment and not from make's command line or a \
  makefile: run $(v)=... make)))

# -- quoting --------------------------------------------------------------------------------

lkpkg_comma := ,
lkpkg_safe_chars := a b c d e f g h i j k l m n o p q r s t u v w x y z \
  A B C D E F G H I J K L M N O P Q R S T U V W X Y Z 0 1 2 3 4 5 6 7 8 9 \
  _ - . / : @ + = % $(lkpkg_comma)
# $(call lkpkg_unsafe,TEXT,CHARS): what is left of TEXT once every character in CHARS is gone.
lkpkg_unsafe = $(if $(2),$(call lkpkg_unsafe,$(subst $(firstword $(2)),,$(1)),$(wordlist 2,$(words $(2)),$(2))),$(1))
# $(call lkpkg_quote,VALUE): VALUE as one shell word; single-quoted unless plainly safe.
lkpkg_quote = $(if $(and $(filter 1,$(words $(1))),$(if $(call lkpkg_unsafe,$(1),$(lkpkg_safe_chars)),,1)),$(1),'$(subst ','\'',$(1))')
# $(call lkpkg_option,FLAG,VALUE): " FLAG VALUE", or nothing when VALUE is empty.
lkpkg_option = $(if $(strip $(2)), $(1) $(call lkpkg_quote,$(2)))

# -- the command lines ----------------------------------------------------------------------

# $(call lkpkg_var,NAME): the variable's value; one from the environment is taken literally
# (a '$' there is text, not a make reference to expand).
lkpkg_var = $(if $(filter environment,$(firstword $(origin $(1)))),$(value $(1)),$($(1)))
lkpkg_org = $(call lkpkg_option,--org,$(call lkpkg_var,ORG))
lkpkg_hash = $(call lkpkg_option,--hash,$(call lkpkg_var,HASH))$(lkpkg_tag_mode)
lkpkg_tag_mode = $(call lkpkg_option,--tag-mode,$(call lkpkg_var,TAG_MODE))
lkpkg_notrust = $(if $(strip $(call lkpkg_var,NOTRUST)), --notrust)
# The host's GOARCH, from the kernel's machine name (x86_64 → amd64, aarch64 → arm64, ...).
lkpkg_host_arch = $(or $(strip $(foreach m,x86_64:amd64 aarch64:arm64 arm64:arm64 armv7l:arm \
  armv6l:arm i686:386 i386:386 ppc64le:ppc64le s390x:s390x riscv64:riscv64 loongarch64:loong64 \
  mips64:mips64le,$(if $(filter $(firstword $(subst :, ,$(m))),$(lkpkg_machine)),\
  $(lastword $(subst :, ,$(m)))))),$(lkpkg_machine))
lkpkg_machine := $(shell uname -m)
lkpkg_platforms = $(call lkpkg_option,--platforms,$(or $(call lkpkg_var,PLATFORMS),linux/$(lkpkg_host_arch)))
lkpkg_extra = $(if $(strip $(LKPKG_FLAGS)), $(LKPKG_FLAGS))
lkpkg_dirs = $(if $(strip $(LKPKG_DIRS)), $(foreach d,$(LKPKG_DIRS),$(call lkpkg_quote,$(d))),\
  $(error $(or $(lkpkg_no_dirs),no package directory: LKPKG_DIRS is empty)))

lkpkg_show_tag = $(LKPKG) show-tag$(lkpkg_org)$(lkpkg_hash)$(lkpkg_dirs)
lkpkg_build = $(LKPKG) build$(lkpkg_org)$(lkpkg_hash)$(lkpkg_platforms)$(lkpkg_extra)
lkpkg_push = $(LKPKG) push$(lkpkg_org)$(lkpkg_hash)$(lkpkg_notrust)$(lkpkg_platforms)$(lkpkg_extra)

# -- targets --------------------------------------------------------------------------------

ifeq ($(.DEFAULT_GOAL),)
.DEFAULT_GOAL := push
endif

.PHONY: push forcepush tag forcetag build show-tag

push:
	$(lkpkg_push)$(lkpkg_dirs)

forcepush:
	$(lkpkg_push) --force$(lkpkg_dirs)

tag build:
	$(lkpkg_build)$(lkpkg_dirs)

forcetag:
	$(lkpkg_build) --force$(lkpkg_dirs)

show-tag:
	@$(lkpkg_show_tag)
