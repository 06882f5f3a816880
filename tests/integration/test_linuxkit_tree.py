"""A tree written the way linuxkit users write them builds, pushes and tags as linuxkit would:
`@lkt:pkgs:` globs, a Dockerfile generated from `Dockerfile.in`, `network: yes`, an unquoted
`tag: 1.10`, `arches:` null. Checked in the cache and, after the push, with skopeo; show-tag
is compared with linuxkit's when a linuxkit binary is at /opt/linuxkit/bin/linuxkit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import git, lkpkg, lkpkg_default_platforms, run
from tests.integration.test_build import index_json, layer_files

pytestmark = pytest.mark.integration

LINUXKIT = Path("/opt/linuxkit/bin/linuxkit")

FILES = {
    "dep-a/build.yml": "image: dep-a\narches: [amd64]\n",
    "dep-a/Dockerfile": "FROM scratch\nCOPY msg /msg\n",
    "dep-a/msg": "a\n",
    "dep-b/build.yml": "image: dep-b\narches: [amd64]\n",
    "dep-b/Dockerfile": "FROM scratch\nCOPY msg /msg\n",
    "dep-b/msg": "b\n",
    "user/build.yml": "image: user\narches: [amd64]\nbuildArgs:\n  - DEP%=@lkt:pkgs:../dep-*\n",
    "user/Dockerfile": (
        "ARG DEPLINUXKIT_DEP_A\nARG DEPLINUXKIT_DEP_B\n"
        "FROM ${DEPLINUXKIT_DEP_A} AS a\nFROM ${DEPLINUXKIT_DEP_B} AS b\n"
        "FROM scratch\nCOPY --from=a /msg /a\nCOPY --from=b /msg /b\n"
    ),
    "gen/build.yml": "image: gen\nnetwork: yes\ntag: 1.10\narches:\n  - amd64\n",
    "gen/Dockerfile.in": "FROM scratch\nCOPY build.yml /etc/gen.yml\n",
    "gen/.gitignore": "Dockerfile\n",
    "none/build.yml": "image: none\nnetwork: no\narches:\n",
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "tree")
    return root


def test_linuxkit_style_tree_builds_pushes_and_tags_as_linuxkit(
    tree: Path, tmp_path: Path, registry_plain, buildah_store
) -> None:
    dirs = [str(tree / name) for name in ("dep-a", "dep-b", "user", "gen", "none")]
    trees = {name: git(tree, "rev-parse", f"HEAD:{name}") for name in ("dep-a", "dep-b", "user")}
    # show-tag needs no Dockerfile: gen's is generated later, as `make` would.
    shown = lkpkg("show-tag", "--org", "org", *dirs).stdout.split()
    assert shown == [
        f"org/dep-a:{trees['dep-a']}",
        f"org/dep-b:{trees['dep-b']}",
        f"org/user:{trees['user']}",
        "org/gen:1.10",
        f"org/none:{git(tree, 'rev-parse', 'HEAD:none')}",
    ]
    if LINUXKIT.exists():
        theirs = subprocess.run(
            [str(LINUXKIT), "pkg", "--org", "org", "show-tag", *dirs],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert shown == theirs

    (tree / "gen" / "Dockerfile").write_text((tree / "gen" / "Dockerfile.in").read_text())
    cache = tmp_path / "cache"
    # The glob gives one build arg per dep (key stem: ORG/IMAGE upper-cased), the run builds
    # the deps first, and user's FROM lines find them in the cache, offline.
    # No --platforms, as linuxkit runs it: build.yml's arches (amd64 here), `none` skipped.
    built = lkpkg_default_platforms("build", "--cache", str(cache), "--progress", "plain", *dirs)
    assert "Skipping linuxkit/none:" in built.stderr  # `arches:` null, as linuxkit skips it
    refs = index_json(cache)
    user_amd64 = refs[f"docker.io/linuxkit/user:{trees['user']}-amd64"]
    assert layer_files(cache, user_amd64) == {"a": b"a\n", "b": b"b\n"}

    # Pushed to a registry under another org: tags as linuxkit names them.
    org = f"{registry_plain.host}/{registry_plain.repo('lktree')}"
    pushed = [str(tree / name) for name in ("dep-a", "dep-b", "gen", "none")]
    lkpkg_default_platforms("push", "--notrust", "--cache", str(cache), "--org", org, *pushed)
    for name, tag in [("dep-a", trees["dep-a"]), ("dep-b", trees["dep-b"]), ("gen", "1.10")]:
        for suffix in ("", "-amd64"):
            run(
                [
                    "skopeo",
                    "inspect",
                    "--tls-verify=false",
                    "--raw",
                    f"docker://{org}/{name}:{tag}{suffix}",
                ]
            )
