"""`lkpkg plan`'s waves: per arch, after what a package builds on, skipping what the registry
holds; and its renderings (the fleet run against a real registry is tests/integration/
test_fleet.py)."""

from __future__ import annotations

import json
from pathlib import Path

from ruamel.yaml import YAML

from lkpkg.consumer.plan import make_plan, render
from lkpkg.oci.model import Platform
from lkpkg.package.model import Package, load_packages
from lkpkg.pipeline.graph import package_graph


def make(root: Path, name: str, build_yml: str = "", dockerfile: str = "FROM scratch\n") -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "build.yml").write_text(
        f"image: {name}\norg: o\narches: [amd64, arm64]\n{build_yml}"
    )
    (directory / "Dockerfile").write_text(dockerfile)
    return directory


def tree(root: Path) -> list[Path]:
    """base <- tool <- app, and lone (no deps); app also needs lone."""
    return [
        make(root, "app", "buildArgs:\n  - T=@lkt:pkg:../tool\n  - L=@lkt:pkg:../lone\n"),
        make(root, "tool", "buildArgs:\n  - B=@lkt:pkg:../base\n"),
        make(root, "base"),
        make(root, "lone"),
    ]


def plan_of(root: Path, present: set[tuple[str, str]], platforms: list[Platform] | None = None):
    dirs = tree(root)
    graph = package_graph(load_packages(dirs))

    def in_registry(package: Package, arch: str) -> bool:
        return (package.spec.image, arch) in present

    return make_plan(graph, {d.resolve(): d.name for d in dirs}, platforms, in_registry)


def waves(plan) -> list[list[tuple[str, str]]]:
    return [sorted((plan.dirs[c.package], c.arch) for c in w) for w in plan.waves]


def test_waves_follow_dependencies_per_arch(tmp_path):
    plan = plan_of(tmp_path, set())
    assert waves(plan) == [
        [("base", "amd64"), ("base", "arm64"), ("lone", "amd64"), ("lone", "arm64")],
        [("tool", "amd64"), ("tool", "arm64")],
        [("app", "amd64"), ("app", "arm64")],
    ]
    app = next(c for c in plan.pending if plan.dirs[c.package] == "app")
    assert plan.cell_json(app)["needs"] == ["tool", "lone"]
    assert plan.cell_json(app)["pull"] == [
        "o/tool:" + plan.reference(1).tag,
        "o/lone:" + plan.reference(3).tag,
    ]


def test_what_the_registry_holds_is_not_planned_and_does_not_hold_back(tmp_path):
    # base is published for both arches, tool for arm64: tool/amd64 starts at once, and
    # app/arm64 only waits for nothing but itself.
    present = {("base", "amd64"), ("base", "arm64"), ("tool", "arm64"), ("lone", "arm64")}
    plan = plan_of(tmp_path, present)
    assert waves(plan) == [
        [("app", "arm64"), ("lone", "amd64"), ("tool", "amd64")],
        [("app", "amd64")],
    ]
    document = json.loads(render(plan, "json"))
    assert len(document["present"]) == 4
    everything = {(p, a) for p in ("app", "tool", "base", "lone") for a in ("amd64", "arm64")}
    assert plan_of(tmp_path / "again", everything).waves == []


def test_platforms_filter_build_yml_arches(tmp_path):
    plan = plan_of(
        tmp_path, set(), [Platform.parse("linux/arm64"), Platform.parse("linux/riscv64")]
    )
    assert {c.arch for c in plan.cells} == {"arm64"}
    assert len(plan.waves) == 3


def test_github_matrix_is_one_wave_with_command_line_strings(tmp_path):
    plan = plan_of(tmp_path, set())
    matrix = json.loads(render(plan, "github", 2))
    assert [(e["dir"], e["arch"]) for e in matrix["include"]] == [
        ("app", "amd64"),
        ("app", "arm64"),
    ]
    assert matrix["include"][0]["dirs"] == "tool lone app"
    assert matrix["include"][0]["pull"].count(" ") == 1
    assert json.loads(render(plan, "github", 7)) == {"include": []}
    every = json.loads(render(plan, "github"))
    assert [len(w["include"]) for w in every["waves"]] == [4, 2, 2]
    assert every["waves"][2] == matrix


def test_gitlab_child_pipeline_has_a_stage_and_a_matrix_per_wave(tmp_path):
    plan = plan_of(tmp_path, set())
    pipeline = YAML(typ="safe").load(render(plan, "gitlab"))
    assert pipeline["stages"] == ["wave-0", "wave-1", "wave-2"]
    assert [len(pipeline[f"wave-{n}"]["parallel"]["matrix"]) for n in range(3)] == [4, 2, 2]
    assert pipeline["wave-1"]["extends"] == ".lkpkg-cell"
    included = YAML(typ="safe").load(render(plan, "gitlab", gitlab_include=".gitlab/lkpkg.yml"))
    assert included["include"] == [{"local": ".gitlab/lkpkg.yml"}]
    assert included[".lkpkg-cell"]["extends"] == ".lkpkg-runner"
    empty = plan_of(
        tmp_path / "done",
        {(p, a) for p in ("app", "tool", "base", "lone") for a in ("amd64", "arm64")},
    )
    assert "nothing-to-build" in YAML(typ="safe").load(render(empty, "gitlab"))


def test_graphs_show_every_edge_and_what_is_already_published(tmp_path):
    plan = plan_of(tmp_path, {("base", "amd64"), ("base", "arm64")})
    dot = render(plan, "dot")
    assert dot.count(" -> ") == 3 and 'label="in the registry"' in dot
    mermaid = render(plan, "mermaid")
    assert mermaid.count(" --> ") == 3 and "class p2 done" in mermaid


def test_a_published_package_whose_index_lacks_an_arch_is_listed_for_repair(tmp_path):
    dirs = tree(tmp_path)
    graph = package_graph(load_packages(dirs))
    present = {(p, a) for p in ("base", "tool") for a in ("amd64", "arm64")}
    indexes = {"base": {"amd64"}, "tool": {"amd64", "arm64"}}
    plan = make_plan(
        graph,
        {d.resolve(): d.name for d in dirs},
        None,
        lambda package, arch: (package.spec.image, arch) in present,
        lambda package: indexes.get(package.spec.image, set()),
    )
    assert [(plan.dirs[r.package], r.missing) for r in plan.repairs] == [("base", ("arm64",))]
    (entry,) = json.loads(render(plan, "json"))["repair"]
    assert entry["missing"] == ["arm64"] and entry["command"].startswith("lkpkg manifest o/base:")
