"""Property: for any build.yml and any org/hash/tag, `lkpkg show-tag` exits 0 with one line,
or exits 2 with one error line; never a traceback, never a hang.

Generated documents mix the schema's keys with unknown ones, YAML 1.1/1.2 scalars that Go and
Python read differently, anchors and aliases (bombs included), nesting and raw text. Runs
in-process through the CLI's `main`, outside any git repository (so no git process), with a
bounded count and a per-example deadline.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lkpkg.cli.main import main
from lkpkg.errors import ReferenceError_
from lkpkg.package.git import repository_top
from lkpkg.reference import Reference

KEYS = [
    "image",
    "org",
    "tag",
    "dockerfile",
    "arches",
    "extra-sources",
    "gitrepo",
    "network",
    "disable-cache",
    "disable-content-trust",
    "config",
    "buildArgs",
    "depends",
    "release",
    "<<",
    "imagee",
]
CONFIG_KEYS = ["env", "capabilities", "devices", "uid", "readonly", "sysctl", "oomScoreAdj"]
SCALARS = [
    "foo",
    "yes",
    "no",
    "on",
    "y",
    "true",
    "'true'",
    "~",
    "",
    "null",
    "1.10",
    "010",
    "1e3",
    "0x1f",
    ".inf",
    "-.inf",
    ".nan",
    "2024-02-30",
    "'{{.Hash}}'",
    "'{{slice .Hash 0 7}}'",
    "'{{printf \"%s-%d\" .Hash 3}}'",
    "'{{.Foo}}'",
    "{{.Hash}}",
    '"\\ud800"',
    '"\\x00"',
    "!!binary aGk=",
    "!!str 12",
    "!foo bar",
    "*a",
    "&a foo",
    "[amd64, arm64]",
    "[amd64, sparc, ~]",
    "[]",
    "{}",
    "{A: 1}",
    "[[a]]",
    "'A=@lkt:pkg:../x'",
    "x" * 300,
]

scalar = st.one_of(st.sampled_from(SCALARS), st.text(max_size=20))
config_block = st.dictionaries(st.sampled_from(CONFIG_KEYS), scalar, max_size=4).map(
    lambda entries: "".join(f"\n  {key}: {value}" for key, value in entries.items())
)
value = st.one_of(scalar, scalar.map(lambda s: f"\n  - {s}\n  - {s}"), config_block)
document = st.one_of(
    st.lists(st.tuples(st.sampled_from(KEYS), value), max_size=8).map(
        lambda pairs: "".join(f"{key}: {val}\n" for key, val in pairs)
    ),
    st.lists(st.tuples(st.sampled_from(KEYS), value), max_size=6).map(
        lambda pairs: "image: foo\n" + "".join(f"{key}: {val}\n" for key, val in pairs)
    ),
    st.integers(min_value=1, max_value=9).map(
        lambda depth: (
            "a0: &a0 [x,x,x,x,x,x,x,x,x,x]\n"
            + "".join(
                f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]\n"
                for i in range(1, depth + 1)
            )
            + f"image: foo\nconfig:\n  uid: *a{depth}\n"
        )
    ),
    st.text(max_size=200),
)
flag_text = st.one_of(
    st.sampled_from(["wombat", "localhost:5000/x", "Bad", "", ".inf", "a//b", "\ud800", "-x"]),
    st.text(max_size=30),
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="lkpkg-property-") as name:
        path = Path(name)
        if repository_top(path) is not None:
            pytest.skip("the temporary directory lies inside a git repository")
        yield path


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def check(code: int, out: str, err: str) -> None:
    assert "Traceback" not in err
    if code == 0:
        assert len(out.splitlines()) == 1, out
    else:
        assert code == 2, (code, err)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("lkpkg: error: "), err


@settings(
    max_examples=250,
    deadline=3000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=document)
def test_any_build_yml_exits_0_or_2_with_one_line(workdir: Path, text: str) -> None:
    package = workdir / "pkg"
    package.mkdir(exist_ok=True)
    (package / "build.yml").write_text(text, encoding="utf-8", errors="surrogatepass")
    check(*run(["show-tag", str(package)]))


@settings(
    max_examples=120,
    deadline=3000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(org=flag_text, hash_=flag_text, tag=flag_text)
def test_any_org_hash_and_tag_exit_0_or_2_with_one_line(
    workdir: Path, org: str, hash_: str, tag: str
) -> None:
    package = workdir / "ref"
    package.mkdir(exist_ok=True)
    (package / "build.yml").write_text("image: foo\n")
    check(*run(["show-tag", "--org", org, "--hash", hash_, "--tag", tag, str(package)]))


reference_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="abcz09._-/:@[]ABC", max_size=60),
    st.builds(
        lambda host, path, tag, digest: f"{host}{path}{tag}{digest}",
        st.sampled_from(
            ["", "localhost:5000/", "ghcr.io/", "[::1]:5000/", "bad_host:1/", "a:99999/"]
        ),
        st.sampled_from(["linuxkit/init", "x", "A/b", "a//b", "a" * 300, "library/debian"]),
        st.sampled_from(["", ":v1", ":", ":" + "t" * 130, ":-x", ":1.10"]),
        st.sampled_from(["", "@sha256:" + "a" * 64, "@sha256:abc", "@", "@md5:" + "0" * 32]),
    ),
)


@settings(max_examples=300, deadline=1000)
@given(text=reference_text)
def test_any_reference_parses_or_is_refused_in_one_line(text: str) -> None:
    """Image references (`manifest REF`, `verify REF`, `cache pull REF`, YAML images): a valid
    one round-trips through its canonical spelling; anything else is one ReferenceError_."""
    try:
        ref = Reference.parse(text)
    except ReferenceError_ as error:
        assert "\n" not in str(error) or "\n" in text
        assert error.exit_code == 2
        return
    assert Reference.parse(str(ref)) == ref
    assert Reference.parse(ref.familiar()) == ref
