"""Many packages in one run: dependency order, concurrency, failures, summary, --json."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, copy_examples, git, lkpkg, run
from tests.fixtures.registry import RegistryInfo
from tests.integration.test_attest import is_attestation
from tests.integration.test_build import image_config, index_json, layer_files

pytestmark = pytest.mark.integration

ORG = "many"


def package(repo: Path, name: str, dockerfile: str, build_yml: str = "", org: str = ORG) -> Path:
    """A package of COPY steps only: builds in about a second for any arch."""
    directory = repo / name
    directory.mkdir(parents=True)
    (directory / f"{name}.txt").write_text(f"{name}\n")
    (directory / "Dockerfile").write_text(dockerfile)
    (directory / "build.yml").write_text(
        f"image: {name}\norg: {org}\narches: [amd64, arm64]\n{build_yml}"
    )
    return directory


def commit(repo: Path, message: str) -> None:
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def tiny_tree(repo: Path, org: str = ORG, broken: str | None = None) -> dict[str, Path]:
    """Six packages: base <- a, base <- b (@lkt:pkg:), c FROM a's pinned image and b (both
    ways of needing a sibling), and x, y needing nothing. `broken` names one that fails."""
    copy = "FROM scratch\nCOPY {0}.txt /{0}.txt\n"
    on = "ARG {1}\nFROM ${{{1}}}\nCOPY {0}.txt /{0}.txt\n"
    dirs = {
        "base": package(repo, "base", copy.format("base"), org=org),
        "a": package(
            repo, "a", on.format("a", "BASE"), "buildArgs: [BASE=@lkt:pkg:../base]\n", org
        ),
        "b": package(
            repo, "b", on.format("b", "BASE"), "buildArgs: [BASE=@lkt:pkg:../base]\n", org
        ),
        "x": package(repo, "x", copy.format("x"), org=org),
        "y": package(repo, "y", copy.format("y"), org=org),
    }
    if broken is not None:
        (dirs[broken] / "Dockerfile").write_text("FROM scratch\nCOPY no-such-file /\n")
    commit(repo, "tree")
    # A pinned FROM of a sibling, as linuxkit's own packages pin linuxkit/alpine:<hash>.
    a_tag = git(repo, "rev-parse", "HEAD:a")
    dirs["c"] = package(
        repo,
        "c",
        f"ARG B\nFROM ${{B}} AS b\nFROM {org}/a:{a_tag}\nCOPY --from=b /b.txt /from-b.txt\n"
        "COPY c.txt /c.txt\n",
        "buildArgs: [B=@lkt:pkg:../b]\n",
        org,
    )
    commit(repo, "c")
    return dirs


NEEDS = {"a": ["base"], "b": ["base"], "c": ["a", "b"], "base": [], "x": [], "y": []}


class Events:
    """The plain progress lines of a run, in order: `lkpkg: ORG/NAME:TAG[-ARCH]: what`."""

    def __init__(self, stderr: str) -> None:
        self.lines = [line for line in stderr.splitlines() if line.startswith("lkpkg: ")]

    def first(self, name: str, what: str) -> int:
        for number, line in enumerate(self.lines):
            subject, _, text = line.removeprefix("lkpkg: ").partition(": ")
            repository, colon, _ = subject.rpartition(":")
            if colon and repository.endswith(f"/{name}") and text.startswith(what):
                return number
        raise AssertionError(f"no '{what}' line for {name} in:\n" + "\n".join(self.lines))

    def has(self, name: str, what: str) -> bool:
        try:
            self.first(name, what)
        except AssertionError:
            return False
        return True

    def span(self, name: str) -> tuple[int, int]:
        """From the package's first build to its index: when it was at work."""
        return self.first(name, "building with"), self.first(name, "index sha256:")

    def overlapping(self, names: list[str]) -> list[tuple[str, str]]:
        pairs = []
        for one in names:
            for other in names:
                if one < other:
                    (a0, a1), (b0, b1) = self.span(one), self.span(other)
                    if a0 < b1 and b0 < a1:
                        pairs.append((one, other))
        return pairs


def check_order(events: Events, needs: dict[str, list[str]]) -> None:
    for name, required in needs.items():
        for other in required:
            assert events.first(other, "index sha256:") < events.first(name, "building with"), (
                f"{name} was built before {other}, which it needs"
            )


