# ruff: noqa: E501  (exact one-line messages are compared whole)
"""build.yml parsing: the corpus parses to the right values; every bad input is one exact line."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from lkpkg.errors import EXIT_BAD_INPUT, BuildYmlError, ReferenceError_
from lkpkg.package.buildyml import (
    BuildSpec,
    DockerImagesDepends,
    ExtraSource,
    parse_build_yml,
    parse_build_yml_text,
)
from lkpkg.reference import org_problem, split_host, validate_org
from lkpkg.reference import repository_path_problem as validate_repository_path

CORPUS = Path(__file__).parent / "buildyml_corpus"
SHOWN = "pkg/foo/build.yml"
DIGEST_A = "c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6b"
DIGEST_B = "9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7"

# Each corpus file and the fields its BuildSpec has beyond the defaults.
EXPECTED: dict[str, dict[str, Any]] = {
    "minimal.yml": {"image": "hello"},
    "everything.yml": {
        "image": "wireguard",
        "org": "linuxkit",
        "arches": ("amd64", "arm64", "riscv64"),
        "gitrepo": "https://github.com/linuxkit/linuxkit",
        "network": True,
        "disable_cache": True,
        "disable_content_trust": True,
        "dockerfile": "Dockerfile",
        "tag_template": "{{.Hash}}",
        "extra_sources": (
            ExtraSource(src="../../tools/alpine/packages", dst="/packages"),
            ExtraSource(src="../common", dst="/common"),
        ),
        "build_args": (
            "ALPINE_IMAGE=@lkt:pkg:../alpine",
            "TOOLS=@lkt:pkgs:../tools/*",
            "GO_FLAGS=-trimpath -ldflags=-s",
        ),
        "depends": DockerImagesDepends(target_dir="images", from_file="images.lst"),
        "config": {
            "capabilities": ["CAP_NET_ADMIN", "CAP_SYS_MODULE"],
            "binds": [
                "/lib/modules:/lib/modules",
                "/run:/run",
                "/etc/resolv.conf:/etc/resolv.conf",
            ],
            "net": "host",
            "pid": "host",
            "rootfsPropagation": "shared",
            "runtime": {"mkdir": ["/var/lib/wireguard"]},
            "sysctl": {"net.ipv4.ip_forward": "1"},
        },
    },
    "network.yml": {"image": "ca-certificates", "network": True},
    "disable-cache.yml": {"image": "kernel-compile", "network": True, "disable_cache": True},
    "arches-subset.yml": {"image": "grub", "arches": ("amd64",)},
    "org-registry.yml": {"image": "sshd", "org": "localhost:5000/wombat"},
    "tag-template.yml": {"image": "kernel", "tag_template": "{{.Hash}}-foo"},
    "dockerfile-alt.yml": {
        "image": "alpine",
        "dockerfile": "Dockerfile.alt",
        "arches": ("amd64", "arm64", "s390x"),
    },
    "getty-devices.yml": {
        "image": "getty",
        "config": {
            "pid": "host",
            "net": "host",
            "binds": ["/etc/resolv.conf:/etc/resolv.conf", "/run:/run"],
            # Device.Mode is a string in linuxkit: the scalar's text, as written.
            "devices": [
                {"path": "/dev/console", "type": "c", "major": 5, "minor": 1, "mode": "0666"}
            ],
            "capabilities": ["all"],
        },
    },
    "content-trust-legacy.yml": {
        "image": "sysctl",
        "org": "linuxkit",
        "gitrepo": "https://github.com/linuxkit/linuxkit",
        "disable_content_trust": True,
    },
    "flow-style.yml": {
        "image": "dhcpcd",
        "arches": ("amd64", "arm64"),
        "build_args": ("VERSION=10.0.6",),
    },
    "depends-list.yml": {
        "image": "images-bundle",
        "depends": DockerImagesDepends(
            target="images.tar",
            images=(
                f"docker.io/library/alpine:3.19@sha256:{DIGEST_A}",
                f"docker.io/library/busybox@sha256:{DIGEST_B}",
            ),
        ),
    },
}


def _error(text: str) -> BuildYmlError:
    with pytest.raises(BuildYmlError) as caught:
        parse_build_yml_text(text, SHOWN)
    return caught.value


# Corpus


def test_every_corpus_file_has_expectations() -> None:
    assert sorted(path.name for path in CORPUS.glob("*.yml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_parses_to_expected_spec(name: str) -> None:
    path = CORPUS / name
    spec = parse_build_yml(path, f"pkg/{name}")
    assert spec == BuildSpec(path=path, display_path=f"pkg/{name}", **EXPECTED[name])


def test_minimal_spec_has_linuxkit_defaults() -> None:
    spec = parse_build_yml(CORPUS / "minimal.yml")
    assert (spec.org, spec.arches, spec.dockerfile, spec.tag_template) == (
        "linuxkit",
        ("amd64", "arm64", "riscv64"),
        "Dockerfile",
        "{{.Hash}}",
    )
    assert (spec.network, spec.disable_cache, spec.disable_content_trust) == (False, False, False)
    assert (spec.config, spec.depends, spec.gitrepo) == (None, None, None)


def test_display_path_defaults_to_the_path() -> None:
    path = CORPUS / "minimal.yml"
    assert parse_build_yml(path).display_path == str(path)


def test_text_parse_has_no_path() -> None:
    spec = parse_build_yml_text("image: hello\n", SHOWN)
    assert (spec.path, spec.display_path) == (None, SHOWN)


def test_config_holds_only_builtin_json_types() -> None:
    config = parse_build_yml(CORPUS / "everything.yml").config

    def exact_types(value: object) -> set[type]:
        if isinstance(value, dict):
            return {dict}.union(*(exact_types(v) for v in value.values()))
        if isinstance(value, list):
            return {list}.union(*(exact_types(v) for v in value))
        return {type(value)}

    assert exact_types(config) <= {dict, list, str, int, float, bool, type(None)}
    assert json.loads(json.dumps(config)) == config


def test_strings_are_plain_str_even_when_block_or_tagged() -> None:
    spec = parse_build_yml_text("image: !!str hello\ngitrepo: |-\n  https://x\n", SHOWN)
    assert (type(spec.image), type(spec.gitrepo)) == (str, str)
    assert spec.gitrepo == "https://x"


def test_config_integers_follow_go_reading() -> None:
    # Device.major/minor are int64 (Go base-0 reading: 0644 octal, 0x1f, 0o17); mode is a
    # string and keeps its text; uid is interface{} and keeps the resolved integer.
    text = (
        "image: foo\n"
        "config:\n"
        "  devices:\n"
        "    - {mode: 0644, major: 0x1f, minor: 0o17}\n"
        "    - {mode: &m 0600, major: 010, minor: 1_0}\n"
        "  uid: *m\n"
    )
    config = parse_build_yml_text(text, SHOWN).config
    assert config == {
        "devices": [
            {"mode": "0644", "major": 31, "minor": 15},
            {"mode": "0600", "major": 8, "minor": 10},
        ],
        "uid": 0o600,
    }


def test_anchored_booleans_are_booleans() -> None:
    spec = parse_build_yml_text("image: foo\nnetwork: &on true\ndisable-cache: *on\n", SHOWN)
    assert (spec.network, spec.disable_cache) == (True, True)


def test_byte_order_mark_is_ignored() -> None:
    assert parse_build_yml_text("\ufeffimage: foo\n", SHOWN).image == "foo"


def test_spec_is_frozen_and_hashable() -> None:
    spec = parse_build_yml(CORPUS / "everything.yml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.image = "other"  # type: ignore[misc]
    assert hash(spec) == hash(parse_build_yml(CORPUS / "everything.yml"))


# Derived values


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("{{.Hash}}", "abc123"),
        ("{{ .Hash }}", "abc123"),
        ("{{.Hash}}-foo", "abc123-foo"),
        ("v1-{{.Hash}}-{{.Hash}}", "v1-abc123-abc123"),
        ("latest", "latest"),
    ],
)
def test_render_tag(template: str, rendered: str) -> None:
    spec = parse_build_yml_text(f"image: foo\ntag: '{template}'\n", SHOWN)
    assert spec.render_tag("abc123") == rendered


def test_render_tag_keeps_backslashes_in_hash_literal() -> None:
    spec = parse_build_yml_text("image: foo\n", SHOWN)
    assert spec.render_tag(r"a\1b") == r"a\1b"


def test_build_arg_pairs_keep_order_and_split_at_first_equals() -> None:
    spec = parse_build_yml(CORPUS / "everything.yml")
    assert spec.build_arg_pairs == [
        ("ALPINE_IMAGE", "@lkt:pkg:../alpine"),
        ("TOOLS", "@lkt:pkgs:../tools/*"),
        ("GO_FLAGS", "-trimpath -ldflags=-s"),
    ]


def test_build_arg_value_may_be_empty() -> None:
    spec = parse_build_yml_text("image: foo\nbuildArgs: ['EMPTY=']\n", SHOWN)
    assert spec.build_arg_pairs == [("EMPTY", "")]


# Errors: each is raised as BuildYmlError with this exact one-line message.

ERRORS: list[tuple[str, str]] = [
    ("", "pkg/foo/build.yml:1: file is empty; a build.yml needs at least 'image'"),
    ("# nothing\n", "pkg/foo/build.yml:1: file is empty; a build.yml needs at least 'image'"),
    ("- image: foo\n", "pkg/foo/build.yml:1: must be a mapping of keys to values, got list"),
    ("hello\n", "pkg/foo/build.yml:1: must be a mapping of keys to values, got string 'hello'"),
    (
        "image: foo\narches: [amd64\n",
        "pkg/foo/build.yml:3: invalid YAML: while parsing a flow sequence; expected ',' or ']', but got '<stream end>'",
    ),
    (
        "image: foo\x00\n",
        "pkg/foo/build.yml:1: invalid YAML: unacceptable character #x0000: special characters are not allowed",
    ),
    (
        "image: foo\nnetwork: true\nimage: bar\n",
        "pkg/foo/build.yml:3: duplicate key 'image' (already defined at line 1)",
    ),
    (
        "image: foo\nconfig:\n  net: host\n  net: none\n",
        "pkg/foo/build.yml:4: duplicate key 'net' (already defined at line 3)",
    ),
    (
        "image: foo\narch: [amd64]\n",
        "pkg/foo/build.yml:2: unknown key 'arch' (did you mean 'arches'?)",
    ),
    (
        "image: foo\nbuildargs: []\n",
        "pkg/foo/build.yml:2: unknown key 'buildargs' (did you mean 'buildArgs'?)",
    ),
    ("image: foo\nzzz: 1\n", "pkg/foo/build.yml:2: unknown key 'zzz'"),
    ("image: foo\n1: x\n", "pkg/foo/build.yml:2: unknown key '1'"),
    ("org: foo\narches: [amd64]\n", "pkg/foo/build.yml:1: missing required key 'image'"),
    (
        "image: foo\nnetwork: 1\n",
        "pkg/foo/build.yml:2: 'network' must be a boolean (true/false, yes/no, on/off), got integer 1",
    ),
    (
        "image: foo\ndisable-cache: 'true'\n",
        "pkg/foo/build.yml:2: 'disable-cache' must be a boolean (true/false, yes/no, on/off), got string 'true'",
    ),
    ("image:\n", "pkg/foo/build.yml:1: missing required key 'image'"),
    ("image: ''\n", "pkg/foo/build.yml:1: 'image' must not be empty"),
    ("image: [foo]\n", "pkg/foo/build.yml:1: 'image' must be a string, got list"),
    (
        "image: Foo\n",
        "pkg/foo/build.yml:1: invalid image name 'Foo': repository name must be lowercase",
    ),
    (
        "image: foo__-bar\n",
        "pkg/foo/build.yml:1: invalid image name 'foo__-bar': invalid path component 'foo__-bar' (lowercase letters and digits, separated by '.', '_', '__' or dashes)",
    ),
    (
        "image: a//b\n",
        "pkg/foo/build.yml:1: invalid image name 'a//b': empty path component (doubled, leading or trailing '/')",
    ),
    (
        "image: foo\norg: Wombat\n",
        "pkg/foo/build.yml:2: invalid org 'Wombat': repository name must be lowercase",
    ),
    (
        "image: foo\norg: bad_host:5000/wombat\n",
        "pkg/foo/build.yml:2: invalid org 'bad_host:5000/wombat': invalid domain 'bad_host'",
    ),
    (
        "image: foo\norg: localhost:99999/wombat\n",
        "pkg/foo/build.yml:2: invalid org 'localhost:99999/wombat': invalid port '99999' in domain 'localhost:99999'",
    ),
    (
        "image: foo\norg: ghcr.io/\n",
        "pkg/foo/build.yml:2: invalid org 'ghcr.io/': must not end with '/'",
    ),
    (
        "org: oooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo\nimage: iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii\n",
        "pkg/foo/build.yml:2: repository name 'oooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo...' is 261 characters; the limit is 255",
    ),
    (
        "image: foo\narches:\n  - amd64\n  - x86_64\n",
        "pkg/foo/build.yml:4: unknown arch 'x86_64' in 'arches' (did you mean 'amd64'?)",
    ),
    (
        "image: foo\narches: [aarch64]\n",
        "pkg/foo/build.yml:2: unknown arch 'aarch64' in 'arches' (did you mean 'arm64'?)",
    ),
    (
        "image: foo\narches: [sparc]\n",
        "pkg/foo/build.yml:2: unknown arch 'sparc' in 'arches' (known: amd64, arm64, arm, 386, ppc64le, s390x, riscv64, mips64le, loong64)",
    ),
    (
        "image: foo\narches: amd64\n",
        "pkg/foo/build.yml:2: 'arches' must be a list of strings, got string 'amd64'",
    ),
    (
        "image: foo\nextra-sources:\n  - ../ok:/ok\n  - '../x'\n",
        "pkg/foo/build.yml:4: 'extra-sources' item '../x' must be SRC:DST, with exactly one ':' and both sides non-empty",
    ),
    (
        "image: foo\nextra-sources:\n  - ../ok:/ok\n  - 'a:b:c'\n",
        "pkg/foo/build.yml:4: 'extra-sources' item 'a:b:c' must be SRC:DST, with exactly one ':' and both sides non-empty",
    ),
    (
        "image: foo\nextra-sources:\n  - ../ok:/ok\n  - ':/dst'\n",
        "pkg/foo/build.yml:4: 'extra-sources' item ':/dst' must be SRC:DST, with exactly one ':' and both sides non-empty",
    ),
    (
        "image: foo\nextra-sources:\n  - ../ok:/ok\n  - '../src:'\n",
        "pkg/foo/build.yml:4: 'extra-sources' item '../src:' must be SRC:DST, with exactly one ':' and both sides non-empty",
    ),
    (
        "image: foo\nbuildArgs:\n  - A=1\n  - NOVALUE\n",
        "pkg/foo/build.yml:4: 'buildArgs' item 'NOVALUE' must be KEY=VALUE with a non-empty KEY",
    ),
    (
        "image: foo\nbuildArgs: ['=1']\n",
        "pkg/foo/build.yml:2: 'buildArgs' item '=1' must be KEY=VALUE with a non-empty KEY",
    ),
    (
        "image: foo\nbuildArgs: {A: 1}\n",
        "pkg/foo/build.yml:2: 'buildArgs' must be a list of strings, got mapping",
    ),
    (
        "image: foo\ndockerfile: '/etc/Dockerfile'\n",
        "pkg/foo/build.yml:2: 'dockerfile' must be a relative path inside the package, got '/etc/Dockerfile'",
    ),
    (
        "image: foo\ndockerfile: '../Dockerfile'\n",
        "pkg/foo/build.yml:2: 'dockerfile' must be a relative path inside the package, got '../Dockerfile'",
    ),
    (
        "image: foo\ndockerfile: 'sub/../../Dockerfile'\n",
        "pkg/foo/build.yml:2: 'dockerfile' must be a relative path inside the package, got 'sub/../../Dockerfile'",
    ),
    (
        "image: foo\ndockerfile: '.'\n",
        "pkg/foo/build.yml:2: 'dockerfile' must be a relative path inside the package, got '.'",
    ),
    (
        "image: foo\ntag: {{.Hash}}\n",
        "pkg/foo/build.yml:2: 'tag' must be a string, got mapping (quote it: tag: \"{{.Hash}}\")",
    ),
    (
        "image: foo\ntag: '{{.Version}}-{{.Hash}}'\n",
        "pkg/foo/build.yml:2: 'tag' is not a usable tag template: unknown field '.Version': only .Hash is available",
    ),
    (
        "image: foo\ntag: '{{.Hash'\n",
        "pkg/foo/build.yml:2: 'tag' is not a usable tag template: unclosed action: a '{{' without its '}}'",
    ),
    (
        "image: foo\ntag: 'v1/{{.Hash}}'\n",
        "pkg/foo/build.yml:2: 'tag' renders to 'v1/0000000000000000000000000000000000000000', not a valid tag: 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
    ),
    (
        "image: foo\ntag: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{{.Hash}}'\n",
        "pkg/foo/build.yml:2: 'tag' renders to 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...', not a valid tag: 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
    ),
    ("image: foo\ndepends: []\n", "pkg/foo/build.yml:2: 'depends' must be a mapping, got list"),
    (
        "image: foo\ndepends:\n  docker-image: {}\n",
        "pkg/foo/build.yml:3: unknown key 'docker-image' in 'depends' (did you mean 'docker-images'?)",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    target: a.tar\n    target-dir: images\n",
        "pkg/foo/build.yml:5: 'target' and 'target-dir' in 'depends.docker-images' are mutually exclusive",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    target-dir: d\n    list:\n      - alpine@sha256:c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6b\n      - alpine:3.19\n",
        "pkg/foo/build.yml:7: 'depends.docker-images.list' item 'alpine:3.19' must be pinned by digest: NAME@sha256:<64 hex digits>",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    target-dir: d\n    list: ['alpine@sha256:c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6']\n",
        "pkg/foo/build.yml:5: 'depends.docker-images.list' item 'alpine@sha256:c5b1261d6d3e43071626931fc004f70149baeba2c8ec672bd4f27761f8e1ad6' must be pinned by digest: NAME@sha256:<64 hex digits>",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    from-file: images.lst\n",
        "pkg/foo/build.yml:3: 'depends.docker-images' needs 'target' or 'target-dir' to say where images go",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    target: /tmp/images.tar\n",
        "pkg/foo/build.yml:4: 'depends.docker-images.target' must be a relative path inside the package, got '/tmp/images.tar'",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    target-dir: ../images\n",
        "pkg/foo/build.yml:4: 'depends.docker-images.target-dir' must be a relative path inside the package, got '../images'",
    ),
    ("image: foo\nconfig: [a]\n", "pkg/foo/build.yml:2: 'config' must be a mapping, got list"),
    (
        "image: foo\nconfig:\n  net: host\n  capabilites: [all]\n",
        "pkg/foo/build.yml:4: unknown key 'capabilites' in 'config' (did you mean 'capabilities'?)",
    ),
    (
        "image: foo\nconfig:\n  name: x\n",
        "pkg/foo/build.yml:3: unknown key 'name' in 'config' (did you mean 'hostname'?)",
    ),
    ("image: foo\nconfig:\n  image: x\n", "pkg/foo/build.yml:3: unknown key 'image' in 'config'"),
    (
        "image: foo\nconfig:\n  oomScoreAdj: .inf\n",
        "pkg/foo/build.yml:3: 'config.oomScoreAdj' must be an integer, got float .inf",
    ),
    ("image: foo\n? [a, {b: c}]\n: x\n", "pkg/foo/build.yml:2: keys in build.yml must be strings"),
    # Refused by linuxkit too (types, unknown keys), or not a usable reference.
    (
        'image: foo\nnetwork: "true"\n',
        "pkg/foo/build.yml:2: 'network' must be a boolean (true/false, yes/no, on/off), got string 'true'",
    ),
    (
        "image: foo\nnetwork: maybe\n",
        "pkg/foo/build.yml:2: 'network' must be a boolean (true/false, yes/no, on/off), got string 'maybe'",
    ),
    ("image: foo\nnetwork: [yes]\n", "pkg/foo/build.yml:2: 'network' must be a boolean, got list"),
    (
        "image: foo\nconfig:\n  env: {A: 1}\n",
        "pkg/foo/build.yml:3: 'config.env' must be a list of strings, got mapping",
    ),
    (
        "image: foo\nconfig:\n  capabilities: CAP_ALL\n",
        "pkg/foo/build.yml:3: 'config.capabilities' must be a list of strings, got string 'CAP_ALL'",
    ),
    (
        "image: foo\nconfig:\n  devices:\n    - major: abc\n",
        "pkg/foo/build.yml:4: 'config.devices[0].major' must be an integer, got string 'abc'",
    ),
    (
        "image: foo\nconfig:\n  readonly: 1\n",
        "pkg/foo/build.yml:3: 'config.readonly' must be a boolean (true/false, yes/no, on/off), got integer 1",
    ),
    (
        "image: foo\nconfig:\n  uid: .nan\n",
        "pkg/foo/build.yml:3: 'config.uid' must be a finite number, got float .nan",
    ),
    (
        'image: foo\ngitrepo: "\\ud800"\n',
        "pkg/foo/build.yml:2: 'gitrepo' is not valid Unicode (it holds a lone surrogate)",
    ),
    (
        "image: .inf\n",
        "pkg/foo/build.yml:1: invalid image name '.inf': invalid path component '.inf' (lowercase letters and digits, separated by '.', '_', '__' or dashes)",
    ),
    ("image: foo\norg: .nan\n", "pkg/foo/build.yml:2: invalid org '.nan': invalid domain '.nan'"),
    (
        "image: foo\ntag: .inf\n",
        "pkg/foo/build.yml:2: 'tag' renders to '.inf', not a valid tag: 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
    ),
    (
        "image: foo\ndisable-content-trustt: true\n",
        "pkg/foo/build.yml:2: unknown key 'disable-content-trustt' (did you mean 'disable-content-trust'?)",
    ),
    ("image: foo\nrelease: v1\n", "pkg/foo/build.yml:2: unknown key 'release'"),
    (
        "image: foo\nconfig:\n  uid: &a [*a]\n",
        "pkg/foo/build.yml:3: anchor 'a' value contains itself",
    ),
    (
        'image: foo\ntag: "{{.Hash | html}}"\n',
        "pkg/foo/build.yml:2: 'tag' is not a usable tag template: function 'html' is not supported in tag templates (supported: .Hash, printf, print, slice, len)",
    ),
    (
        'image: foo\ntag: "{{if .Hash}}x{{end}}"\n',
        "pkg/foo/build.yml:2: 'tag' is not a usable tag template: function 'if' is not supported in tag templates (supported: .Hash, printf, print, slice, len)",
    ),
    (
        'image: foo\ntag: "{{slice .Hash 0 99}}"\n',
        "pkg/foo/build.yml:2: 'tag' is not a usable tag template: slice index out of range: [0:99] of 40 characters",
    ),
    (
        "image: foo\ndockerfile: dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\n",
        "pkg/foo/build.yml:2: 'dockerfile' has a file name longer than 255 bytes",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_bad_build_yml_gives_exact_one_line_error(text: str, message: str) -> None:
    error = _error(text)
    assert str(error) == message
    assert "\n" not in str(error)
    assert error.exit_code == EXIT_BAD_INPUT


def test_error_carries_path_and_line() -> None:
    error = _error("image: foo\n\nnetwork: maybe\n")
    assert (error.path, error.line) == (SHOWN, 3)


def test_control_characters_in_values_stay_on_one_line() -> None:
    error = _error('image: "foo\\nbar"\n')
    assert str(error).startswith("pkg/foo/build.yml:1: invalid image name 'foo\\nbar': ")


def test_repository_name_of_exactly_255_characters_is_accepted() -> None:
    spec = parse_build_yml_text(f"org: {'o' * 200}\nimage: {'i' * 54}\n", SHOWN)
    assert len(f"{spec.org}/{spec.image}") == 255


def test_registry_host_does_not_count_toward_repository_length() -> None:
    org = f"registry.example.com:5000/{'o' * 200}"
    assert parse_build_yml_text(f"org: {org}\nimage: {'i' * 54}\n", SHOWN).org == org


def test_missing_file_is_a_build_yml_error(tmp_path: Path) -> None:
    with pytest.raises(BuildYmlError) as caught:
        parse_build_yml(tmp_path / "build.yml", SHOWN)
    assert str(caught.value) == (
        "pkg/foo/build.yml: not found: no build.yml in this package directory"
    )


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "build.yml"
    path.write_bytes(b"image: foo\ngitrepo: caf\xe9\n")
    with pytest.raises(BuildYmlError) as caught:
        parse_build_yml(path, SHOWN)
    assert str(caught.value) == "pkg/foo/build.yml:2: is not valid UTF-8"


# Name helpers shared with the reference parser


@pytest.mark.parametrize("path", ["foo", "linuxkit/getty", "a.b_c__d---e/f0", "0", "x/y/z/w"])
def test_valid_repository_paths(path: str) -> None:
    assert validate_repository_path(path) is None


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "must not be empty"),
        ("/foo", "empty path component (doubled, leading or trailing '/')"),
        ("foo/", "empty path component (doubled, leading or trailing '/')"),
        ("a" * 256, "repository name is 256 characters, longer than 255"),
    ],
)
def test_invalid_repository_paths_say_why(path: str, problem: str) -> None:
    assert validate_repository_path(path) == problem


@pytest.mark.parametrize("path", ["Foo", "foo-", "-foo", "foo..bar", "foo___bar", "foo:bar", "föo"])
def test_repository_path_component_grammar_rejects(path: str) -> None:
    assert validate_repository_path(path) is not None


@pytest.mark.parametrize(
    ("name", "split"),
    [
        ("wombat", (None, "wombat")),
        ("linuxkit/extra", (None, "linuxkit/extra")),
        ("localhost", ("localhost", "")),
        ("localhost/wombat", ("localhost", "wombat")),
        ("localhost:5000/wombat", ("localhost:5000", "wombat")),
        ("ghcr.io/foo/bar", ("ghcr.io", "foo/bar")),
        ("registry:5000", ("registry:5000", "")),
        ("[::1]:5000/x", ("[::1]:5000", "x")),
    ],
)
def test_split_host(name: str, split: tuple[str | None, str]) -> None:
    assert split_host(name) == split


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "ghcr.io",
        "Registry.Example.com:443",
        "10.0.0.1:5000",
        "[::1]",
        "[fe80::1]:5000",
    ],
)
def test_valid_hosts(host: str) -> None:
    assert org_problem(f"{host}/x") is None


@pytest.mark.parametrize(
    "host", ["bad_host:5000", "-x.io", "x.io:", "x.io:port", "[zz]", "[::1", "x.io:0"]
)
def test_invalid_hosts(host: str) -> None:
    assert org_problem(f"{host}/x") is not None


@pytest.mark.parametrize(
    "org", ["linuxkit", "wombat/extra", "localhost:5000/wombat", "ghcr.io/foo", "registry:5000"]
)
def test_org_override_accepts_valid_orgs(org: str) -> None:
    validate_org(org)


@pytest.mark.parametrize(
    ("org", "message"),
    [
        (
            "Wombat",
            "invalid org 'Wombat': repository name must be lowercase",
        ),
        ("", "invalid org '': must not be empty"),
        (
            "ghcr.io//x",
            "invalid org 'ghcr.io//x': empty path component (doubled, leading or trailing '/')",
        ),
    ],
)
def test_org_override_rejects_with_input_error(org: str, message: str) -> None:
    with pytest.raises(ReferenceError_) as caught:
        validate_org(org)
    assert (str(caught.value), caught.value.exit_code) == (message, EXIT_BAD_INPUT)


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        # linuxkit's Go YAML decoder puts a plain scalar's text into a string field, so
        # unquoted numbers where text is expected are accepted, as linuxkit accepts them.
        ("image: foo\narches:\n  - 386\n  - amd64\n", "arches", ("386", "amd64")),
        ("image: foo\ngitrepo: 1.0\n", "gitrepo", "1.0"),
        ("image: foo\ntag: 1.10\n", "tag_template", "1.10"),
        ("image: foo\ntag: 010\n", "tag_template", "010"),
        ("image: foo\ntag: 1e3\n", "tag_template", "1e3"),
        ("image: foo\ntag: true\n", "tag_template", "true"),
        ("image: 42\n", "image", "42"),
    ],
)
def test_numbers_where_text_is_expected_are_read_as_text(text, field, expected):
    spec = parse_build_yml_text(text, "pkg/foo/build.yml")
    assert getattr(spec, field) == expected


# build.yml that is not a regular file: each gets its own message, none is read.


def _special(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "build.yml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    elif kind == "loop":
        path.symlink_to("build.yml")
    elif kind == "dangling":
        path.symlink_to("nowhere.yml")
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "huge":
        path.write_bytes(b"image: foo\n" + b"#" * (1 << 20))
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("fifo", "pkg/foo/build.yml: is a FIFO, not a regular file"),
        ("directory", "pkg/foo/build.yml: is a directory, not a regular file"),
        ("socket", "pkg/foo/build.yml: is a socket, not a regular file"),
        ("loop", "pkg/foo/build.yml: is a symbolic link loop"),
        ("dangling", "pkg/foo/build.yml: is a dangling symbolic link (to 'nowhere.yml')"),
        ("dev-zero", "pkg/foo/build.yml: is a character device, not a regular file"),
        ("huge", "pkg/foo/build.yml: is 1048587 bytes; a build.yml may be at most 1048576"),
    ],
)
def test_build_yml_that_is_not_a_regular_file(tmp_path: Path, kind: str, message: str) -> None:
    path = _special(tmp_path, kind)
    with pytest.raises(BuildYmlError) as caught:
        parse_build_yml(path, SHOWN)
    assert str(caught.value) == message
