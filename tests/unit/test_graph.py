"""The package dependency graph: @lkt:pkg: edges, FROM-a-sibling edges, order and cycles."""

from __future__ import annotations

from pathlib import Path

import pytest

from lkpkg.errors import EXIT_BAD_INPUT, InputError
from lkpkg.package.model import Package, load_packages
from lkpkg.pipeline.graph import PackageGraph, package_graph


def make(root: Path, name: str, dockerfile: str = "FROM scratch\n", build_yml: str = "") -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "build.yml").write_text(f"image: {name}\norg: examples\n{build_yml}")
    (directory / "Dockerfile").write_text(dockerfile)
    return directory


def lkt(**args: str) -> str:
    return "buildArgs:\n" + "".join(f"  - {k}=@lkt:pkg:{v}\n" for k, v in args.items())


def load(*directories: Path, org: str | None = None) -> list[Package]:
    return load_packages(list(directories), org=org)


def needs(graph: PackageGraph) -> dict[str, set[str]]:
    return {
        graph.labels[i]: {graph.labels[n] for n in graph.needs(i)}
        for i in range(len(graph.packages))
    }


def test_an_lkt_build_arg_naming_a_package_of_the_run_is_an_edge(tmp_path: Path) -> None:
    base = make(tmp_path, "base")
    app = make(tmp_path, "app", "ARG BASE\nFROM ${BASE}\n", lkt(BASE="../base"))
    graph = package_graph(load(app, base))
    assert needs(graph) == {"examples/app": {"examples/base"}, "examples/base": set()}
    (edge,) = graph.edges[0]
    assert edge.why == "buildArgs BASE=@lkt:pkg:../base"
    # Built first although listed second.
    assert [graph.labels[i] for i in graph.order()] == ["examples/base", "examples/app"]


def test_an_lkt_arg_counts_even_when_no_from_line_uses_it(tmp_path: Path) -> None:
    # linuxkit resolves the tag before the build; a package may pass it on as a plain value.
    make(tmp_path, "base")
    app = make(tmp_path, "app", "FROM scratch\nARG BASE\n", lkt(BASE="../base/"))
    graph = package_graph(load(app, tmp_path / "base"))
    assert needs(graph)["examples/app"] == {"examples/base"}


@pytest.mark.parametrize(
    "from_line",
    [
        "FROM examples/base:0123456789abcdef",  # a pinned tag, linuxkit's idiom
        "FROM docker.io/examples/base:other AS build\nFROM scratch",
        "FROM examples/base@sha256:" + "a" * 64,
        "FROM --platform=$BUILDPLATFORM examples/base:x",
        "ARG BASE=examples/base:v1\nFROM ${BASE}",
        "ARG TAG=v1\nFROM examples/base:${TAG}",
    ],
)
def test_a_from_naming_a_siblings_image_with_any_tag_is_an_edge(
    tmp_path: Path, from_line: str
) -> None:
    base = make(tmp_path, "base")
    app = make(tmp_path, "app", from_line + "\n")
    graph = package_graph(load(base, app))
    assert needs(graph) == {"examples/app": {"examples/base"}, "examples/base": set()}
    assert graph.edges[1][0].why.startswith("FROM ")


def test_a_from_through_a_plain_build_arg_is_an_edge(tmp_path: Path) -> None:
    base = make(tmp_path, "base")
    app = make(
        tmp_path, "app", "ARG BASE\nFROM ${BASE}\n", "buildArgs:\n  - BASE=examples/base:v2\n"
    )
    assert needs(package_graph(load(base, app)))["examples/app"] == {"examples/base"}


def test_froms_of_other_images_stages_and_itself_are_no_edges(tmp_path: Path) -> None:
    base = make(tmp_path, "base", "FROM examples/base:previous\n")  # its own older self
    app = make(
        tmp_path,
        "app",
        "FROM localhost/debian:bookworm AS base\nFROM base\nFROM scratch\n"
        "FROM examples/basement:1\nFROM other/base:1\n",
    )
    assert needs(package_graph(load(base, app))) == {"examples/base": set(), "examples/app": set()}


def test_the_org_override_decides_what_a_sibling_is_called(tmp_path: Path) -> None:
    base = make(tmp_path, "base")
    old = make(tmp_path, "old", "FROM examples/base:1\n")
    new = make(tmp_path, "new", "FROM wombat/base:1\n")
    graph = package_graph(load(base, old, new, org="wombat"))
    assert needs(graph) == {
        "wombat/base": set(),
        "wombat/old": set(),
        "wombat/new": {"wombat/base"},
    }


def test_an_lkt_arg_outside_the_run_is_no_edge_and_matches_nothing(tmp_path: Path) -> None:
    make(tmp_path, "elsewhere")
    # `base` is in the run; the FROM sees the unresolved @lkt value, not base's name.
    base = make(tmp_path, "base")
    app = make(
        tmp_path,
        "app",
        "ARG BASE=examples/base:default\nFROM ${BASE}\n",
        lkt(BASE="../elsewhere"),
    )
    assert needs(package_graph(load(base, app))) == {"examples/base": set(), "examples/app": set()}


def test_a_directory_given_twice_is_one_package(tmp_path: Path) -> None:
    base = make(tmp_path, "base")
    graph = package_graph(load(base, base, base), ["base", "again", "more"])
    assert graph.labels == ("base",)
    assert len(graph.packages) == 1


def test_a_cycle_is_bad_input_naming_it(tmp_path: Path) -> None:
    a = make(tmp_path, "a", "ARG B\nFROM ${B}\n", lkt(B="../b"))
    b = make(tmp_path, "b", "FROM examples/a:pinned\n")
    with pytest.raises(InputError) as caught:
        package_graph(load(a, b), ["pkg/a", "pkg/b"])
    assert caught.value.message == "dependency cycle between packages: pkg/a -> pkg/b -> pkg/a"
    assert caught.value.exit_code == EXIT_BAD_INPUT


def test_the_cycle_named_is_the_cycle_not_the_path_into_it(tmp_path: Path) -> None:
    # entry -> x -> y -> z -> x: `entry` leads into the cycle but is not part of it.
    entry = make(tmp_path, "entry", "FROM examples/x:1\n")
    x = make(tmp_path, "x", "FROM examples/y:1\n")
    y = make(tmp_path, "y", "FROM examples/z:1\n")
    z = make(tmp_path, "z", "ARG X\nFROM ${X}\n", lkt(X="../x"))
    with pytest.raises(InputError) as caught:
        package_graph(load(entry, x, y, z))
    assert caught.value.message.endswith(": examples/x -> examples/y -> examples/z -> examples/x")


def test_order_puts_every_package_after_what_it_needs_and_long_chains_first(
    tmp_path: Path,
) -> None:
    leaf = make(tmp_path, "leaf")
    top = make(tmp_path, "top", "FROM examples/middle:1\nFROM examples/side:1\n")
    middle = make(tmp_path, "middle", "FROM examples/base:1\n")
    side = make(tmp_path, "side")
    base = make(tmp_path, "base")
    graph = package_graph(load(leaf, top, middle, side, base))
    order = [graph.labels[i].removeprefix("examples/") for i in graph.order()]
    for position, name in enumerate(order):
        for needed in needs(graph)[f"examples/{name}"]:
            assert order.index(needed.removeprefix("examples/")) < position
    # base heads the longest chain (base -> middle -> top) so it starts first; leaf, needed by
    # nobody, waits for the packages others wait on although it was listed first.
    assert order == ["base", "middle", "side", "leaf", "top"]
