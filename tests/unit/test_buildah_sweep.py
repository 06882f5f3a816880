"""When the buildah builder sweeps its store (`buildah rm --all`): only when no other build
runs on it, and at a build's end only when the store lists a container (buildah 1.28 leaves
a stage's working container mounted), so a build that leaves nothing starts no process."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lkpkg.builders.base import EngineSettings
from lkpkg.builders.buildah import BuildahBuilder, lists_containers
from lkpkg.fsutil import acquire_lock
from lkpkg.proc import DEFAULT_PATH


@pytest.fixture
def builder(tmp_path: Path) -> tuple[BuildahBuilder, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "buildah"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    settings = EngineSettings(environ={"PATH": f"{bin_dir}:{DEFAULT_PATH}"})
    return BuildahBuilder(settings=settings), calls


def store_listing(store: Path, containers: str) -> Path:
    (store / "builds").mkdir(parents=True, exist_ok=True)
    listing = store / "graph" / "overlay-containers" / "containers.json"
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text(containers)
    return store


def called(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def test_lists_containers_reads_both_lists_and_doubts_what_it_cannot_read(tmp_path):
    store = tmp_path / "store"
    assert not lists_containers(store)  # a store that never had a container
    store_listing(store, "[]")
    assert not lists_containers(store)
    volatile = store / "run" / "overlay-containers" / "volatile-containers.json"
    volatile.parent.mkdir(parents=True)
    volatile.write_text('[{"id": "abc"}]')
    assert lists_containers(store)
    volatile.write_text("[]")
    store_listing(store, '[{"id": "def"}]')
    assert lists_containers(store)
    store_listing(store, "[{trunc")
    assert lists_containers(store)


def test_a_build_that_leaves_nothing_starts_no_sweep(builder, tmp_path):
    buildah, calls = builder
    store = store_listing(tmp_path / "store", "[]")
    env = buildah._env(store)
    with buildah._building(env, store):
        pass
    assert called(calls) == []
    assert list((store / "builds").iterdir()) == []


def test_the_last_build_to_end_removes_what_buildah_left(builder, tmp_path):
    buildah, calls = builder
    store = store_listing(tmp_path / "store", "[]")
    env = buildah._env(store)
    with buildah._building(env, store):
        store_listing(store, '[{"id": "left-by-a-stage"}]')  # what buildah 1.28 leaves
    assert called(calls) == ["rm --all"]


def test_a_failed_build_is_swept_when_it_ends(builder, tmp_path):
    buildah, calls = builder
    store = store_listing(tmp_path / "store", "[]")
    env = buildah._env(store)
    with pytest.raises(RuntimeError), buildah._building(env, store):
        raise RuntimeError("buildah build failed")
    assert called(calls) == ["rm --all"]
    assert list((store / "builds").iterdir()) == []  # its marker went with its containers


def test_a_build_ending_while_another_runs_leaves_the_sweep_to_it(builder, tmp_path):
    buildah, calls = builder
    store = store_listing(tmp_path / "store", "[]")
    env = buildah._env(store)
    other = acquire_lock(store / "active.lock", shared=True)  # another build, running
    assert other is not None
    try:
        with buildah._building(env, store):
            store_listing(store, '[{"id": "maybe-the-other-builds"}]')
        assert called(calls) == []
    finally:
        os.close(other)
    with buildah._building(env, store):  # the next build, alone when it ends
        pass
    assert called(calls) == ["rm --all"]


def test_listed_containers_gives_the_ids_of_both_lists(tmp_path):
    from lkpkg.builders.buildah import listed_containers

    store = store_listing(tmp_path / "s", '[{"id": "aaa", "names": ["x"]}, {"id": "bbb"}]')
    volatile = store / "run" / "overlay-containers" / "volatile-containers.json"
    volatile.parent.mkdir(parents=True)
    volatile.write_text('[{"id": "ccc"}]')
    assert listed_containers(store) == ["aaa", "bbb", "ccc"]
    volatile.write_text("not json")
    assert listed_containers(store) is None
    assert listed_containers(tmp_path / "never") == []
