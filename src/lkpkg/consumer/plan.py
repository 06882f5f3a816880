"""The work a package tree needs, as cells for a fleet of CI runners (`lkpkg plan`).

A cell is one package for one architecture whose `TAG-ARCH` the registry does not hold yet.
Cells come in waves: a cell is in wave 0 when nothing it builds on still has to be built,
else one wave after the latest cell (same arch) of the packages it needs. A runner takes a
cell, pulls the images of the packages it needs into its cache (`pull`), and pushes the
package for its one platform (`dirs`: the needed packages first, so that their `@lkt:pkg:`
tags resolve as this run names them, then the package). The registry is the shared cache:
the needed packages are already there, so nothing is built twice, and the parallel-safe index
gathers the arches that different runners push.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.errors import InputError
from lkpkg.oci.model import Platform
from lkpkg.package.model import Package
from lkpkg.pipeline.graph import PackageGraph
from lkpkg.reference import Reference

FORMATS = ("json", "github", "gitlab", "dot", "mermaid")


@dataclass(frozen=True)
class Cell:
    package: int  # index into the graph's packages
    arch: str
    platform: Platform
    present: bool  # the registry already holds TAG-ARCH
    wave: int | None  # None when present


@dataclass(frozen=True)
class Repair:
    """A package whose every arch tag is in the registry but whose index lacks some of them
    (a runner stopped between its arch tag and the index): `lkpkg manifest` rebuilds it."""

    package: int
    missing: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    graph: PackageGraph
    dirs: tuple[str, ...]  # each package's directory as the user named it
    cells: tuple[Cell, ...]
    repairs: tuple[Repair, ...] = ()

    @property
    def pending(self) -> list[Cell]:
        return [c for c in self.cells if not c.present]

    @property
    def waves(self) -> list[list[Cell]]:
        out: list[list[Cell]] = []
        for cell in self.pending:
            assert cell.wave is not None
            while len(out) <= cell.wave:
                out.append([])
            out[cell.wave].append(cell)
        return out

    def reference(self, package: int) -> Reference:
        return self.graph.packages[package].reference()

    def needs(self, package: int) -> list[int]:
        """The packages `package` builds on, in dependency order (direct ones only: a
        runner needs their images, which already hold what they were built from)."""
        return sorted(self.graph.needs(package))

    def cell_json(self, cell: Cell) -> dict[str, object]:
        needs = self.needs(cell.package)
        return {
            "package": self.graph.labels[cell.package],
            "dir": self.dirs[cell.package],
            "arch": cell.arch,
            "platform": str(cell.platform),
            "reference": str(self.reference(cell.package).familiar()),
            "wave": cell.wave,
            "needs": [self.dirs[n] for n in needs],
            "pull": [self.reference(n).familiar() for n in needs],
        }


def package_platforms(package: Package, requested: Sequence[Platform] | None) -> list[Platform]:
    """build.yml's arches, or those of `requested` it has; none when it has none of them."""
    if not requested:
        return [Platform.from_arch(arch) for arch in package.spec.arches]
    # A fleet's platforms are the runners' (unlike build's --platforms, which overrides).
    return [p for p in requested if p.architecture in package.spec.arches]


def make_plan(
    graph: PackageGraph,
    dirs: Mapping[Path, str],
    requested: Sequence[Platform] | None,
    present: Callable[[Package, str], bool],
    index_arches: Callable[[Package], set[str]] | None = None,
) -> Plan:
    """Cells for every package and platform; `present(package, arch)` asks the registry.

    With `index_arches(package)` (the arches the registry's index `TAG` lists), a package
    with nothing left to build whose index lacks an arch is listed as a repair: no later
    push of it would rewrite that index.
    """
    cells: dict[tuple[int, str], Cell] = {}
    for number in graph.order():
        package = graph.packages[number]
        for platform in package_platforms(package, requested):
            arch = platform.architecture
            if present(package, arch):
                cells[(number, arch)] = Cell(number, arch, platform, True, None)
                continue
            waits = [
                cells[(need, arch)].wave
                for need in graph.needs(number)
                if (need, arch) in cells and not cells[(need, arch)].present
            ]
            wave = 1 + max(w for w in waits if w is not None) if waits else 0
            cells[(number, arch)] = Cell(number, arch, platform, False, wave)
    repairs: list[Repair] = []
    if index_arches is not None:
        for number, package in enumerate(graph.packages):
            mine = [c for (n, _), c in cells.items() if n == number]
            if mine and all(c.present for c in mine):
                missing = sorted({c.arch for c in mine} - index_arches(package))
                if missing:
                    repairs.append(Repair(number, tuple(missing)))
    ordered = sorted(
        cells.values(), key=lambda c: (c.wave if c.wave is not None else -1, c.package, c.arch)
    )
    return Plan(
        graph, tuple(dirs[p.directory] for p in graph.packages), tuple(ordered), tuple(repairs)
    )