def build(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return lkpkg("build", "--progress", "plain", *args, check=check)


def test_a_tree_builds_in_dependency_order_and_independent_packages_overlap(
    tmp_path, buildah_store
):
    dirs = tiny_tree(tmp_path / "repo")
    cache = tmp_path / "cache"
    options = ["--cache", str(cache), "-j", "2", "--platforms", "linux/amd64,linux/arm64"]
    result = build(*options, *(str(d) for d in dirs.values()))
    events = Events(result.stderr)
    check_order(events, NEEDS)
    assert events.overlapping(list(NEEDS)), "-j 2 never had two packages at work at once"
    # c got both siblings: its pinned FROM (a, on base) and its @lkt:pkg: stage (b).
    refs = index_json(cache)
    c_tag = git(tmp_path / "repo", "rev-parse", "HEAD:c")
    for arch in ("amd64", "arm64"):
        files = layer_files(cache, refs[f"docker.io/{ORG}/c:{c_tag}-{arch}"])
        assert set(files) == {"base.txt", "a.txt", "from-b.txt", "c.txt"}
    # One stdout line per package, the summary table on stderr.
    assert len(result.stdout.splitlines()) == 6
    assert all(line.endswith("built=amd64,arm64") for line in result.stdout.splitlines())
    table = result.stderr.splitlines()[-7:]
    assert table[0].split() == ["PACKAGE", "TAG", "PLATFORMS", "STATUS", "SIGNED", "NOTE"]
    for name, line in zip(dirs, table[1:], strict=True):
        tag = git(tmp_path / "repo", "rev-parse", f"HEAD:{name}")
        assert line.split() == [f"{ORG}/{name}", tag, "amd64,arm64", "built", "-"]


def test_jobs_1_builds_one_package_at_a_time(tmp_path, buildah_store):
    dirs = tiny_tree(tmp_path / "repo")
    options = ["--cache", str(tmp_path / "cache"), "-j", "1", "--platforms", "linux/amd64"]
    result = build(*options, *(str(d) for d in dirs.values()))
    events = Events(result.stderr)
    check_order(events, NEEDS)
    assert events.overlapping(list(NEEDS)) == []
    # What others wait on goes first (base, then a and b, which c needs), then the rest in
    # argument order: x and y were listed before c.
    starts = sorted(NEEDS, key=lambda name: events.first(name, "building with"))
    assert starts == ["base", "a", "b", "x", "y", "c"]


def test_a_failure_blocks_only_what_needs_it(tmp_path, buildah_store):
    dirs = tiny_tree(tmp_path / "repo", broken="b")
    cache = tmp_path / "cache"
    options = ["--cache", str(cache), "--json", "--platforms", "linux/amd64"]
    result = build(*options, *(str(d) for d in dirs.values()), check=False)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"lkpkg: error: 2 of 6 packages failed: {ORG}/b: buildah build")
    assert last.endswith(f"; {ORG}/c: needs {ORG}/b, which failed")
    assert "Traceback" not in result.stderr
    events = Events(result.stderr)
    assert events.has("b", "failed: buildah build for linux/amd64 failed")
    assert "no-such-file" in result.stderr  # the builder's own words, as the tail
    assert events.has("c", "blocked: needs")
    assert not events.has("c", "building with"), "a blocked package was attempted"
    for name in ("base", "a", "x", "y"):
        assert events.has(name, "index sha256:")

    summary = json.loads(result.stdout)
    by_name = {p["image"]: p for p in summary["packages"]}
    assert summary["ok"] is False
    assert summary["counts"] == {"built": 4, "skipped": 0, "failed": 1, "blocked": 1}
    assert by_name[f"{ORG}/b"]["status"] == "failed"
    assert "buildah build for linux/amd64 failed" in by_name[f"{ORG}/b"]["error"]
    assert by_name[f"{ORG}/c"]["status"] == "blocked"
    assert by_name[f"{ORG}/c"]["blocked_by"] == [str(dirs["b"])]
    assert by_name[f"{ORG}/c"]["platforms"][0]["digest"] is None
    refs = index_json(cache)
    for name in ("base", "a", "x", "y"):
        entry = by_name[f"{ORG}/{name}"]
        assert entry["status"] == "built"
        assert refs[entry["reference"]] == entry["index"]
    assert not any(f"/{ORG}/b:" in ref or f"/{ORG}/c:" in ref for ref in refs)


