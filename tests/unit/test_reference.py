"""The reference grammar and docker's normalisation, as a table of inputs and outcomes."""

from __future__ import annotations

import pytest

from lkpkg.errors import InputError, ReferenceError_
from lkpkg.reference import Reference, is_valid_tag

D256 = "sha256:" + "0123456789abcdef" * 4
D512 = "sha512:" + "0123456789abcdef" * 8

# (input, fully qualified str(), familiar())
VALID = [
    ("debian", "docker.io/library/debian", "debian"),
    ("debian:bookworm", "docker.io/library/debian:bookworm", "debian:bookworm"),
    ("wombat/hello:tag", "docker.io/wombat/hello:tag", "wombat/hello:tag"),
    ("docker.io/library/x", "docker.io/library/x", "x"),
    ("docker.io/x", "docker.io/library/x", "x"),
    ("index.docker.io/x", "docker.io/library/x", "x"),
    ("index.docker.io/wombat/x:1", "docker.io/wombat/x:1", "wombat/x:1"),
    ("docker.io/library/a/b", "docker.io/library/a/b", "library/a/b"),
    (
        f"localhost:5000/a/b:c@{D256}",
        f"localhost:5000/a/b:c@{D256}",
        f"localhost:5000/a/b:c@{D256}",
    ),
    ("[::1]:5000/x", "[::1]:5000/x", "[::1]:5000/x"),
    ("[2001:db8::1]/x:y", "[2001:db8::1]/x:y", "[2001:db8::1]/x:y"),
    ("localhost/x", "localhost/x", "localhost/x"),
    ("localhost:5000/x:y", "localhost:5000/x:y", "localhost:5000/x:y"),
    ("10.0.0.1:443/a/b", "10.0.0.1:443/a/b", "10.0.0.1:443/a/b"),
    ("ghcr.io/o/r:v1.2-rc_3", "ghcr.io/o/r:v1.2-rc_3", "ghcr.io/o/r:v1.2-rc_3"),
    ("Reg.Example.com/x", "Reg.Example.com/x", "Reg.Example.com/x"),
    (f"x@{D512}", f"docker.io/library/x@{D512}", f"x@{D512}"),
    (f"x:t@{D256}", f"docker.io/library/x:t@{D256}", f"x:t@{D256}"),
    # Path-only separators; docker.io stays, or "a.b_c__d---e" would read as a domain.
    ("docker.io/a.b_c__d---e/f:T_", "docker.io/a.b_c__d---e/f:T_", "docker.io/a.b_c__d---e/f:T_"),
    ("docker.io/localhost/x", "docker.io/localhost/x", "docker.io/localhost/x"),
    # Without a slash the colon starts a tag, whatever it looks like.
    ("registry:5000", "docker.io/library/registry:5000", "registry:5000"),
]


@pytest.mark.parametrize(("text", "full", "familiar"), VALID)
def test_valid(text, full, familiar):
    ref = Reference.parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar
    # Both spellings are fixed points of parsing.
    assert Reference.parse(full) == ref
    assert Reference.parse(familiar) == ref


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("debian", ("docker.io", "library/debian", None, None)),
        (f"localhost:5000/a/b:c@{D256}", ("localhost:5000", "a/b", "c", D256)),
        ("[::1]:5000/x", ("[::1]:5000", "x", None, None)),
        ("index.docker.io/x:1", ("docker.io", "library/x", "1", None)),
    ],
)
def test_parts(text, parts):
    ref = Reference.parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == parts
    assert ref.name == f"{parts[0]}/{parts[1]}"


