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
- The image goes straight into the OCI layout lkpkg imports (`--tag oci:OUT:REF`), gzipped
  as `buildah push` would (same digests): no copy in the store to export in a second pass,
  and nothing of a build (killed or not) left in the store but the bases. Stages of a
  multi-stage build live in the build's working containers, swept as below.
- Hermetic: with `request.store` (lkpkg gives `<cache>.buildah`, beside the cache: device nodes
  and whiteouts in a store inside it would trip tools that walk an OCI layout, such as
  oci-image-tool), buildah uses an image store of that cache's own (a storage.conf and
  registries.conf written there), never the machine's:
  a base only resolves when lkpkg's cache has it. Short names resolve as docker's do
  (`wombat/x` is `docker.io/wombat/x`).
- Nothing outlives a run: buildah's temporary files go to the run's scratch directory (swept
  with it); a working container (and its overlay mount) that buildah leaves behind is
  removed when the last build on the store ends, and one of a killed build by the next
  build on that store that finds no other build running (`active.lock`: shared while
  building, exclusive to sweep) and the dead build's marker (see `_building`).
- One buildah process per build when nothing changed: the version and the base lists
  already provided are remembered (`memo.py`), each keyed so that a change asks again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from lkpkg.builders.base import LAYOUT_REF, BaseImage, BuildRequest, EngineSettings
from lkpkg.builders.dockerfile import platform_args
from lkpkg.builders.locks import host_lock, lock_path
from lkpkg.builders.longvalues import add_labels, check_build_args, split_labels
from lkpkg.builders.memo import ProvidedBases, VersionMemo
from lkpkg.fsutil import acquire_lock, atomic_write, detach_mount, mount_points_under
from lkpkg.platforms import host_platform
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

BUILD_PLATFORM_ARGS = ("BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT")


def parse_version(json_output: str, text_output: str = "") -> str | None:
    """buildah's version from `buildah version --json` (its "version" field), else from
    `buildah --version` ("buildah version 1.28.2 (image-spec ...)"); None when neither says."""
    try:
        doc = json.loads(json_output)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        value = doc.get("version")
        if isinstance(value, str) and value.strip():
            return value.strip()
    words = text_output.split()
    if len(words) >= 3 and words[:2] == ["buildah", "version"]:
        return words[2]
    return None