def test_json_describes_every_package_and_a_rebuild_skips_all(tmp_path, buildah_store):
    dirs = tiny_tree(tmp_path / "repo")
    cache = tmp_path / "cache"
    args = ["--cache", str(cache), "--json", "--platforms", "linux/amd64,linux/arm64"]
    first = json.loads(build(*args, *(str(d) for d in dirs.values())).stdout)
    refs = index_json(cache)
    assert first["command"] == "build" and first["ok"] is True
    assert [p["directory"] for p in first["packages"]] == [str(d) for d in dirs.values()]
    for entry in first["packages"]:
        name = entry["image"].split("/")[-1]
        tag = git(tmp_path / "repo", "rev-parse", f"HEAD:{name}")
        assert entry["reference"] == f"docker.io/{ORG}/{name}:{tag}"
        assert entry["tag"] == tag and entry["status"] == "built"
        assert entry["index"] == refs[entry["reference"]]
        assert entry["needs"] == [str(dirs[n]) for n in sorted(NEEDS[name], key=list(dirs).index)]
        assert entry["error"] is None and entry["signed"] == []
        for platform, arch in zip(entry["platforms"], ("amd64", "arm64"), strict=True):
            assert platform["platform"] == f"linux/{arch}"
            assert platform["reference"] == f"{entry['reference']}-{arch}"
            assert platform["digest"] == refs[platform["reference"]]
            assert platform["built"] is True
            assert image_config(cache, platform["digest"])["architecture"] == arch
    again = json.loads(build(*args, *(str(d) for d in dirs.values())).stdout)
    assert again["counts"] == {"built": 0, "skipped": 6, "failed": 0, "blocked": 0}
    assert [p["index"] for p in again["packages"]] == [p["index"] for p in first["packages"]]


def test_a_cycle_is_one_line_exit_2_and_nothing_is_built(tmp_path):
    repo = tmp_path / "repo"
    a = package(repo, "a", "ARG B\nFROM ${B}\n", "buildArgs: [B=@lkt:pkg:../b]\n")
    b = package(repo, "b", f"FROM {ORG}/a:any-tag\n")
    x = package(repo, "x", "FROM scratch\n")
    commit(repo, "cycle")
    cache = tmp_path / "cache"
    result = build("--cache", str(cache), str(x), str(a), str(b), check=False)
    assert result.returncode == 2
    assert result.stderr == f"lkpkg: error: dependency cycle between packages: {a} -> {b} -> {a}\n"
    assert result.stdout == ""
    assert not cache.exists()


def test_the_examples_tree_builds_for_both_arches_then_rebuilds_without_a_builder(
    tmp_path, cache_dir, buildah_store
):
    names = sorted(p.parent.name for p in EXAMPLES.glob("*/build.yml"))
    assert len(names) >= 6
    repo = copy_examples(tmp_path / "repo", *names, "shared")
    dirs = [str(repo / name) for name in names]
    args = ["--cache", str(cache_dir), "--platforms", "linux/amd64,linux/arm64"]
    result = build(*args, "-j", "2", *dirs)
    events = Events(result.stderr)
    check_order(
        events,
        {"toolbox": ["base"], "console": ["toolbox", "hello"], "banner": ["motd"]},
    )
    assert events.overlapping(names), "-j 2 never had two packages at work at once"

    # console is toolbox (on base) plus hello's binary and its own file, on each arch.
    refs = index_json(cache_dir)
    for arch in ("amd64", "arm64"):
        ref = f"docker.io/examples/console:{git(repo, 'rev-parse', 'HEAD:console')}-{arch}"
        files = layer_files(cache_dir, refs[ref])
        assert {"etc/os-release", "usr/bin/sysinfo", "usr/bin/hello", "etc/console.conf"} <= set(
            files
        )
        assert files["etc/examples/arch"] == f"{arch}\n".encode()  # base ran on that arch
        config = image_config(cache_dir, refs[ref])
        assert config["architecture"] == arch
        runtime = json.loads(config["config"]["Labels"]["org.mobyproject.config"])  # type: ignore[index]
        assert runtime["command"] == ["/usr/bin/sysinfo"]

    # Nothing changed: no builder may run (none is on PATH), every package is skipped.
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "git").symlink_to(str(shutil.which("git")))
    again = lkpkg(
        "build", "--json", *args, *dirs, env={"PATH": str(bare), "LKPKG_PROGRESS": "plain"}
    )
    summary: dict[str, Any] = json.loads(again.stdout)
    assert summary["counts"]["skipped"] == len(names)
    assert again.stderr.count("in cache, not rebuilt") == 2 * len(names)
    assert "building" not in again.stderr


