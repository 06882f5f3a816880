"""buildah: the default, daemonless builder.

How it runs, and why:
- `--isolation chroot` works without user namespaces or a runtime daemon, and on every host
  we target. chroot isolation cannot set `--network none`, so a build without network runs the
  whole buildah process in a fresh network namespace (`unshare --net`): stricter than a
  per-step setting, and nothing in the build can reach a registry either.
- Bases from lkpkg's cache are offered as a local manifest list under the name the Dockerfile
  uses, holding every platform the cache has, so `--platform X` resolves to X's instance
  offline, and concurrent builds for different platforms see the same list.
- `--timestamp` (the commit time) makes layer and config timestamps fixed: the same commit
  gives the same manifest digest.
- No layer cache across builds (see `build`): correctness over speed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from lkpkg.builders.base import LAYOUT_REF, BaseImage, BuildRequest, EngineSettings
from lkpkg.builders.locks import host_lock, lock_path
from lkpkg.proc import child_environment, run_logged, run_quiet

# What buildah (and the runtimes and helpers it starts) may see of our environment: its own
# configuration, and nothing of the trust tools' (proc refuses their passphrases anyway).
# DOCKER_CONFIG is left out: buildah 1.28 fails any command ("checking authfile") when it names
# a directory without config.json, and a build never logs in to a registry.
BUILDAH_VARIABLES = (
    "CONTAINERS_*",
    "BUILDAH_*",
    "STORAGE_DRIVER",
    "STORAGE_OPTS",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
)


class BuildahBuilder:
    name = "buildah"
    remote = False

    def __init__(self, executable: str = "buildah", settings: EngineSettings | None = None) -> None:
        self.executable = executable
        self.settings = settings or EngineSettings()
        self._environ = child_environment(self.settings.environ, BUILDAH_VARIABLES)

    def problem(self) -> str | None:
        if shutil.which(self.executable, path=self._environ["PATH"]) is None:
            return "buildah is not installed (apt-get install buildah), or use --builder docker"
        return None

    def _buildah(self, *args: str) -> list[str]:
        return [self.executable, *args]

    def _quiet(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_quiet(self._buildah(*args), env=self._env())

    def _logged(self, argv: list[str], *, what: str, echo: bool = False) -> None:
        run_logged(argv, what=what, env=self._env(), echo=echo)

    def _env(self) -> dict[str, str]:
        return self._environ

    def _has_image(self, image_id: str) -> bool:
        result = self._quiet("inspect", "--type", "image", "--format", "{{.FromImageID}}", image_id)
        return result.returncode == 0

    def _list_instances(self, name: str) -> set[str] | None:
        result = self._quiet("manifest", "inspect", name)
        if result.returncode != 0:
            return None
        try:
            doc = json.loads(result.stdout)
        except json.JSONDecodeError:
            return None
        return {str(m.get("digest")) for m in doc.get("manifests", [])}

    def provide_base(self, base: BaseImage) -> None:
        """Make `base.name` resolve, per platform, to the cache's images in buildah's store."""
        # Serialised per name: two builds sharing a base must not rebuild its list at once.
        with host_lock(lock_path("buildah-base", base.name)):
            wanted = {i.manifest_digest for i in base.instances}
            if self._list_instances(base.name) == wanted:
                return
            for instance in base.instances:
                if not self._has_image(instance.config_digest.split(":", 1)[1]):
                    self._pull_layout(base, instance.layout_ref, str(instance.platform))
            # The name may be held by a plain image or a stale list; free it first.
            self._quiet("manifest", "rm", base.name)
            self._quiet("rmi", base.name)
            self._logged(
                self._buildah("manifest", "create", base.name), what=f"creating list {base.name}"
            )
            for instance in base.instances:
                image_id = instance.config_digest.split(":", 1)[1]
                self._logged(
                    self._buildah("manifest", "add", base.name, f"containers-storage:{image_id}"),
                    what=f"adding {instance.platform} to {base.name}",
                )

    def _pull_layout(self, base: BaseImage, ref: str, platform: str) -> None:
        # buildah names an image pulled from an OCI layout after the layout's path, and refuses
        # paths that are not valid image names (a `.tmp` component, say). A symlink with a
        # hex name under a plain directory gives it one.
        links = Path(tempfile.gettempdir()) / "lkpkg-bases"
        links.mkdir(exist_ok=True)
        link = links / hashlib.sha256(str(base.layout).encode()).hexdigest()[:16]
        link.unlink(missing_ok=True)
        link.symlink_to(base.layout)
        try:
            self._logged(
                self._buildah("pull", "--quiet", f"oci:{link}:{ref}"),
                what=f"loading base {base.name} ({platform}) into buildah",
            )
        finally:
            link.unlink(missing_ok=True)

    def build(self, request: BuildRequest, out: Path) -> None:
        for base in request.bases:
            self.provide_base(base)
        argv = [
            self.executable,
            "build",
            "--isolation",
            "chroot",
            "--platform",
            str(request.platform),
            "--file",
            str(request.dockerfile),
            "--tag",
            request.local_name,
        ]
        # Never --layers: buildah 1.28's layer cache keys ignore the platform, so an arm64
        # build whose steps match an earlier amd64 build gets the amd64 image back. lkpkg's
        # own cache already skips whole platforms that were built before.
        argv.append("--no-cache")
        if request.timestamp is not None:
            argv += ["--timestamp", str(request.timestamp)]
        for key, value in request.build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in request.labels.items():
            argv += ["--label", f"{key}={value}"]
        argv.append(str(request.context))
        if not request.network:
            argv = ["unshare", "--net", *argv]
        self._logged(argv, what=f"buildah build for {request.platform}", echo=request.verbose)
        if out.exists():
            shutil.rmtree(out)
        self._logged(
            self._buildah("push", "--quiet", request.local_name, f"oci:{out}:{LAYOUT_REF}"),
            what=f"exporting {request.local_name} from buildah",
        )