# -- renderings ---------------------------------------------------------------------------


def render(plan: Plan, fmt: str, wave: int | None = None, gitlab_include: str | None = None) -> str:
    if fmt == "json":
        return render_json(plan)
    if fmt == "github":
        return render_github(plan, wave)
    if fmt == "gitlab":
        return render_gitlab(plan, gitlab_include)
    if fmt == "dot":
        return render_dot(plan)
    if fmt == "mermaid":
        return render_mermaid(plan)
    raise InputError(f"unknown format '{fmt}' (one of: {', '.join(FORMATS)})")


def render_json(plan: Plan) -> str:
    document = {
        "waves": [[plan.cell_json(c) for c in cells] for cells in plan.waves],
        "present": [plan.cell_json(c) for c in plan.cells if c.present],
        "repair": [
            {
                "package": plan.graph.labels[r.package],
                "reference": plan.reference(r.package).familiar(),
                "missing": list(r.missing),
                "command": f"lkpkg manifest {plan.reference(r.package).familiar()}",
            }
            for r in plan.repairs
        ],
    }
    return json.dumps(document, indent=2)


def _matrix_entry(plan: Plan, cell: Cell) -> dict[str, object]:
    """A cell with `dirs` and `pull` as strings a workflow puts on a command line as they are."""
    needs = plan.needs(cell.package)
    return {
        "package": plan.graph.labels[cell.package],
        "dir": plan.dirs[cell.package],
        "arch": cell.arch,
        "platform": str(cell.platform),
        "reference": plan.reference(cell.package).familiar(),
        "wave": cell.wave,
        "dirs": " ".join([*(plan.dirs[n] for n in needs), plan.dirs[cell.package]]),
        "pull": " ".join(plan.reference(n).familiar() for n in needs),
    }


def render_github(plan: Plan, wave: int | None) -> str:
    """`strategy.matrix` values: `{"include": [...]}` for wave `wave` (empty past the last),
    or `{"waves": [{"include": [...]}, ...]}` for every wave from one look at the registry."""

    def matrix(cells: list[Cell]) -> dict[str, object]:
        return {"include": [_matrix_entry(plan, c) for c in cells]}

    waves = plan.waves
    if wave is not None:
        document = matrix(waves[wave] if wave < len(waves) else [])
    else:
        document = {"waves": [matrix(cells) for cells in waves]}
    return json.dumps(document, separators=(",", ":"))


