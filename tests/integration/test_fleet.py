"""A simulated CI fleet: `lkpkg plan` drives three runners — separate processes, each with its
own cache and its own buildah store — against one real registry, wave by wave, as the GitHub
and GitLab workflows of docs/scale.md do. A PATH shim around buildah logs every build, so the
test can count them: every package x arch is built exactly once, every index ends complete,
and a dependent is only built once the registry holds what it builds on.

The default tree is four COPY-only packages wired like the examples (three waves, eight
cells), so the test costs seconds: with the example tree, each runner's fresh buildah store
imports the Debian base and arm64 builds run under qemu, which takes minutes here.
LKPKG_FLEET_TREE=examples runs every example package (fourteen cells in three waves),
LKPKG_FLEET_TREE=subset runs base, motd and banner (six cells in two waves).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import EXAMPLES, ROOT, copy_examples, git, run

pytestmark = pytest.mark.integration

RUNNERS = 3
ARCHES = ("amd64", "arm64")
SUBSET = ("base", "motd", "banner")

# lkpkg hands buildah only an allow-list of the environment, so the log and the runner's
# name are written into each runner's shim rather than passed as variables.
SHIM = """#!/bin/sh
# Logs each build (time, runner, argv) and runs the real buildah.
if [ "$1" = build ]; then
    echo "$(date +%s.%N) {runner} $*" >> {log}
