"""Finding and rewriting the image references of LinuxKit YAML, and the pin decisions, with an
in-memory registry and verifier (the real ones are in tests/integration/test_consumer.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lkpkg.consumer.pin import Pinner, Status
from lkpkg.consumer.yamlrefs import find_references, rewrite
from lkpkg.errors import InputError, VerificationFailed
from lkpkg.reference import Reference

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64

YAML_TEXT = """\
# a LinuxKit image
kernel:
  image: "linuxkit/kernel:6.6"   # the kernel
  cmdline: "console=ttyS0"
init: [linuxkit/init:abc, 'linuxkit/runc:def']
onboot:
  - name: dhcpcd   # network
    image: linuxkit/dhcpcd:abc
    command: ["/sbin/dhcpcd", "-1"]
onshutdown:
- name: bye
  image: busybox
services:
  - name: getty
    image: linuxkit/getty:abc@{D1}
volumes:
- name: blank
- name: data
  image: linuxkit/data@{D2}
files:
  - path: etc/image
    contents: "linuxkit/not-an-image:tag"
trust:
  org:
    - linuxkit
""".replace("{D1}", D1).replace("{D2}", D2)


def test_finds_every_section_linuxkit_reads_and_nothing_else(tmp_path):
    sites = find_references(tmp_path / "x.yml", YAML_TEXT)
    assert [(s.where, s.text) for s in sites] == [
        ("kernel.image", "linuxkit/kernel:6.6"),
        ("init[0]", "linuxkit/init:abc"),
        ("init[1]", "linuxkit/runc:def"),
        ("onboot[0].image", "linuxkit/dhcpcd:abc"),
        ("onshutdown[0].image", "busybox"),
        ("services[0].image", f"linuxkit/getty:abc@{D1}"),
        ("volumes[1].image", f"linuxkit/data@{D2}"),
    ]


def test_rewrite_changes_only_the_references(tmp_path):
    sites = {s.where: s for s in find_references(tmp_path / "x.yml", YAML_TEXT)}
    changes = {
        sites["kernel.image"]: f"linuxkit/kernel:6.6@{D3}",
        sites["init[0]"]: f"linuxkit/init:abc@{D3}",
        sites["init[1]"]: f"linuxkit/runc:def@{D3}",
        sites["onshutdown[0].image"]: f"busybox:latest@{D3}",
    }
    out = rewrite(YAML_TEXT, changes)
    expected = (
        YAML_TEXT.replace('"linuxkit/kernel:6.6"', f'"linuxkit/kernel:6.6@{D3}"')
        .replace(
            "[linuxkit/init:abc, 'linuxkit/runc:def']",
            f"[linuxkit/init:abc@{D3}, 'linuxkit/runc:def@{D3}']",
        )
        .replace("image: busybox\n", f"image: busybox:latest@{D3}\n")
    )
    assert out == expected


def test_not_yaml_is_one_line_with_the_file(tmp_path):
    with pytest.raises(InputError, match=r"x.yml:3: not valid YAML: expected"):
        find_references(tmp_path / "x.yml", "kernel:\n  image: [unclosed\n")


class FakeRegistry:
    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = tags  # "repo:tag" or "repo@digest" -> digest
        self.heads = 0

    def head_manifest(self, repo: str, ref: str) -> tuple[str, str, int] | None:
        self.heads += 1
        if ref.startswith("sha256:"):
            return (ref, "application/vnd.oci.image.index.v1+json", 1)
        digest = self.tags.get(f"{repo}:{ref}")
        return None if digest is None else (digest, "application/vnd.oci.image.index.v1+json", 1)

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        raise AssertionError("pin never downloads manifests itself")

    def get_blob(self, repo: str, digest: str, sink: object) -> int:
        raise AssertionError("pin never downloads blobs")


def make_pinner(check: bool = False, updates: dict[str, Reference] | None = None):
    registry = FakeRegistry(
        {"o/a:t1": D1, "o/a:t2": D2, "o/bad:t": D3, "o/moved:t": D2, "o/b:latest": D1}
    )
    verified: list[str] = []

    def verify(ref: Reference) -> None:
        if ref.path == "o/bad":
            raise VerificationFailed(f"{ref.name}:t: not signed")
        verified.append(str(ref))

    pinner = Pinner(lambda domain: registry, verify, check=check, updates=updates or {})
    return pinner, registry, verified


def test_pin_decisions(tmp_path):
    path = tmp_path / "x.yml"
    path.write_text(
        "init:\n"
        "  - o/a:t1          # a tag\n"
        "  - o/a:t1          # the same again: resolved once\n"
        f"  - o/a:t1@{D1}\n"
        f"  - o/moved:t@{D1}\n"
        "  - o/bad:t\n"
        f"  - o/b@{D3}\n"
        "  - o/b\n"
        "  - o/missing:t\n"
    )
    pinner, _, verified = make_pinner()
    result = pinner.pin_file(path)
    statuses = [(r.site.text, r.status, r.new) for r in result.results]
    assert statuses[0] == ("o/a:t1", Status.PINNED, f"o/a:t1@{D1}")
    assert statuses[1] == ("o/a:t1", Status.PINNED, f"o/a:t1@{D1}")
    assert statuses[2][1] is Status.OK
    assert statuses[3][1] is Status.FAILED and "now names" in (result.results[3].reason or "")
    assert statuses[4][1] is Status.FAILED and "not signed" in (result.results[4].reason or "")
    assert statuses[5][1] is Status.OK
    assert statuses[6] == ("o/b", Status.PINNED, f"o/b:latest@{D1}")
    assert statuses[7][1] is Status.FAILED and "not in the registry" in (
        result.results[7].reason or ""
    )
    assert verified.count(f"docker.io/o/a:t1@{D1}") == 2  # once to pin, once already pinned
    text = path.read_text()
    assert f"  - o/a:t1@{D1}          # a tag\n" in text
    assert "  - o/bad:t\n" in text and f"  - o/moved:t@{D1}\n" in text


def test_check_changes_nothing_and_fails_on_unpinned_or_stale(tmp_path):
    path = tmp_path / "x.yml"
    original = f"init:\n  - o/a:t1@{D1}\n  - o/a:t1\n"
    path.write_text(original)
    pinner, _, _ = make_pinner(check=True)
    result = pinner.pin_file(path)
    assert [r.status for r in result.results] == [Status.OK, Status.FAILED]
    assert not result.written and path.read_text() == original
    # --update: a reference behind its package's tag is stale under --check, bumped otherwise.
    updates = {"docker.io/o/a": Reference.parse("o/a:t2")}
    pinner, _, _ = make_pinner(check=True, updates=updates)
    assert not pinner.pin_file(path).ok
    pinner, _, _ = make_pinner(updates=updates)
    result = pinner.pin_file(path)
    assert [r.status for r in result.results] == [Status.UPDATED, Status.UPDATED]
    assert path.read_text() == f"init:\n  - o/a:t2@{D2}\n  - o/a:t2@{D2}\n"


def test_a_file_with_no_images_is_left_alone(tmp_path):
    path = tmp_path / "x.yml"
    path.write_text("# nothing\nfiles: []\n")
    pinner, registry, _ = make_pinner()
    result = pinner.pin_file(path)
    assert result.results == () and not result.written and registry.heads == 0


def test_rewrite_refuses_a_reference_it_cannot_find_verbatim(tmp_path):
    text = 'init:\n  - "linuxkit/\\\ninit:abc"\n'
    sites = find_references(Path("x.yml"), text)
    with pytest.raises(InputError, match="rewrite it by hand"):
        rewrite(text, {sites[0]: f"linuxkit/init:abc@{D1}"})
