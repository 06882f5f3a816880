"""What a package's build is told about itself: linuxkit's automatic build args and labels.

Both are computed here from the package (its build.yml, hash and git state) so that every
builder and the dependency graph see the same values; the pipeline only passes them on.

As linuxkit (pkglib/build.go) does:
* build args `SOURCE` (build.yml `gitrepo`, default linuxkit's repository; none when it is
  empty), `PKG_HASH`, `PKG_IMAGE` (ORG/IMAGE), `REVISION` (the HEAD commit, only for a clean
  package), `GOPKGVERSION`; build.yml's `buildArgs` and `--build-arg-file` override them;
* labels `org.opencontainers.image.source`, `org.opencontainers.image.revision` (clean only),
  `org.mobyproject.config` (build.yml `config` as JSON) and `org.mobyproject.linuxkit.version`
  (the version of the tool that built it: here lkpkg's). linuxkit also sets
  `org.mobyproject.linuxkit.revision` to its own git commit; lkpkg, installed as a package,
  has no commit to give, so leaves it out.
"""

from __future__ import annotations

import datetime as dt
import json

from lkpkg.package.model import Package

# pkglib NewPkgInfo(): the gitrepo of a build.yml that names none.
DEFAULT_GITREPO = "https://github.com/linuxkit/linuxkit"


def source(package: Package) -> str | None:
    """The package's source repository URL, or None when build.yml sets `gitrepo: ""`."""
    gitrepo = package.spec.gitrepo
    if gitrepo is None:
        return DEFAULT_GITREPO
    return gitrepo or None


def automatic_build_args(package: Package) -> dict[str, str]:
    """linuxkit's automatic build args, before build.yml's and --build-arg-file's."""
    args: dict[str, str] = {}
    found = source(package)
    if found is not None:
        args["SOURCE"] = found
    if package.revision is not None:
        args["REVISION"] = package.revision
    if package.head is not None:
        stamp = dt.datetime.fromtimestamp(package.head.time, tz=dt.UTC).strftime("%Y%m%d%H%M%S")
        args["GOPKGVERSION"] = f"v0.0.0-{stamp}-{package.head.commit[:12]}"
    args["PKG_HASH"] = package.hash
    args["PKG_IMAGE"] = package.repository
    return args


# lkpkg's label: the `ORG/IMAGE:TAG` of every package the image was built on (`@lkt:`
# build args), comma-separated, sorted.
DEPENDENCIES_LABEL = "org.mobyproject.lkpkg.dependencies"


def build_args(package: Package) -> dict[str, str]:
    """Every build arg of the package: the automatic ones, then its resolved buildArgs."""
    args = automatic_build_args(package)
    args.update(package.build_args)
    return args


def image_labels(package: Package, tool_version: str) -> dict[str, str]:
    """The labels of the package's image, as linuxkit sets them (see the module docstring)."""
    labels: dict[str, str] = {}
    found = source(package)
    if found is not None:
        labels["org.opencontainers.image.source"] = found
    if package.revision is not None:
        labels["org.opencontainers.image.revision"] = package.revision
    if package.spec.config is not None:
        labels["org.mobyproject.config"] = json.dumps(package.spec.config, separators=(",", ":"))
    labels["org.mobyproject.linuxkit.version"] = tool_version
    if package.dependencies:
        labels[DEPENDENCIES_LABEL] = ",".join(sorted(package.dependencies))
    return labels
