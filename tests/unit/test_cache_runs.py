"""Runs on a cache, the sweep of dead runs' leftovers, fsck and gc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lkpkg.cache.check import fsck, gc
from lkpkg.cache.layout import Cache
from lkpkg.cache.runs import run_is_live, run_of, start_run, sweep
from lkpkg.oci import mediatypes as mt
from lkpkg.oci.model import ImageManifest

REF = "docker.io/wombat/hello:abc"


def dead_run_leftovers(root: Path) -> list[str]:
    """A child process starts a run, leaves a scratch dir and a staged file, and is killed."""
    code = (
        "import sys, time; from pathlib import Path; from lkpkg.cache.layout import Cache\n"
        "c = Cache(Path(sys.argv[1]))\n"
        "d = c.staging_path('build'); d.mkdir(); (d / 'big').write_bytes(b'x' * 4096)\n"
        "c.staging_path('ingest').write_bytes(b'y')\n"
        "print(c.run_id, flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE)
    assert child.stdout is not None
    run_id = child.stdout.readline().decode().strip()
    names = sorted(p.name for p in (root / ".tmp").iterdir() if run_id in p.name)
    assert run_is_live(root, run_id)
    child.kill()
    child.wait()
    assert not run_is_live(root, run_id)
    return names


def test_the_next_run_sweeps_a_dead_runs_scratch_but_not_a_live_ones(tmp_path: Path) -> None:
    root = tmp_path / "c"
    live = Cache(root)
    with live.scratch_dir("build") as mine:
        dead = dead_run_leftovers(root)
        assert len(dead) == 2 and all(run_of(n) for n in dead)
        swept = Cache(root)
        swept.run()  # the first use of a cache by a run sweeps
        assert sorted(swept.swept.entries) == dead
        assert swept.swept.bytes >= 4096
        assert swept.swept.run_locks == 1
        assert mine.is_dir()  # a live run's scratch is never touched
        assert sorted(p.name for p in (root / ".tmp").iterdir()) == [mine.name]
    assert not mine.exists()


def test_unowned_entries_go_only_when_old(tmp_path: Path) -> None:
    tmp = tmp_path / ".tmp"
    tmp.mkdir()
    (tmp / "build-abc").mkdir()
    old = tmp / "pull-old"
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert sweep(tmp_path).entries == ("pull-old",)
    assert (tmp / "build-abc").exists()


def test_a_run_lock_removed_before_it_was_locked_is_retaken(tmp_path: Path) -> None:
    run = start_run(tmp_path)
    assert run_is_live(tmp_path, run.id)
    assert sweep(tmp_path).run_locks == 0  # held: kept
    run.close()
    assert not (tmp_path / ".runs" / f"{run.id}.lock").exists()


def put_image(cache: Cache) -> None:
    config = cache.write_blob(
        json.dumps({"os": "linux", "architecture": "amd64"}).encode(), mt.OCI_CONFIG
    )
    layer = cache.write_blob(b"layer", mt.OCI_LAYER_GZIP)
    cache.set_ref(REF, cache.put_manifest(ImageManifest(config=config, layers=(layer,))))


def test_fsck_finds_corrupt_orphan_broken_and_stale_and_repair_removes(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    put_image(cache)
    assert fsck(cache).clean
    orphan = cache.write_blob(b"nobody needs me", "text/plain")
    os.utime(cache.blob_path(orphan.digest), (1, 1))
    layer = cache.blob_path(cache.write_blob(b"layer", mt.OCI_LAYER_GZIP).digest)
    layer.write_bytes(b"LAYER")  # same size, other content
    dead_run_leftovers(tmp_path)
    report = fsck(Cache(tmp_path))
    assert report.orphans == (orphan.digest,)
    assert len(report.corrupt) == 1 and len(report.swept.entries) == 2
    assert not report.removed and cache.has_blob(orphan.digest)
    assert "1 corrupt" in report.lines()[-1]
    repaired = fsck(Cache(tmp_path), repair=True)
    assert repaired.removed and not cache.has_blob(orphan.digest) and not layer.exists()
    assert repaired.broken_refs == ()  # the corrupt layer was still there when refs were read
    again = fsck(Cache(tmp_path))
    assert [name for name, _ in again.broken_refs] == [REF]  # the layer is gone now
    assert again.orphans == () and again.swept.entries == ()


def test_gc_keeps_what_refs_reach_and_recent_orphans_of_live_runs(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    put_image(cache)
    old = cache.write_blob(b"old orphan", "text/plain")
    os.utime(cache.blob_path(old.digest), (1, 1))
    other = Cache(tmp_path)
    other.run()  # a live run that started before the next blob was written
    time.sleep(1.1)
    young = other.write_blob(b"a live run's blob, its ref not set yet", "text/plain")
    report = gc(Cache(tmp_path))
    assert report.orphans == (old.digest,) and report.young_orphans == 1
    assert cache.has_blob(young.digest) and not cache.has_blob(old.digest)
    assert fsck(Cache(tmp_path)).broken_refs == ()
