"""Which recorded dependencies have moved (pipeline/dependencies.py)."""

from __future__ import annotations

from pathlib import Path

from lkpkg.package.buildinfo import DEPENDENCIES_LABEL
from lkpkg.package.buildyml import parse_build_yml_text
from lkpkg.package.model import Package
from lkpkg.pipeline.dependencies import Moved, moved, recorded


def _package(*dependencies: str) -> Package:
    spec = parse_build_yml_text("image: greeter\norg: wombat\n", "greeter/build.yml")
    return Package(Path("greeter"), spec, "wombat", "h", False, None, dependencies=dependencies)


def test_a_dependency_with_another_tag_is_moved_and_named_by_both_references():
    labels = {DEPENDENCIES_LABEL: "wombat/greetbase:old,wombat/other:same"}
    package = _package("wombat/greetbase:new", "wombat/other:same")
    assert moved(package, labels) == [
        Moved("wombat/greetbase", "wombat/greetbase:old", "wombat/greetbase:new")
    ]


def test_an_image_without_the_label_or_a_new_dependency_says_nothing():
    assert moved(_package("wombat/greetbase:new"), None) == []
    assert moved(_package("wombat/greetbase:new"), {"other": "x"}) == []
    assert recorded({DEPENDENCIES_LABEL: ""}) == ()


def test_a_dependency_renamed_by_another_org_is_matched_by_image():
    labels = {DEPENDENCIES_LABEL: "127.0.0.1:5000/me/greetbase:old"}
    found = moved(_package("linuxkit/greetbase:new"), labels)
    assert [m.built_on for m in found] == ["127.0.0.1:5000/me/greetbase:old"]
    assert moved(_package("linuxkit/greetbase:old"), labels) == []


def test_an_lkt_pkg_typo_names_build_yml_file_and_line(tmp_path):
    import pytest

    from lkpkg.errors import InputError
    from lkpkg.package.model import load_packages

    package = tmp_path / "a"
    package.mkdir()
    (package / "Dockerfile").write_text("FROM scratch\n")
    (package / "build.yml").write_text("image: a\nbuildArgs:\n  - X=1\n  - BASE=@lkt:pkg:../nope\n")
    with pytest.raises(InputError) as raised:
        load_packages([package], check_dockerfile=False)
    assert "build.yml:4: BASE=@lkt:pkg:../nope: no package directory" in raised.value.message
