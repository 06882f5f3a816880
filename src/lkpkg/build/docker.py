"""A Docker engine as builder (for hosts without buildah, e.g. Docker Desktop).

Why it looks like this:
- The build runs on the engine's BuildKit. A docker client of 23.0 or newer only drives
  BuildKit through the buildx plugin, an older client does it itself with DOCKER_BUILDKIT=1;
  we pick the first client on the search list that can do one or the other.
- A 20.10 engine keeps one image per name (no local manifest lists), so a base is loaded for
  the requested platform just before the build, and builds on one engine are serialised.
- The result comes out with `docker save` and is converted to an OCI layout.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from lkpkg.build.base import LAYOUT_REF, BaseImage, BuildRequest
from lkpkg.build.dockerarchive import docker_archive_to_layout, write_docker_archive
from lkpkg.build.locks import host_lock, lock_path
from lkpkg.oci.model import Platform
from lkpkg.proc import run_logged, run_quiet
from lkpkg.reference import Reference

CLIENT_CANDIDATES = ("docker", "/usr/bin/docker")


@cache
def _client_mode(executable: str) -> str | None:
    """'buildx' or 'legacy' when this client can drive BuildKit, else None."""
    if run_quiet([executable, "buildx", "version"], timeout=20).returncode == 0:
        return "buildx"
    version = run_quiet([executable, "version", "--format", "{{.Client.Version}}"], timeout=20)
    major = version.stdout.strip().split(".", 1)[0]
    if major.isdigit() and int(major) < 23:
        return "legacy"
    return None


class DockerBuilder:
    name = "docker"
    remote: bool

    def __init__(
        self, host: str | None = None, clients: Sequence[str] | None = None, *, remote: bool = False
    ) -> None:
        self.host = host or os.environ.get("DOCKER_HOST")
        self.remote = remote
        if remote:
            self.name = f"docker@{host}"
        env_client = os.environ.get("LKPKG_DOCKER_CLIENT")
        self.clients = tuple(clients or ((env_client,) if env_client else CLIENT_CANDIDATES))

    def _env(self) -> dict[str, str]:
        env = {"DOCKER_BUILDKIT": "1"}
        if self.host:
            env["DOCKER_HOST"] = self.host
        return env

    def _client(self) -> tuple[str, str] | None:
        for candidate in self.clients:
            path = shutil.which(candidate)
            if path is None:
                continue
            mode = _client_mode(path)
            if mode is not None:
                return path, mode
        return None

    def problem(self) -> str | None:
        client = self._client()
        if client is None:
            return (
                "no docker client that can drive BuildKit (need buildx, or a client older than "
                "23.0; set LKPKG_DOCKER_CLIENT)"
            )
        answer = run_quiet(
            [client[0], "version", "--format", "{{.Server.Version}}"], env=self._env(), timeout=20
        )
        if answer.returncode != 0:
            where = self.host or "the default socket"
            return f"no Docker engine answers at {where} (start dockerd or set DOCKER_HOST)"
        return None

    def _provide_base(
        self, client: str, base: BaseImage, platform: Platform, scratch: Path
    ) -> None:
        instance = base.for_platform(platform)
        if instance is None:
            return
        name = Reference.parse(base.name).familiar()
        current = run_quiet(
            [client, "image", "inspect", "--format", "{{.Id}}", name], env=self._env()
        )
        if current.returncode == 0 and current.stdout.strip() == instance.config_digest:
            return
        archive = scratch / "base.tar"
        with archive.open("wb") as handle:
            write_docker_archive(base.layout, instance.manifest_digest, name, handle)
        run_logged(
            [client, "load", "--input", str(archive)], what=f"loading base {name}", env=self._env()
        )
        archive.unlink()

    def build(self, request: BuildRequest, out: Path) -> None:
        client = self._client()
        if client is None:
            raise RuntimeError("DockerBuilder.build called although problem() reported one")
        executable, mode = client
        out.parent.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.TemporaryDirectory(dir=out.parent) as tmp,
            host_lock(lock_path("docker-engine", self.host or "default")),
        ):
            scratch = Path(tmp)
            for base in request.bases:
                self._provide_base(executable, base, request.platform, scratch)
            argv = [executable, *(["buildx", "build", "--load"] if mode == "buildx" else ["build"])]
            argv += [
                "--platform",
                str(request.platform),
                "--network",
                "host" if request.network else "none",
                "--file",
                str(request.dockerfile),
                "--tag",
                request.local_name,
            ]
            if not request.use_layer_cache:
                argv.append("--no-cache")
            for key, value in request.build_args.items():
                argv += ["--build-arg", f"{key}={value}"]
            for key, value in request.labels.items():
                argv += ["--label", f"{key}={value}"]
            argv.append(str(request.context))
            run_logged(
                argv,
                what=f"docker build for {request.platform}",
                env=self._env(),
                echo=request.verbose,
            )
            saved = scratch / "image.tar"
            run_logged(
                [executable, "save", "--output", str(saved), request.local_name],
                what=f"exporting {request.local_name} from docker",
                env=self._env(),
            )
            docker_archive_to_layout(saved, out, LAYOUT_REF)