def render_gitlab(plan: Plan, include: str | None = None) -> str:
    """A child pipeline: one stage and one `parallel:matrix` job per wave. With `include`, that
    file (image, tags, before_script: what a runner needs) is included and every cell job
    extends its `.lkpkg-runner` job."""
    waves = plan.waves
    lines = [
        "# Generated by `lkpkg plan --format gitlab`: one stage per wave, one job per cell.",
        "# Set LKPKG_PUSH_FLAGS (e.g. --org registry.example.com/team --sign-key ...) and",
        "# LKPKG_PULL_FLAGS (e.g. --notrust --key cosign.pub) in the parent pipeline.",
    ]
    if include is not None:
        lines += ["include:", f"  - local: {json.dumps(include)}"]
    lines += ["stages:" if waves else "stages: [nothing]"]
    lines += [f"  - wave-{n}" for n in range(len(waves))]
    lines += [".lkpkg-cell:"]
    if include is not None:
        lines += ["  extends: .lkpkg-runner"]
    lines += [
        "  script:",
        '    - if [ -n "$LKPKG_PULL" ]; then lkpkg cache pull $LKPKG_PULL_FLAGS'
        ' --platforms "$LKPKG_PLATFORM" $LKPKG_PULL; fi',
        '    - lkpkg push $LKPKG_PUSH_FLAGS --platforms "$LKPKG_PLATFORM" $LKPKG_DIRS',
    ]
    if not waves:
        lines += ["nothing-to-build:", "  stage: nothing", "  script: [echo nothing to build]"]
    for n, cells in enumerate(waves):
        lines += [f"wave-{n}:", "  extends: .lkpkg-cell", f"  stage: wave-{n}"]
        lines += ["  parallel:", "    matrix:"]
        for cell in cells:
            entry = _matrix_entry(plan, cell)
            values = {
                "LKPKG_PACKAGE": entry["package"],
                "LKPKG_ARCH": entry["arch"],
                "LKPKG_PLATFORM": entry["platform"],
                "LKPKG_DIRS": entry["dirs"],
                "LKPKG_PULL": entry["pull"],
            }
            first = True
            for key, value in values.items():
                lead = "      - " if first else "        "
                lines.append(f"{lead}{key}: {json.dumps(value)}")
                first = False
    return "\n".join(lines) + "\n"


def _node_label(plan: Plan, package: int, newline: str) -> str:
    building = [c.arch for c in plan.cells if c.package == package and not c.present]
    present = [c.arch for c in plan.cells if c.package == package and c.present]
    parts = [plan.graph.labels[package]]
    if building:
        parts.append("build: " + ", ".join(building))
    if present:
        parts.append("in registry: " + ", ".join(present))
    return newline.join(parts)


def _groups(plan: Plan) -> list[tuple[str, list[int]]]:
    """Packages grouped by their first wave; packages with nothing to build last."""
    first: dict[int, int] = {}
    for cell in plan.pending:
        assert cell.wave is not None
        first[cell.package] = min(first.get(cell.package, cell.wave), cell.wave)
    groups: list[tuple[str, list[int]]] = []
    for n in range(len(plan.waves)):
        members = [p for p in range(len(plan.graph.packages)) if first.get(p) == n]
        groups.append((f"wave {n}", members))
    done = [p for p in range(len(plan.graph.packages)) if p not in first]
    if done:
        groups.append(("in the registry", done))
    return groups


def render_dot(plan: Plan) -> str:
    lines = ["digraph lkpkg {", "  rankdir=LR;", '  node [shape=box, fontname="sans-serif"];']
    for number, (title, members) in enumerate(_groups(plan)):
        lines.append(f"  subgraph cluster_{number} {{")
        lines.append(f"    label={json.dumps(title)};")
        for p in members:
            style = ' style=filled fillcolor="#ddeedd"' if title == "in the registry" else ""
            label = _node_label(plan, p, "\\n")
            lines.append(f'    p{p} [label="{label}"{style}];')
        lines.append("  }")
    for p in range(len(plan.graph.packages)):
        for need in plan.needs(p):
            lines.append(f"  p{need} -> p{p};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_mermaid(plan: Plan) -> str:
    lines = ["flowchart LR"]
    for number, (title, members) in enumerate(_groups(plan)):
        lines.append(f'  subgraph g{number} ["{title}"]')
        for p in members:
            lines.append(f'    p{p}["{_node_label(plan, p, "<br/>")}"]')
        lines.append("  end")
    for p in range(len(plan.graph.packages)):
        for need in plan.needs(p):
            lines.append(f"  p{need} --> p{p}")
    done = [
        f"p{p}" for title, members in _groups(plan) if title == "in the registry" for p in members
    ]
    if done:
        lines.append("  classDef done fill:#ddeedd")
        lines.append(f"  class {','.join(done)} done")
    return "\n".join(lines) + "\n"