def test_push_of_a_tree_in_order_then_again_unchanged(tmp_path, registry_plain, buildah_store):
    org = f"{registry_plain.host}/{registry_plain.repo('many')}"
    dirs = tiny_tree(tmp_path / "repo", org=org)
    cache = tmp_path / "cache"
    args = ["push", "--notrust", "--progress", "plain", "--json", "--cache", str(cache)]
    args += ["--platforms", "linux/amd64,linux/arm64", *(str(d) for d in dirs.values())]
    result = lkpkg(*args)
    events = Events(result.stderr)
    check_order(events, NEEDS)
    summary = json.loads(result.stdout)
    assert summary["command"] == "push" and summary["ok"] is True
    for entry in summary["packages"]:
        assert entry["status"] == "built"
        assert [p["pushed"] for p in entry["platforms"]] == [True, True]
        raw = run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{entry['reference']}"]
        ).stdout
        assert sorted(
            m["platform"]["architecture"]
            for m in json.loads(raw)["manifests"]
            if not is_attestation(m)
        ) == [
            "amd64",
            "arm64",
        ]
    # The summary table names what was pushed.
    assert "PUSHED" in result.stderr and "amd64,arm64" in result.stderr

    again = lkpkg(*args)
    summary = json.loads(again.stdout)
    assert summary["counts"]["skipped"] == 6
    assert all(p["pushed"] is False for e in summary["packages"] for p in e["platforms"])
    assert again.stderr.count(": unchanged sha256:") == 12


def test_a_failed_push_fails_that_package_and_the_rest_is_pushed(
    tmp_path, registry_plain, buildah_store
):
    org = f"{registry_plain.host}/{registry_plain.repo('mixed')}"
    repo = tmp_path / "repo"
    clean = package(repo, "clean", "FROM scratch\nCOPY clean.txt /\n", org=org)
    commit(repo, "clean")
    dirty = package(repo, "dirty", "FROM scratch\nCOPY dirty.txt /\n", org=org)
    options = ["--notrust", "--progress", "plain", "--cache", str(tmp_path / "cache")]
    options += ["--platforms", "linux/amd64"]
    result = lkpkg("push", *options, str(clean), str(dirty), check=False)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"lkpkg: error: 1 of 2 packages failed: {org}/dirty: ")
    assert "refusing to push a dirty package" in last
    assert "Traceback" not in result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{org}/clean:") and "pushed=amd64" in line
    tag = git(repo, "rev-parse", "HEAD:clean")
    raw = run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{org}/clean:{tag}"])
    assert json.loads(raw.stdout)["manifests"]


def test_concurrent_pushes_share_the_registrys_credentials(
    tmp_path, registry_basic: RegistryInfo, buildah_store
):
    org = f"{registry_basic.host}/{registry_basic.repo('creds')}"
    repo = tmp_path / "repo"
    dirs = [package(repo, name, f"FROM scratch\nCOPY {name}.txt /\n", org=org) for name in "pqrs"]
    commit(repo, "four")
    options = ["--notrust", "--progress", "plain", "-j", "4", "--cache", str(tmp_path / "c")]
    options += ["--json", "--platforms", "linux/amd64"]
    result = lkpkg(
        "push",
        *options,
        *(str(d) for d in dirs),
        env={"DOCKER_CONFIG": str(registry_basic.docker_config)},
    )
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert [p["platforms"][0]["pushed"] for p in summary["packages"]] == [True] * 4