fi
exec {buildah} "$@"
"""


def tiny_tree(repo: Path) -> list[str]:
    """Four COPY-only packages in three waves, wired as the examples are (`@lkt:pkg:` build
    args, FROM a sibling, a sibling as a build stage): root and side, then mid FROM root, then
    leaf FROM mid with a file from side."""
    packages = {
        "root": ("", "FROM scratch\nCOPY msg /root.txt\n"),
        "side": ("", "FROM scratch\nCOPY msg /side.txt\n"),
        "mid": (
            "buildArgs:\n  - ROOT=@lkt:pkg:../root\n",
            "ARG ROOT\nFROM ${ROOT}\nCOPY msg /mid.txt\n",
        ),
        "leaf": (
            "buildArgs:\n  - MID=@lkt:pkg:../mid\n  - SIDE=@lkt:pkg:../side\n",
            "ARG MID\nARG SIDE\nFROM ${SIDE} AS side\nFROM ${MID}\n"
            "COPY --from=side /side.txt /side.txt\nCOPY msg /leaf.txt\n",
        ),
    }
    for name, (extra, dockerfile) in packages.items():
        (repo / name).mkdir(parents=True)
        (repo / name / "msg").write_text(f"{name}\n")
        (repo / name / "Dockerfile").write_text(dockerfile)
        (repo / name / "build.yml").write_text(
            f"image: {name}\norg: fleet\narches: [amd64, arm64]\n{extra}"
        )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "tiny tree")
    return list(packages)


def example_tree(repo: Path) -> list[str]:
    """The example packages (LKPKG_FLEET_TREE=examples: all of them; =subset: base, motd,
    banner). Every runner imports the Debian base into its own store and builds under qemu:
    minutes, not seconds, on a small machine."""
    names: tuple[str, ...] = SUBSET
    if os.environ.get("LKPKG_FLEET_TREE") != "subset":
        names = tuple(sorted(p.name for p in EXAMPLES.iterdir() if (p / "build.yml").is_file()))
    copy_examples(repo, *names, "shared")
    return list(names)


class Runner:
    def __init__(self, name: str, root: Path, base_cache: Path | None, log: Path):
        self.name = name
        self.root = root
        self.cache = root / "cache"
        root.mkdir(parents=True)
        if base_cache is not None:
            run(["cp", "-al", str(base_cache), str(self.cache)])
        shim_dir = root / "bin"
        shim_dir.mkdir()
        buildah = shutil.which("buildah")
        assert buildah is not None
        (shim_dir / "buildah").write_text(SHIM.format(buildah=buildah, runner=name, log=log))
        (shim_dir / "buildah").chmod(0o755)
        store = root / "containers"
        store.mkdir(parents=True)
        self.storage_conf = root / "storage.conf"
        self.storage_conf.write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{store}/graph"\nrunroot = "{store}/run"\n'
        )
        self.env = {
            **os.environ,
            "PATH": f"{shim_dir}:{os.environ['PATH']}",
            "LINUXKIT_CACHE": str(self.cache),
            "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
        }

    def start(self, cells: list[dict[str, object]], org: str, repo: Path) -> subprocess.Popen[str]:
        lkpkg_exe = str(ROOT / ".venv" / "bin" / "lkpkg")
        steps = ["set -e"]
        for cell in cells:
            platform = cell["platform"]
            if cell["pull"]:
                steps.append(
                    f"{lkpkg_exe} cache pull --notrust --insecure --platforms {platform}"
                    f" {cell['pull']}"
                )
            steps.append(
                f"{lkpkg_exe} push --notrust --org {org} --platforms {platform}"
                f" -j 1 --progress plain {cell['dirs']}"
            )
        return subprocess.Popen(
            ["sh", "-c", "\n".join(steps)],
            cwd=repo,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def cleanup(self) -> None:
        env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(self.storage_conf)}
        subprocess.run(["buildah", "rm", "--all"], env=env, capture_output=True, check=False)
        subprocess.run(
            ["buildah", "rmi", "--all", "--force"], env=env, capture_output=True, check=False
        )
        graph = self.root / "containers" / "graph" / "overlay"
        subprocess.run(["umount", "-R", str(graph)], capture_output=True, check=False)


def plan(org: str, repo: Path, dirs: list[str], fmt: str = "json", *extra: str) -> str:
    result = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "lkpkg"),
            *("plan", "--org", org, "--format", fmt),
            *("--platforms", ",".join(f"linux/{a}" for a in ARCHES), *extra, *dirs),
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def index_arches(ref: str) -> set[str]:
    raw = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]).stdout
    platforms = [m["platform"] for m in json.loads(raw)["manifests"]]
    return {p["architecture"] for p in platforms if p["architecture"] != "unknown"}


@pytest.mark.timeout(1800)
def test_three_runners_build_every_cell_once_in_dependency_waves(tmp_path, registry_plain, request):
    repo = tmp_path / "repo"
    examples = bool(os.environ.get("LKPKG_FLEET_TREE"))
    dirs = (example_tree if examples else tiny_tree)(repo)
    # The examples build FROM the Debian base, which each runner's cache must hold.
    base_cache = request.getfixturevalue("base_cache") if examples else None
    packages = dirs
    org = f"{registry_plain.host}/{registry_plain.repo('fleet')}"
    log = tmp_path / "builds.log"
    log.touch()
    runners = [Runner(f"r{n}", tmp_path / f"runner{n}", base_cache, log) for n in range(RUNNERS)]

    full = json.loads(plan(org, repo, dirs))
    waves = full["waves"]
    cells = [c for wave in waves for c in wave]
    assert full["present"] == [] and len(cells) == len(packages) * len(ARCHES)
    # Each wave's cells as a workflow's jobs get them: the GitHub matrix of that wave, all
    # planned before the first runner starts.
    matrices = [
        json.loads(plan(org, repo, dirs, "github", "--wave", str(n)))["include"]
        for n in range(len(waves))
    ]
    assert [[(e["dir"], e["arch"]) for e in m] for m in matrices] == [
        [(c["dir"], c["arch"]) for c in w] for w in waves
    ]

    finished_at: list[float] = []
    try:
        for number, wave in enumerate(matrices):
            share: list[list[dict[str, object]]] = [[] for _ in runners]
            for i, cell in enumerate(wave):
                share[i % RUNNERS].append(cell)
            procs = [r.start(s, org, repo) for r, s in zip(runners, share, strict=True) if s]
            for proc in procs:
                out, _ = proc.communicate(timeout=1500)
                assert proc.returncode == 0, out[-3000:]
            finished_at.append(time.time())
            # What the wave built is in the registry: planning again starts at the next wave.
            again = json.loads(plan(org, repo, dirs))["waves"]
            assert [sorted((c["dir"], c["arch"]) for c in w) for w in again] == [
                sorted((c["dir"], c["arch"]) for c in w) for w in waves[number + 1 :]
            ]
    finally:
        for runner in runners:
            runner.cleanup()

    # Every package x arch built exactly once, by the builders of all runners together. A
    # build is named by its context (the package directory) and platform: buildah's --tag is
    # the OCI layout it writes into the run's scratch directory.
    builds: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for line in log.read_text().splitlines():
        stamp, runner, *argv = line.split()
        cell_key = (Path(argv[-1]).name, argv[argv.index("--platform") + 1].split("/")[1])
        builds.setdefault(cell_key, []).append((float(stamp), runner))
    assert set(builds) == {_cell(c) for c in cells}
    assert all(len(b) == 1 for b in builds.values()), builds
    assert len({r for b in builds.values() for _, r in b}) == RUNNERS  # the work was shared
    # A cell of wave k was built only after wave k-1 ended with its tags in the registry.
    for number, wave in enumerate(waves[1:], start=1):
        for cell in wave:
            ((stamp, _),) = builds[_cell(cell)]
            assert stamp > finished_at[number - 1]
    # Every index holds every arch, whichever runners pushed them.
    for cell in cells:
        assert index_arches(str(cell["reference"])) == set(ARCHES)
    assert json.loads(plan(org, repo, dirs))["repair"] == []
    # A runner that died between its arch tag and the index: plan names the index to rebuild.
    leaf = str(cells[-1]["reference"])
    run(
        [
            *("skopeo", "copy", "--src-tls-verify=false", "--dest-tls-verify=false"),
            *("--preserve-digests", f"docker://{leaf}-amd64", f"docker://{leaf}"),
        ]
    )
    (repair,) = json.loads(plan(org, repo, dirs))["repair"]
    assert repair["reference"] == leaf and repair["missing"] == list(ARCHES)
    run(["sh", "-c", repair["command"].replace("lkpkg", str(ROOT / ".venv" / "bin" / "lkpkg"), 1)])
    assert index_arches(leaf) == set(ARCHES)


def _cell(cell: dict[str, object]) -> tuple[str, str]:
    """(package directory name, arch) of a planned cell."""
    return (Path(str(cell["dir"])).name, str(cell["arch"]))


def test_plan_formats_describe_the_same_waves(tmp_path):
    repo = copy_examples(tmp_path / "repo", "base", "toolbox", "hello", "console")
    dirs = ["base", "toolbox", "hello", "console"]

    def plan_as(fmt: str) -> str:
        return subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "lkpkg"),
                *("plan", "--no-registry", "--format", fmt),
                *("--platforms", "linux/amd64,linux/arm64", *dirs),
            ],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    waves = json.loads(plan_as("json"))["waves"]
    assert [sorted({c["dir"] for c in w}) for w in waves] == [
        ["base", "hello"],
        ["toolbox"],
        ["console"],
    ]
    assert waves[2][0]["needs"] == ["toolbox", "hello"]  # in argument order
    assert waves[2][0]["pull"] == [waves[1][0]["reference"], waves[0][2]["reference"]]
    mermaid = plan_as("mermaid")
    assert mermaid.startswith("flowchart LR") and 'subgraph g2 ["wave 2"]' in mermaid
    assert mermaid.count(" --> ") == 3
    gitlab = YAML(typ="safe").load(plan_as("gitlab"))
    assert gitlab["stages"] == ["wave-0", "wave-1", "wave-2"]
    assert len(gitlab["wave-0"]["parallel"]["matrix"]) == 4
    assert gitlab["wave-2"]["parallel"]["matrix"][0]["LKPKG_DIRS"] == "toolbox hello console"
    dot = plan_as("dot")
    assert dot.count(" -> ") == 3 and dot.count("subgraph cluster_") == 3
    if shutil.which("dot"):
        run(["dot", "-Tsvg", "-o", str(tmp_path / "g.svg")], input=dot)
