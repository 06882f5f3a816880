"""build.yml parsing: the corpus parses to the right values; every bad input is one exact line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from lkpkg.errors import EXIT_BAD_INPUT, BuildYmlError, InputError
from lkpkg.package.buildyml import (
    BuildSpec,
    DockerImagesDepends,
    ExtraSource,
    parse_build_yml,
    parse_build_yml_text,
    split_host,
    validate_host,
    validate_org_override,
    validate_repository_path,
)

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
        "release": "v1.2.0",
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
            # 0666 is octal to linuxkit's Go decoder, so the label must say 438.
            "devices": [{"path": "/dev/console", "type": "c", "major": 5, "minor": 1, "mode": 438}],
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
        ("amd64", "arm64"),
        "Dockerfile",
        "{{.Hash}}",
    )
    assert (spec.network, spec.disable_cache, spec.disable_content_trust) == (False, False, False)
    assert (spec.config, spec.depends, spec.gitrepo, spec.release) == (None, None, None, None)


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
    text = (
        "image: foo\n"
        "config:\n"
        "  devices:\n"
        "    - {mode: 0644, major: 0x1f, minor: 0o17}\n"
        "    - {mode: &m 0600, uid: *m, gid: 10, cgroupsPath: 0_755}\n"
    )
    config = parse_build_yml_text(text, SHOWN).config
    assert config == {
        "devices": [
            {"mode": 0o644, "major": 31, "minor": 15},
            {"mode": 0o600, "uid": 0o600, "gid": 10, "cgroupsPath": 0o755},
        ]
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
    # File shape and YAML syntax
    ("", "pkg/foo/build.yml:1: file is empty; a build.yml needs at least 'image'"),
    ("# nothing\n", "pkg/foo/build.yml:1: file is empty; a build.yml needs at least 'image'"),
    ("- image: foo\n", "pkg/foo/build.yml:1: must be a mapping of keys to values, got list"),
    ("hello\n", "pkg/foo/build.yml:1: must be a mapping of keys to values, got string 'hello'"),
    (
        "image: foo\narches: [amd64\n",
        "pkg/foo/build.yml:3: invalid YAML: while parsing a flow sequence; "
        "expected ',' or ']', but got '<stream end>'",
    ),
    (
        "image: foo\n---\nimage: bar\n",
        "pkg/foo/build.yml:2: invalid YAML: expected a single document in the stream; "
        "but found another document",
    ),
    (
        "image: foo\x00\n",
        "pkg/foo/build.yml:1: invalid YAML: unacceptable character #x0000: "
        "special characters are not allowed",
    ),
    ("image: foo\nnetwork: true\nimage: bar\n", "pkg/foo/build.yml:3: duplicate key 'image'"),
    ("image: foo\nconfig:\n  net: host\n  net: none\n", "pkg/foo/build.yml:4: duplicate key 'net'"),
    # Top-level keys
    (
        "image: foo\narch: [amd64]\n",
        "pkg/foo/build.yml:2: unknown key 'arch' (did you mean 'arches'?)",
    ),
    (
        "image: foo\nbuildargs: []\n",
        "pkg/foo/build.yml:2: unknown key 'buildargs' (did you mean 'buildArgs'?)",
    ),
    ("image: foo\nzzz: 1\n", "pkg/foo/build.yml:2: unknown key 'zzz'"),
    ("image: foo\n1: x\n", "pkg/foo/build.yml:2: keys must be strings, got integer 1"),
    ("org: foo\narches: [amd64]\n", "pkg/foo/build.yml:1: missing required key 'image'"),
    # Booleans: YAML 1.2 has no yes/on, and integers are not booleans
    (
        "image: foo\nnetwork: yes\n",
        "pkg/foo/build.yml:2: 'network' must be a boolean, got string 'yes'",
    ),
    ("image: foo\nnetwork: 1\n", "pkg/foo/build.yml:2: 'network' must be a boolean, got integer 1"),
    (
        "image: foo\ndisable-cache: 'true'\n",
        "pkg/foo/build.yml:2: 'disable-cache' must be a boolean, got string 'true'",
    ),
    (
        "image: foo\ndisable-content-trust:\n",
        "pkg/foo/build.yml:2: 'disable-content-trust' must be a boolean, got null",
    ),
    # Strings
    ("image:\n", "pkg/foo/build.yml:1: 'image' must be a string, got null"),
    ("image: ''\n", "pkg/foo/build.yml:1: 'image' must not be empty"),
    ("image: [foo]\n", "pkg/foo/build.yml:1: 'image' must be a string, got list"),
    ("image: !foo bar\n", "pkg/foo/build.yml:1: 'image' must be a string, got value tagged !foo"),
    ("image: foo\ngitrepo: ~\n", "pkg/foo/build.yml:2: 'gitrepo' must be a string, got null"),
    # Names
    (
        "image: Foo\n",
        "pkg/foo/build.yml:1: invalid image name 'Foo': must be lowercase letters and digits in "
        "'/'-separated components, with words joined by '.', '_', '__' or '-'",
    ),
    (
        "image: foo__-bar\n",
        "pkg/foo/build.yml:1: invalid image name 'foo__-bar': must be lowercase letters and digits "
        "in '/'-separated components, with words joined by '.', '_', '__' or '-'",
    ),
    (
        "image: a//b\n",
        "pkg/foo/build.yml:1: invalid image name 'a//b': must not have an empty component "
        "(a leading, trailing or doubled '/')",
    ),
    (
        "image: foo\norg: Wombat\n",
        "pkg/foo/build.yml:2: invalid org 'Wombat': must be lowercase letters and digits in "
        "'/'-separated components, with words joined by '.', '_', '__' or '-'",
    ),
    (
        "image: foo\norg: bad_host:5000/wombat\n",
        "pkg/foo/build.yml:2: invalid org 'bad_host:5000/wombat': registry host 'bad_host:5000' "
        "must be a DNS name, an IPv4 address or a [bracketed] IPv6 address, with an optional :port",
    ),
    (
        "image: foo\norg: localhost:99999/wombat\n",
        "pkg/foo/build.yml:2: invalid org 'localhost:99999/wombat': registry host "
        "'localhost:99999' has a port outside 1-65535",
    ),
    (
        "image: foo\norg: ghcr.io/\n",
        "pkg/foo/build.yml:2: invalid org 'ghcr.io/': must not end with '/'",
    ),
    (
        f"org: {'o' * 200}\nimage: {'i' * 60}\n",
        f"pkg/foo/build.yml:2: repository name '{'o' * 80}...' is 261 characters; the limit is 255",
    ),
    # arches
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
        "pkg/foo/build.yml:2: unknown arch 'sparc' in 'arches' "
        "(known: amd64, arm64, arm, 386, ppc64le, s390x, riscv64, mips64le, loong64)",
    ),
    ("image: foo\narches: []\n", "pkg/foo/build.yml:2: 'arches' must not be empty"),
    (
        "image: foo\narches: amd64\n",
        "pkg/foo/build.yml:2: 'arches' must be a list of strings, got string 'amd64'",
    ),
    (
        "image: foo\narches:\n  - arm64\n  - arm64\n",
        "pkg/foo/build.yml:4: duplicate arch 'arm64' in 'arches'",
    ),
    # extra-sources
    *[
        (
            f"image: foo\nextra-sources:\n  - ../ok:/ok\n  - '{item}'\n",
            f"pkg/foo/build.yml:4: 'extra-sources' item '{item}' must be SRC:DST, "
            "with exactly one ':' and both sides non-empty",
        )
        for item in ("../x", "a:b:c", ":/dst", "../src:")
    ],
    # buildArgs
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
    # dockerfile
    *[
        (
            f"image: foo\ndockerfile: '{path}'\n",
            f"pkg/foo/build.yml:2: 'dockerfile' must be a relative path inside the package, "
            f"got '{path}'",
        )
        for path in ("/etc/Dockerfile", "../Dockerfile", "sub/../../Dockerfile", ".")
    ],
    # tag
    (
        "image: foo\ntag: {{.Hash}}\n",
        "pkg/foo/build.yml:2: 'tag' must be a string, got mapping (quote it: tag: \"{{.Hash}}\")",
    ),
    (
        "image: foo\ntag: '{{.Version}}-{{.Hash}}'\n",
        "pkg/foo/build.yml:2: 'tag' may only use the action {{.Hash}}, got '{{.Version}}'",
    ),
    (
        "image: foo\ntag: '{{printf \"%s\" .Hash}}'\n",
        "pkg/foo/build.yml:2: 'tag' may only use the action {{.Hash}}, "
        "got '{{printf \"%s\" .Hash}}'",
    ),
    (
        "image: foo\ntag: '{{.Hash'\n",
        "pkg/foo/build.yml:2: 'tag' has a '{{' without a closing '}}'",
    ),
    ("image: foo\ntag: ''\n", "pkg/foo/build.yml:2: 'tag' must not be empty"),
    (
        "image: foo\ntag: 'v1/{{.Hash}}'\n",
        "pkg/foo/build.yml:2: 'tag' does not render to a valid tag: only letters, digits, "
        "'_', '.' and '-' are allowed, and not '.' or '-' first",
    ),
    (
        f"image: foo\ntag: '{'x' * 100}{{{{.Hash}}}}'\n",
        "pkg/foo/build.yml:2: 'tag' renders to a tag longer than 128 characters",
    ),
    # depends
    ("image: foo\ndepends: []\n", "pkg/foo/build.yml:2: 'depends' must be a mapping, got list"),
    (
        "image: foo\ndepends:\n  docker-image: {}\n",
        "pkg/foo/build.yml:3: unknown key 'docker-image' in 'depends' "
        "(did you mean 'docker-images'?)",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    target: a.tar\n    target-dir: images\n",
        "pkg/foo/build.yml:5: 'target' and 'target-dir' in 'depends.docker-images' "
        "are mutually exclusive",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    target-dir: d\n    list: []\n"
        "    from-file: images.lst\n",
        "pkg/foo/build.yml:6: 'list' and 'from-file' in 'depends.docker-images' "
        "are mutually exclusive",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    target-dir: d\n    list:\n"
        f"      - alpine@sha256:{DIGEST_A}\n      - alpine:3.19\n",
        "pkg/foo/build.yml:7: 'depends.docker-images.list' item 'alpine:3.19' must be pinned "
        "by digest: NAME@sha256:<64 hex digits>",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    target-dir: d\n"
        f"    list: ['alpine@sha256:{DIGEST_A[:-1]}']\n",
        "pkg/foo/build.yml:5: 'depends.docker-images.list' item "
        f"'alpine@sha256:{DIGEST_A[:-1]}' must be pinned by digest: NAME@sha256:<64 hex digits>",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    from-file: images.lst\n",
        "pkg/foo/build.yml:3: 'depends.docker-images' needs 'target' or 'target-dir' "
        "to say where images go",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    target: /tmp/images.tar\n",
        "pkg/foo/build.yml:4: 'depends.docker-images.target' must be a relative path inside "
        "the package, got '/tmp/images.tar'",
    ),
    (
        "image: foo\ndepends:\n  docker-images:\n    target-dir: ../images\n",
        "pkg/foo/build.yml:4: 'depends.docker-images.target-dir' must be a relative path inside "
        "the package, got '../images'",
    ),
    # config
    ("image: foo\nconfig: [a]\n", "pkg/foo/build.yml:2: 'config' must be a mapping, got list"),
    (
        "image: foo\nconfig:\n  net: host\n  capabilites: [all]\n",
        "pkg/foo/build.yml:4: unknown key 'capabilites' in 'config' (did you mean 'capabilities'?)",
    ),
    *[
        (
            f"image: foo\nconfig:\n  {key}: x\n",
            f"pkg/foo/build.yml:3: 'config.{key}' is not allowed: linuxkit rejects 'name' and "
            "'image' in an image's config label",
        )
        for key in ("name", "image")
    ],
    (
        "image: foo\nconfig:\n  sysctl:\n    1: x\n",
        "pkg/foo/build.yml:4: keys in 'config.sysctl' must be strings, got integer 1",
    ),
    (
        "image: foo\nconfig:\n  oomScoreAdj: .inf\n",
        "pkg/foo/build.yml:3: 'config.oomScoreAdj' must be a finite number, got inf",
    ),
    (
        "image: foo\nconfig:\n  annotations:\n    built: 2024-01-01\n",
        "pkg/foo/build.yml:4: 'config.annotations.built' is a YAML timestamp; "
        "quote it to make it a string",
    ),
    (
        "image: foo\nconfig:\n  env:\n    - !!binary aGk=\n",
        "pkg/foo/build.yml:4: 'config.env[0]' cannot be represented in JSON, got binary data",
    ),
    # YAML failures that carry no position
    (
        "image: foo\n? [a, {b: c}]\n: x\n",
        "pkg/foo/build.yml: invalid YAML: unusable mapping key (unhashable type: 'CommentedMap')",
    ),
    (
        "image: foo\nconfig:\n  annotations:\n    built: 2024-02-30\n",
        "pkg/foo/build.yml: invalid YAML: day is out of range for month",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_bad_build_yml_gives_exact_one_line_error(text: str, message: str) -> None:
    error = _error(text)
    assert str(error) == message
    assert "\n" not in str(error)
    assert error.exit_code == EXIT_BAD_INPUT


def test_error_carries_path_and_line() -> None:
    error = _error("image: foo\n\nnetwork: yes\n")
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
    assert str(caught.value) == "pkg/foo/build.yml: cannot read: No such file or directory"


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
        ("/foo", "must not have an empty component (a leading, trailing or doubled '/')"),
        ("foo/", "must not have an empty component (a leading, trailing or doubled '/')"),
        ("a" * 256, "must be at most 255 characters, got 256"),
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
    assert validate_host(host) is None


@pytest.mark.parametrize(
    "host", ["bad_host", "-x.io", "x.io:", "x.io:port", "[zz]", "[::1", "x.io:0"]
)
def test_invalid_hosts(host: str) -> None:
    assert validate_host(host) is not None


@pytest.mark.parametrize(
    "org", ["linuxkit", "wombat/extra", "localhost:5000/wombat", "ghcr.io/foo", "registry:5000"]
)
def test_org_override_accepts_valid_orgs(org: str) -> None:
    validate_org_override(org)


@pytest.mark.parametrize(
    ("org", "message"),
    [
        (
            "Wombat",
            "invalid org 'Wombat': must be lowercase letters and digits in '/'-separated "
            "components, with words joined by '.', '_', '__' or '-'",
        ),
        ("", "invalid org '': must not be empty"),
        (
            "ghcr.io//x",
            "invalid org 'ghcr.io//x': must not have an empty component "
            "(a leading, trailing or doubled '/')",
        ),
    ],
)
def test_org_override_rejects_with_input_error(org: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        validate_org_override(org)
    assert not isinstance(caught.value, BuildYmlError)
    assert (str(caught.value), caught.value.exit_code) == (message, EXIT_BAD_INPUT)


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        # linuxkit's Go YAML decoder puts a plain scalar's text into a string field, so
        # unquoted numbers where text is expected are accepted, as linuxkit accepts them.
        ("image: foo\narches:\n  - 386\n  - amd64\n", "arches", ("386", "amd64")),
        ("image: foo\nrelease: 1.0\n", "release", "1.0"),
        ("image: 42\n", "image", "42"),
    ],
)
def test_numbers_where_text_is_expected_are_read_as_text(text, field, expected):
    spec = parse_build_yml_text(text, "pkg/foo/build.yml")
    assert getattr(spec, field) == expected
