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

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from lkpkg.builders.base import LAYOUT_REF, BaseImage, BuildRequest, EngineSettings
from lkpkg.builders.dockerarchive import docker_archive_to_layout, write_docker_archive
from lkpkg.builders.locks import host_lock, lock_path
from lkpkg.builders.longvalues import add_labels, check_build_args, split_labels
from lkpkg.oci.model import Platform
from lkpkg.proc import child_environment, run_logged, run_quiet
from lkpkg.reference import Reference

CLIENT_CANDIDATES = ("docker", "/usr/bin/docker")

# What a docker client may see of our environment: where the engine is and how to reach it
# (TLS, ssh agent for ssh:// hosts), its config directory (plugins such as buildx live there),
# BuildKit's switches. Not DOCKER_CONTENT_TRUST*: proc refuses the trust tools' variables.
DOCKER_VARIABLES = (
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_TLS",
    "DOCKER_API_VERSION",
    "BUILDKIT_*",
    "BUILDX_*",
    "SSH_AUTH_SOCK",
    "XDG_RUNTIME_DIR",
)


def _client_mode(executable: str, env: Mapping[str, str]) -> str | None:
    """'buildx' or 'legacy' when this client can drive BuildKit, else None."""
    if run_quiet([executable, "buildx", "version"], env=env, timeout=20).returncode == 0:
        return "buildx"
    version = run_quiet(
        [executable, "version", "--format", "{{.Client.Version}}"], env=env, timeout=20
    )
    major = version.stdout.strip().split(".", 1)[0]
    if major.isdigit() and int(major) < 23:
        return "legacy"
    return None


def parse_server_version(output: str) -> str | None:
    """The engine's version from `docker version --format '{{.Server.Version}}'`: its one
    non-empty line (a client that reaches no engine prints nothing there)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if len(lines) != 1 or " " in lines[0]:
        return None
    return lines[0]


class DockerBuilder:
    name = "docker"
    remote: bool

    def __init__(
        self,
        host: str | None = None,
        clients: Sequence[str] | None = None,
        *,
        remote: bool = False,
        settings: EngineSettings | None = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        self.host = host or self.settings.docker_host
        self.remote = remote
        if remote:
            self.name = f"docker@{host}"
        chosen = self.settings.docker_client
        self.clients = tuple(clients or ((chosen,) if chosen else CLIENT_CANDIDATES))
        overrides = {"DOCKER_BUILDKIT": "1", **({"DOCKER_HOST": self.host} if self.host else {})}
        self._environ = child_environment(
            self.settings.environ, DOCKER_VARIABLES, overrides=overrides
        )
        self._chosen: tuple[str, str] | None = None
        self._version_lock = threading.Lock()
        self._version: tuple[str | None] | None = None  # asked once: (answer,) once asked

    def _server_version(self, client: str) -> subprocess.CompletedProcess[str]:
        return run_quiet(
            [client, "version", "--format", "{{.Server.Version}}"], env=self._env(), timeout=20
        )

    def version(self) -> str | None:
        with self._version_lock:
            if self._version is None:
                client = self._client()
                answer = self._server_version(client[0]) if client is not None else None
                ok = answer is not None and answer.returncode == 0
                self._version = (parse_server_version(answer.stdout) if answer and ok else None,)
            return self._version[0]

    def _env(self) -> dict[str, str]:
        return self._environ

    def _client(self) -> tuple[str, str] | None:
        # Asked once per builder (a client's abilities do not change during a run).
        if self._chosen is None:
            for candidate in self.clients:
                path = shutil.which(candidate, path=self._environ["PATH"])
                if path is None:
                    continue
                mode = _client_mode(path, self._environ)
                if mode is not None:
                    self._chosen = (path, mode)
                    break
        return self._chosen

    def problem(self) -> str | None:
        client = self._client()
        if client is None:
            return (
                "no docker client that can drive BuildKit (need buildx, or a client older than "
                "23.0; set LKPKG_DOCKER_CLIENT)"
            )
        answer = self._server_version(client[0])
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
            check_build_args(request.build_args, self._env())
            inline, appended = split_labels(request.labels)
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
            for key, value in inline.items():
                argv += ["--label", f"{key}={value}"]
            argv.append(str(request.context))
            run_logged(
                argv,
                what=f"docker build for {request.platform}",
                env=self._env(),
                echo=request.verbose,
                echo_prefix=f"{request.local_name} | ",
                started=request.started,
            )
            saved = scratch / "image.tar"
            run_logged(
                [executable, "save", "--output", str(saved), request.local_name],
                what=f"exporting {request.local_name} from docker",
                env=self._env(),
            )
            docker_archive_to_layout(saved, out, LAYOUT_REF)
            if appended:
                add_labels(out, LAYOUT_REF, appended)
