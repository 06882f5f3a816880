"""What the buildah builder remembers across runs (builders/memo.py): its version per
executable, and the base lists it provided while the store's image list is unchanged."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lkpkg.builders.base import EngineSettings
from lkpkg.builders.buildah import BuildahBuilder
from lkpkg.builders.memo import ProvidedBases
from lkpkg.proc import DEFAULT_PATH

VERSION_JSON = '{"version": "1.28.2"}\n'


def fake_buildah(directory: Path, calls: Path, version: str = VERSION_JSON) -> Path:
    fake = directory / "buildah"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\ncat <<'END'\n{version}END\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake


def settings(tmp_path: Path, bin_dir: Path) -> EngineSettings:
    return EngineSettings(
        environ={"PATH": f"{bin_dir}:{DEFAULT_PATH}", "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    )


def test_memo_dir_follows_xdg_then_home():
    assert EngineSettings(environ={"XDG_CACHE_HOME": "/x"}).memo_dir == Path("/x/lkpkg")
    assert EngineSettings(environ={"HOME": "/h"}).memo_dir == Path("/h/.cache/lkpkg")
    assert EngineSettings(environ={"PATH": DEFAULT_PATH}).memo_dir is None


def test_version_is_asked_once_across_builders_until_the_binary_changes(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = fake_buildah(bin_dir, calls)
    engines = settings(tmp_path, bin_dir)
    # Two builders: two lkpkg runs on the same machine.
    assert BuildahBuilder(str(fake), settings=engines).version() == "1.28.2"
    assert BuildahBuilder(str(fake), settings=engines).version() == "1.28.2"
    assert calls.read_text().splitlines() == ["version --json"]
    # An upgrade changes the binary (size and mtime): asked again, the new answer kept.
    fake_buildah(bin_dir, calls, '{"version": "1.33.7"}\n')
    info = fake.stat()
    os.utime(fake, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    assert BuildahBuilder(str(fake), settings=engines).version() == "1.33.7"
    assert BuildahBuilder(str(fake), settings=engines).version() == "1.33.7"
    assert calls.read_text().splitlines() == ["version --json"] * 2


def test_an_unreadable_memo_is_not_used(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = fake_buildah(bin_dir, calls)
    engines = settings(tmp_path, bin_dir)
    assert engines.memo_dir is not None
    engines.memo_dir.mkdir(parents=True)
    (engines.memo_dir / "buildah-version.json").write_text("{not json")
    assert BuildahBuilder(str(fake), settings=engines).version() == "1.28.2"
    assert BuildahBuilder(str(fake), settings=engines).version() == "1.28.2"
    assert calls.read_text().splitlines() == ["version --json"]  # rewritten, then used


def test_a_provided_list_stands_while_the_store_image_list_is_the_same_file(tmp_path):
    images = tmp_path / "graph" / "overlay-images" / "images.json"
    provided = ProvidedBases(tmp_path)
    wanted = {"sha256:b", "sha256:a"}
    provided.record("localhost/debian:bookworm", wanted)  # no image list yet: nothing kept
    assert not provided.unchanged("localhost/debian:bookworm", wanted)
    images.parent.mkdir(parents=True)
    images.write_text("[]")
    provided.record("localhost/debian:bookworm", wanted)
    assert provided.unchanged("localhost/debian:bookworm", ["sha256:a", "sha256:b"])
    assert not provided.unchanged("localhost/debian:bookworm", {"sha256:a"})
    assert not provided.unchanged("localhost/other:1", wanted)
    # containers-storage replaces the file on any image change: the record no longer stands.
    replacement = images.with_name("images.json.tmp")
    replacement.write_text('[{"id": "x"}]')
    replacement.replace(images)
    assert not ProvidedBases(tmp_path).unchanged("localhost/debian:bookworm", wanted)