# (input, fragment of the reason)
INVALID = [
    ("", "empty reference"),
    (":", "nothing after ':'"),
    (":tag", "missing repository name"),
    ("@" + D256, "missing repository name"),
    ("Debian", "must be lowercase"),
    ("wombat/Hello", "must be lowercase"),
    ("my.reg/A/b", "must be lowercase"),
    ("a//b", "empty path component"),
    ("a/", "empty path component"),
    ("/a", "empty path component"),
    ("a-/b", "invalid path component 'a-'"),
    ("_a", "invalid path component '_a'"),
    ("a___b", "invalid path component"),
    ("a b", "invalid path component"),
    ("a" * 256, "longer than 255"),
    ("r.io/" + "/".join(["abcdefghij"] * 23) + "/abcdefg", "longer than 255"),
    ("foo:", "nothing after ':'"),
    ("foo:-bar", "invalid tag '-bar'"),
    ("foo:.bar", "invalid tag '.bar'"),
    ("foo:" + "t" * 129, "longer than 128"),
    ("foo:ta g", "invalid tag"),
    ("foo:tàg", "invalid tag"),
    ("foo@", "nothing after '@'"),
    ("foo@sha256:abc", "has 64 hex characters, this one has 3"),
    ("foo@sha256:" + "A" * 64, "lowercase"),
    ("foo@md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
    ("foo@" + "a" * 64, "'algorithm:hex'"),
    (f"foo@{D256}@{D256}", "bad digest"),
    ("0123456789abcdef" * 4, "image ID"),
    ("example.com:99999/x", "invalid port '99999'"),
    ("example.com:0/x", "invalid port '0'"),
    ("example.com:/x", "invalid port ''"),
    ("-bad.com/x", "invalid domain '-bad.com'"),
    ("bad..com/x", "invalid domain 'bad..com'"),
    # A first component with a dot is a domain, so path-only separators make it invalid.
    ("a.b_c/x", "invalid domain 'a.b_c'"),
    ("::1/x", "several ':'"),
    ("[::1/x", "unterminated '['"),
    ("[zz::1]/x", "not an IPv6 address"),
    ("[fe80::1%eth0]/x", "not an IPv6 address"),
    ("[::1]5000/x", "unexpected '5000'"),
    (f"localhost:5000/a/b:c@{D256[:-1]}", "has 64 hex characters, this one has 63"),
]


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_invalid(text, reason):
    with pytest.raises(ReferenceError_) as info:
        Reference.parse(text)
    message = str(info.value)
    assert message.startswith(f"invalid reference '{text}': ")
    assert reason in message
    assert "\n" not in message


def test_reference_error_is_bad_input():
    with pytest.raises(InputError) as info:
        Reference.parse("UPPER")
    assert info.value.exit_code == 2


def test_direct_construction_normalises_and_validates():
    assert Reference("index.docker.io", "alpine", "3") == Reference.parse("alpine:3")
    assert str(Reference("docker.io", "alpine")) == "docker.io/library/alpine"
    with pytest.raises(ReferenceError_, match="must be lowercase"):
        Reference("docker.io", "Alpine")
    with pytest.raises(ReferenceError_, match="invalid tag"):
        Reference("docker.io", "library/alpine", tag="-x")


def test_with_tag_and_digest():
    ref = Reference.parse("wombat/hello:old")
    assert str(ref.with_tag("new")) == "docker.io/wombat/hello:new"
    pinned = ref.with_digest(D256)
    assert str(pinned) == f"docker.io/wombat/hello:old@{D256}"
    assert str(pinned.with_tag("v2")) == f"docker.io/wombat/hello:v2@{D256}"
    with pytest.raises(ReferenceError_, match="invalid tag"):
        ref.with_tag("no/slash")
    with pytest.raises(ReferenceError_, match="this one has 4"):
        ref.with_digest("sha256:abcd")
    assert ref.tag == "old"  # references are values


def test_registry_host():
    assert Reference.parse("debian").registry_host == "registry-1.docker.io"
    assert Reference.parse("index.docker.io/x").registry_host == "registry-1.docker.io"
    assert Reference.parse("ghcr.io/a/b").registry_host == "ghcr.io"
    assert Reference.parse("localhost:5000/a").registry_host == "localhost:5000"


def test_references_are_hashable_values():
    a = Reference.parse("alpine:3")
    b = Reference.parse("docker.io/library/alpine:3")
    assert a == b
    assert len({a, b}) == 1


@pytest.mark.parametrize(
    ("tag", "ok"),
    [
        ("latest", True),
        ("v1.2.3", True),
        ("_x", True),
        ("A-b_c.d", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        (".x", False),
        ("-x", False),
        ("a:b", False),
        ("é", False),
        ("a\n", False),
    ],
)
def test_is_valid_tag(tag, ok):
    assert is_valid_tag(tag) is ok