def listed_containers(store: Path) -> list[str] | None:
    """The ids of the containers the containers-storage of `store` lists (as `_prepare_store`
    lays it out: overlay, graph and run state under it): its container list, and the list of
    volatile ones that newer versions keep in the run state. None when a list cannot be
    read."""
    ids: list[str] = []
    for listing in (
        store / "graph" / "overlay-containers" / "containers.json",
        store / "run" / "overlay-containers" / "volatile-containers.json",
    ):
        try:
            containers = json.loads(listing.read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return None
        if not isinstance(containers, list):
            return None
        ids += [str(c.get("id")) for c in containers if isinstance(c, dict) and c.get("id")]
    return ids


def lists_containers(store: Path) -> bool:
    """Whether `store` lists a container (a list that cannot be read counts as listing one:
    buildah is then asked)."""
    listed = listed_containers(store)
    return listed is None or bool(listed)


class BuildahBuilder:
    name = "buildah"
    remote = False

    def __init__(self, executable: str = "buildah", settings: EngineSettings | None = None) -> None:
        self.executable = executable
        self.settings = settings or EngineSettings()
        self._environ = child_environment(self.settings.environ, BUILDAH_VARIABLES)
        self._version_lock = threading.Lock()
        self._version: tuple[str | None] | None = None  # asked once: (answer,) once asked

    def version(self) -> str | None:
        with self._version_lock:
            if self._version is None:
                memo = VersionMemo.of(self.executable, self._environ, self.settings.memo_dir)
                known = memo.read() if memo is not None else None
                if known is None:
                    known = self._ask_version()
                    if memo is not None and known is not None:
                        memo.write(known)
                self._version = (known,)
            return self._version[0]

    def _ask_version(self) -> str | None:
        env = self._env()
        answer = run_quiet(self._buildah("version", "--json"), env=env, timeout=20)
        as_json = answer.stdout if answer.returncode == 0 else ""
        text = ""
        if parse_version(as_json) is None:  # an old buildah: no --json
            text = run_quiet(self._buildah("--version"), env=env, timeout=20).stdout
        return parse_version(as_json, text)

    def problem(self) -> str | None:
        if shutil.which(self.executable, path=self._environ["PATH"]) is None:
            return "buildah is not installed (apt-get install buildah), or use --builder docker"
        return None

    def _buildah(self, *args: str) -> list[str]:
        return [self.executable, *args]

    def _quiet(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return run_quiet(self._buildah(*args), env=env)

    def _env(self, store: Path | None = None, tmp: Path | None = None) -> dict[str, str]:
        env = dict(self._environ)
        if store is not None:
            env["CONTAINERS_STORAGE_CONF"] = str(store / "storage.conf")
            env["CONTAINERS_REGISTRIES_CONF"] = str(store / "registries.conf")
        if tmp is not None:
            env["TMPDIR"] = str(tmp)
        return env

    def _prepare_store(self, store: Path) -> None:
        """This cache's own image store: its graph, run state and name resolution."""
        # skip_mount_home: no bind mount is left on the store, so it can simply be deleted.
        files = {
            "storage.conf": (
                f'[storage]\ndriver = "overlay"\ngraphroot = "{store / "graph"}"\n'
                f'runroot = "{store / "run"}"\n\n[storage.options.overlay]\n'
                'skip_mount_home = "true"\n'
            ).encode(),
            "registries.conf": (
                b'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n'
            ),
        }
        for name, content in files.items():
            path = store / name
            with contextlib.suppress(OSError):
                if path.read_bytes() == content:
                    continue
            # Rewritten when the store was moved or copied: the paths in it must be its own.
            atomic_write(path, content)

    @contextlib.contextmanager
    def _building(self, env: dict[str, str], store: Path | None) -> Iterator[None]:
        """Hold the store's build lock (shared) for a build; sweep working containers that
        outlived their build, before it and after it, when no other build runs on the store.

        Each build leaves a marker in `<store>/builds` while it runs and removes it when
        buildah succeeded; a marker found by a build alone on the store is a dead or failed
        build's (buildah keeps a failed build's containers). A build that succeeded can leave
        containers too: buildah 1.28 keeps (mounted) the working container of a stage without
        instructions that a later `COPY --from` reads (`FROM ${HELLO} AS hello`). So a build
        alone on the store when it ends sweeps if its store lists a container; one that ends
        while others build leaves that to the last of them. Nothing left: no sweeping process.
        """
        if store is None:
            yield
            return
        self._sweep_if_alone(env, store, ending=False)
        lock = store / "active.lock"
        builds = store / "builds"
        shared = acquire_lock(lock, shared=True)
        assert shared is not None  # a blocking acquire returns a descriptor or raises
        try:
            builds.mkdir(exist_ok=True)
            fd, name = tempfile.mkstemp(dir=builds, prefix=f"{os.getpid()}-")
            os.close(fd)
            marker = Path(name)
            yield
            marker.unlink(missing_ok=True)  # not on failure: swept below or by the next build
        finally:
            os.close(shared)
            self._sweep_if_alone(env, store, ending=True)

    def _sweep_if_alone(self, env: dict[str, str], store: Path, *, ending: bool) -> None:
        """`buildah rm --all` (which unmounts what it removes) when no build runs on `store` and
        something may be left: a marker of a dead or failed build, a store made before markers
        existed, or (`ending`) a container the store lists."""
        alone = acquire_lock(store / "active.lock", blocking=False)
        if alone is None:
            return  # another build runs: every container may be its own; the last one sweeps
        try:
            builds = store / "builds"
            left = list(builds.iterdir()) if builds.is_dir() else None
            if not (left is None or left or (ending and lists_containers(store))):
                return
            # No build runs on the store now, so every mount under it is a dead build's. A
            # killed buildah can leave a layer it was making (containers-storage calls it
            # "incomplete") mounted; buildah then fails to delete it ("unlinkat …/merged:
            # device or resource busy"), after a 10 s wait, on every later command.
            for point in mount_points_under(store):
                detach_mount(point)
            if self._quiet(env, "rm", "--all").returncode == 0 and self._drop_storage_only(
                env, store
            ):  # a marker stays until it works
                builds.mkdir(exist_ok=True)
                for marker in left or ():
                    marker.unlink(missing_ok=True)
        finally:
            os.close(alone)

    def _drop_storage_only(self, env: dict[str, str], store: Path) -> bool:
        """Delete the containers `buildah rm --all` leaves: those a killed buildah recorded in
        the store before it wrote its own metadata for them (`buildah containers --all`
        lists them, nameless as to their image; buildah cannot remove them). Through
        containers-storage's own tool, which reads the same `storage.conf`. False when some
        are left (then the markers stay, for the next sweep)."""
        left = listed_containers(store)
        if not left:
            return left is not None
        for container in left:
            run_quiet(["containers-storage", "delete-container", container], env=env)
        return listed_containers(store) == []

    def _has_image(self, env: dict[str, str], image_id: str) -> bool:
        result = self._quiet(
            env, "inspect", "--type", "image", "--format", "{{.FromImageID}}", image_id
        )
        return result.returncode == 0

    def _list_instances(self, env: dict[str, str], name: str) -> set[str] | None:
        result = self._quiet(env, "manifest", "inspect", name)
        if result.returncode != 0:
            return None
        try:
            doc = json.loads(result.stdout)
        except json.JSONDecodeError:
            return None
        return {str(m.get("digest")) for m in doc.get("manifests", [])}

    def provide_base(self, base: BaseImage, env: dict[str, str], store: Path | None) -> None:
        """Make `base.name` resolve, per platform, to the cache's images in buildah's store."""
        # Serialised per name and store: two builds sharing a base must not rebuild its list
        # at once.
        with host_lock(lock_path("buildah-base", f"{store}-{base.name}")):
            wanted = {i.manifest_digest for i in base.instances}
            provided = ProvidedBases(store) if store is not None else None
            if provided is not None and provided.unchanged(base.name, wanted):
                return  # this list, and no image changed in the store since: nothing to ask
            if self._list_instances(env, base.name) == wanted:
                if provided is not None:
                    provided.record(base.name, wanted)
                return
            for instance in base.instances:
                if not self._has_image(env, instance.config_digest.split(":", 1)[1]):
                    self._pull_layout(base, instance.layout_ref, str(instance.platform), env)
            # The name may be held by a plain image or a stale list; free it first.
            self._quiet(env, "manifest", "rm", base.name)
            self._quiet(env, "rmi", base.name)
            run_logged(
                self._buildah("manifest", "create", base.name),
                what=f"creating list {base.name}",
                env=env,
            )
            for instance in base.instances:
                image_id = instance.config_digest.split(":", 1)[1]
                run_logged(
                    self._buildah("manifest", "add", base.name, f"containers-storage:{image_id}"),
                    what=f"adding {instance.platform} to {base.name}",
                    env=env,
                )
            if provided is not None:
                provided.record(base.name, wanted)

    def _pull_layout(self, base: BaseImage, ref: str, platform: str, env: dict[str, str]) -> None:
        # buildah names an image pulled from an OCI layout after the layout's path, and refuses
        # paths that are not valid image names (a `.tmp` component, say). A symlink with a
        # hex name under a plain directory gives it one.
        links = Path(tempfile.gettempdir()) / "lkpkg-bases"
        links.mkdir(exist_ok=True)
        link = links / hashlib.sha256(str(base.layout).encode()).hexdigest()[:16]
        link.unlink(missing_ok=True)
        link.symlink_to(base.layout)
        try:
            run_logged(
                self._buildah("pull", "--quiet", f"oci:{link}:{ref}"),
                what=f"loading base {base.name} ({platform}) into buildah",
                env=env,
            )
        finally:
            link.unlink(missing_ok=True)

    def load_bases(self, bases: Sequence[BaseImage], store: Path) -> None:
        """Load `bases` into `store` ahead of any build (e.g. to prepare a store to copy)."""
        self._prepare_store(store)
        env = self._env(store)
        for base in bases:
            self.provide_base(base, env, store)

    def build(self, request: BuildRequest, out: Path) -> None:
        scratch = out.parent
        tmp = scratch / "buildah-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        store = request.store
        if store is not None:
            self._prepare_store(store)
        env = self._env(store, tmp)
        check_build_args(request.build_args, env)
        inline, appended = split_labels(request.labels)
        with self._building(env, store):
            for base in request.bases:
                self.provide_base(base, env, store)
            if out.exists():
                shutil.rmtree(out)
            argv = [
                self.executable,
                "build",
                "--isolation",
                "chroot",
                "--platform",
                str(request.platform),
                "--file",
                str(request.dockerfile),
                # Straight into the OCI layout at `out`: no copy in the store to export again
                # with `buildah push` (one pass over the layers, not three). Gzip as push does:
                # buildah's default for a layout is uncompressed layers.
                "--tag",
                f"oci:{out}:{LAYOUT_REF}",
                "--disable-compression=false",
                # Never pull: a base comes from lkpkg's cache (provided above) or not at all.
                "--pull=never",
            ]
            # Never --layers: buildah 1.28's layer cache keys ignore the platform, so an arm64
            # build whose steps match an earlier amd64 build gets the amd64 image back. lkpkg's
            # own cache already skips whole platforms that were built before.
            argv.append("--no-cache")
            if request.timestamp is not None:
                argv += ["--timestamp", str(request.timestamp)]
            for key, value in request.build_args.items():
                argv += ["--build-arg", f"{key}={value}"]
            # buildah 1.28 gives BUILDPLATFORM (BUILDOS, BUILDARCH, BUILDVARIANT) the target's
            # value under --platform, so a cross build's `FROM --platform=$BUILDPLATFORM base`
            # asked the base for the target ("image not known"). BuildKit's meaning: the host.
            host = platform_args(request.platform, host_platform())
            for key in BUILD_PLATFORM_ARGS:
                if key not in request.build_args:
                    argv += ["--build-arg", f"{key}={host[key]}"]
            for key, value in inline.items():
                argv += ["--label", f"{key}={value}"]
            argv.append(str(request.context))
            if not request.network:
                argv = ["unshare", "--net", *argv]
            run_logged(
                argv,
                what=f"buildah build for {request.platform}",
                env=env,
                echo=request.verbose,
                echo_prefix=f"{request.local_name} | ",
                started=request.started,
            )
        if appended:
            add_labels(out, LAYOUT_REF, appended)
