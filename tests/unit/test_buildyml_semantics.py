"""build.yml as linuxkit's decoder reads it (Go yaml.v3, KnownFields, over NewPkgInfo()).

Each case is a build.yml that `linuxkit pkg` accepts and the meaning it gives it; the rule
from yaml.v3's decode.go/resolve.go or pkglib that decides it is named beside the case.
"""

from __future__ import annotations

from typing import Any

import pytest

from lkpkg.package.buildyml import parse_build_yml_text

SHOWN = "pkg/foo/build.yml"

CASES: list[tuple[str, str, dict[str, Any]]] = [
    # Defaults of NewPkgInfo().
    (
        "defaults",
        "image: foo\n",
        {
            "org": "linuxkit",
            "arches": ("amd64", "arm64", "riscv64"),
            "tag_template": "{{.Hash}}",
            "dockerfile": "Dockerfile",
            "network": False,
            "disable_cache": False,
        },
    ),
    # Bool fields: YAML 1.2 true/false as yaml.v3 resolves them...
    *[
        (f"bool {word}", f"image: foo\nnetwork: {word}\n", {"network": value})
        for word, value in [
            ("true", True),
            ("True", True),
            ("TRUE", True),
            ("false", False),
            ("False", False),
            ("FALSE", False),
        ]
    ],
    # ...and the YAML 1.1 words decode.go accepts into a typed bool (quoted too).
    *[
        (f"bool {word}", f"image: foo\nnetwork: {word}\n", {"network": value})
        for word, value in [
            ("yes", True),
            ("Yes", True),
            ("YES", True),
            ("on", True),
            ("On", True),
            ("ON", True),
            ("y", True),
            ("Y", True),
            ("no", False),
            ("No", False),
            ("NO", False),
            ("off", False),
            ("Off", False),
            ("OFF", False),
            ("n", False),
            ("N", False),
            ("'yes'", True),
        ]
    ],
    ("disable-cache on", "image: foo\ndisable-cache: on\n", {"disable_cache": True}),
    # Null: a scalar keeps its default; a list becomes nil.
    ("arches null", "image: foo\narches:\n", {"arches": ()}),
    ("arches ~", "image: foo\narches: ~\n", {"arches": ()}),
    ("arches empty list", "image: foo\narches: []\n", {"arches": ()}),
    ("network null", "image: foo\nnetwork:\n", {"network": False}),
    ("org null", "image: foo\norg: null\n", {"org": "linuxkit"}),
    ("tag null", "image: foo\ntag: ~\n", {"tag_template": "{{.Hash}}"}),
    ("tag empty", "image: foo\ntag: ''\n", {"tag_template": "{{.Hash}}"}),
    ("config null", "image: foo\nconfig:\n", {"config": None}),
    ("depends null", "image: foo\ndepends:\n", {"depends": None}),
    ("buildArgs empty", "image: foo\nbuildArgs: []\n", {"build_args": ()}),
    ("null list item dropped", "image: foo\narches: [amd64, ~]\n", {"arches": ("amd64",)}),
    # String fields take the scalar's text as written.
    ("tag 1.10", "image: foo\ntag: 1.10\n", {"tag_template": "1.10"}),
    ("tag 010", "image: foo\ntag: 010\n", {"tag_template": "010"}),
    ("tag 1e3", "image: foo\ntag: 1e3\n", {"tag_template": "1e3"}),
    ("tag 0x1F", "image: foo\ntag: 0x1F\n", {"tag_template": "0x1F"}),
    ("tag true", "image: foo\ntag: true\n", {"tag_template": "true"}),
    ("tag date", "image: foo\ntag: 2024-01-02\n", {"tag_template": "2024-01-02"}),
    ("image number", "image: 42\n", {"image": "42"}),
    ("arch number", "image: foo\narches: [386]\n", {"arches": ("386",)}),
    ("gitrepo empty", "image: foo\ngitrepo: ''\n", {"gitrepo": ""}),
    # Tag templates as linuxkit renders them are accepted.
    (
        "tag slice",
        "image: foo\ntag: '{{slice .Hash 0 7}}'\n",
        {"tag_template": "{{slice .Hash 0 7}}"},
    ),
    (
        "tag printf",
        "image: foo\ntag: '{{printf \"v1-%s\" .Hash}}'\n",
        {"tag_template": '{{printf "v1-%s" .Hash}}'},
    ),
    ("tag len", "image: foo\ntag: 'v{{len .Hash}}'\n", {"tag_template": "v{{len .Hash}}"}),
    # Only the first document is decoded (Decoder.Decode).
    ("second document ignored", "image: foo\n---\nimage: [\n", {"image": "foo"}),
    # Merges and aliases.
    (
        "merge",
        "image: foo\nconfig:\n  <<: {pid: host}\n  net: host\n",
        {"config": {"pid": "host", "net": "host"}},
    ),
    ("alias", "image: &i foo\ngitrepo: *i\n", {"gitrepo": "foo"}),
    # config is typed as moby.ImageConfig.
    (
        "config types",
        "image: foo\nconfig:\n  oomScoreAdj: -800\n  readonly: yes\n  sysctl: {a: 1}\n",
        {"config": {"oomScoreAdj": -800, "readonly": True, "sysctl": {"a": "1"}}},
    ),
    (
        "device mode is text",
        "image: foo\nconfig:\n  devices:\n    - {path: all, type: c, major: 13, mode: 0666}\n",
        {"config": {"devices": [{"path": "all", "type": "c", "major": 13, "mode": "0666"}]}},
    ),
    (
        "config nil fields left out (omitempty)",
        "image: foo\nconfig:\n  capabilities:\n  readonly: ~\n  uid: null\n  net: host\n",
        {"config": {"net": "host"}},
    ),
    (
        "null map value is the zero value",
        "image: foo\nconfig:\n  sysctl: {a: ~}\n",
        {"config": {"sysctl": {"a": ""}}},
    ),
    # lkpkg's own key, documented as such.
    (
        "disable-content-trust",
        "image: foo\ndisable-content-trust: yes\n",
        {"disable_content_trust": True},
    ),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_linuxkit_meaning(name: str, text: str, expected: dict[str, Any]) -> None:
    spec = parse_build_yml_text(text, SHOWN)
    assert {field: getattr(spec, field) for field in expected} == expected


@pytest.mark.parametrize(
    "template",
    [
        # linuxkit fails on these when it executes the template.
        "{{slice.Hash 0 12}}",
        "{{.Hash.Foo}}",
        # linuxkit renders these to `map[Hash:...]` and `latest`: lkpkg refuses, clearly.
        "{{.}}",
        "{{$x := .Hash}}",
    ],
)
def test_templates_outside_the_supported_subset_are_refused(template: str) -> None:
    from lkpkg.errors import BuildYmlError

    with pytest.raises(BuildYmlError, match="'tag' is not a usable tag template"):
        parse_build_yml_text(f"image: foo\ntag: '{template}'\n", SHOWN)
