"""SLSA provenance v1 (slsa.dev/spec/v1.0/provenance) for one platform's build.

What it records: the source (repository, commit, package directory, content hash, dirty
or not), the digests of build.yml and the Dockerfile, the build arguments as resolved (any
whose name looks like a credential is recorded as redacted), the base images by digest,
the builder, the platform, and when the build started and finished. The times make the
statement differ between two builds of one commit; everything else is a function of the
inputs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lkpkg.oci.model import Platform

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
# URNs, not URLs: they name lkpkg's build template and builders without promising a page.
BUILD_TYPE = "urn:lkpkg:build-type:package:v1"
REDACTED = "<redacted>"
# Build-arg names that carry credentials by convention; their values are never recorded.
_SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|API_?KEY|PRIVATE)", re.IGNORECASE
)


@dataclass(frozen=True)
class FileDigest:
    path: str  # relative to the repository (or the package directory outside git)
    sha256: str  # hex


@dataclass(frozen=True)
class BaseDigest:
    name: str  # the reference FROM resolved to
    digest: str  # sha256:<hex> of the platform's manifest


@dataclass(frozen=True)
class BuildFacts:
    repository_uri: str
    commit: str | None
    package_path: str
    tree_hash: str
    dirty: bool
    build_yml: FileDigest | None
    dockerfile: FileDigest
    build_args: Mapping[str, str]
    bases: Sequence[BaseDigest]
    builder: str
    builder_version: str | None
    lkpkg_version: str
    platform: Platform
    started: float  # epoch seconds
    finished: float


def redact(args: Mapping[str, str]) -> dict[str, str]:
    return {k: (REDACTED if _SECRET_NAME.search(k) else v) for k, v in sorted(args.items())}


def _time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _file(f: FileDigest) -> dict[str, Any]:
    return {"path": f.path, "digest": {"sha256": f.sha256}}


def predicate(facts: BuildFacts) -> dict[str, Any]:
    source: dict[str, Any] = {
        "uri": facts.repository_uri,
        "path": facts.package_path,
        "treeHash": facts.tree_hash,
        "dirty": facts.dirty,
    }
    if facts.commit is not None:
        source["commit"] = facts.commit
    external: dict[str, Any] = {
        "source": source,
        "platform": str(facts.platform),
        "dockerfile": _file(facts.dockerfile),
        "buildArgs": redact(facts.build_args),
    }
    if facts.build_yml is not None:
        external["buildYml"] = _file(facts.build_yml)
    resolved: list[dict[str, Any]] = []
    if facts.commit is not None:
        resolved.append(
            {
                "uri": f"git+{facts.repository_uri}@{facts.commit}",
                "digest": {"gitCommit": facts.commit},
            }
        )
    for base in sorted(facts.bases, key=lambda b: b.name):
        algorithm, _, hex_ = base.digest.partition(":")
        resolved.append(
            {
                "uri": f"pkg:docker/{base.name}?platform={str(facts.platform).replace('/', '%2F')}",
                "name": base.name,
                "digest": {algorithm: hex_},
            }
        )
    version = {"lkpkg": facts.lkpkg_version}
    if facts.builder_version:
        version[facts.builder] = facts.builder_version
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": {"builder": facts.builder},
            "resolvedDependencies": resolved,
        },
        "runDetails": {
            "builder": {"id": f"urn:lkpkg:builder:{facts.builder}", "version": version},
            "metadata": {"startedOn": _time(facts.started), "finishedOn": _time(facts.finished)},
        },
    }
