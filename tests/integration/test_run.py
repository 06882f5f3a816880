"""The library without the CLI: `run_push` pushes a tree of packages in dependency order.

A script or another tool calls the pipeline as lkpkg's CLI does (load packages, resolve
settings, run, read the report); nothing here goes through click or a subprocess of lkpkg.
"""

from __future__ import annotations

import json
import os
import threading

import pytest

from lkpkg.oci.model import Platform
from lkpkg.package.model import load_packages
from lkpkg.pipeline import events
from lkpkg.pipeline.run import RunOptions, run_push
from lkpkg.settings import resolve_settings
from tests.conftest import run
from tests.integration.test_attest import is_attestation
from tests.integration.test_many import commit, package

pytestmark = pytest.mark.integration


def test_run_push_pushes_a_three_package_tree_in_dependency_order(
    tmp_path, registry_plain, buildah_store
):
    org = f"{registry_plain.host}/{registry_plain.repo('lib')}"
    repo = tmp_path / "repo"
    on = "ARG {1}\nFROM ${{{1}}}\nCOPY {0}.txt /{0}.txt\n"
    base = package(repo, "base", "FROM scratch\nCOPY base.txt /base.txt\n", org=org)
    middle = package(
        repo, "middle", on.format("middle", "BASE"), "buildArgs: [BASE=@lkt:pkg:../base]\n", org
    )
    top = package(
        repo, "top", on.format("top", "MIDDLE"), "buildArgs: [MIDDLE=@lkt:pkg:../middle]\n", org
    )
    commit(repo, "three packages")

    # Given in the reverse of the order they must be built in.
    packages = load_packages([top, middle, base])
    settings = resolve_settings(os.environ, cache_dir=tmp_path / "cache", notrust=True)
    options = RunOptions(platforms=(Platform("linux", "amd64"),), jobs=3, releases=())
    seen: list[tuple[int, events.Event]] = []
    lock = threading.Lock()

    def on_event(position: int, event: events.Event) -> None:
        with lock:
            seen.append((position, event))

    report = run_push(packages, options, settings, on_event=on_event)

    assert report.command == "push" and report.ok
    assert [p.image for p in report.packages] == [f"{org}/top", f"{org}/middle", f"{org}/base"]
    assert [p.status for p in report.packages] == ["built", "built", "built"]
    assert all(p.platforms[0].pushed for p in report.packages)

    # Dependency order, from the typed events alone: each package's index is in the registry
    # before the package that builds FROM it starts building.
    planned = seen[0][1]
    assert isinstance(planned, events.Planned) and seen[0][0] == -1
    names = [p.name.rpartition("/")[2] for p in planned.packages]

    def first(name: str, kind: type[events.Event]) -> int:
        number = names.index(name)
        return next(i for i, (p, e) in enumerate(seen) if p == number and isinstance(e, kind))

    for needed, needer in (("base", "middle"), ("middle", "top")):
        assert first(needed, events.IndexWritten) < first(needer, events.BuildStarted)
    assert first("base", events.Finished) < first("middle", events.Started)

    # What the registry serves is what the report says, and top really was built on middle.
    for entry in report.packages:
        raw = run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{entry.reference}"]
        ).stdout
        index = json.loads(raw)
        images = [m for m in index["manifests"] if not is_attestation(m)]
        assert [m["platform"]["architecture"] for m in images] == ["amd64"]
        assert images[0]["digest"] == entry.platforms[0].digest
        # Then the image's attestations (SBOM, provenance), paired with it.
        (attestation,) = [m for m in index["manifests"] if is_attestation(m)]
        assert attestation["annotations"]["vnd.docker.reference.digest"] == images[0]["digest"]
    top_image = f"docker://{report.packages[0].platforms[0].reference}"
    layers = json.loads(run(["skopeo", "inspect", "--tls-verify=false", top_image]).stdout)
    assert len(layers["Layers"]) == 3  # base.txt, middle.txt, top.txt
