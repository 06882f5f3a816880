"""The `lkpkg` command: flags in, library calls, errors out as one line and an exit code.

No business logic lives here (see ko's CLI): each command builds its options, calls the
library, and prints. `LkpkgError` is caught once, in `main`; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from lkpkg import __version__
from lkpkg.auth.keychain import Keychain
from lkpkg.build.base import Builder
from lkpkg.build.select import BUILDER_NAMES, select_builder
from lkpkg.cache.layout import Cache, default_cache_dir
from lkpkg.errors import BuildError, InputError, LkpkgError, exit_code_for
from lkpkg.importer import import_rootfs
from lkpkg.oci.model import Platform
from lkpkg.package.model import Package, load_packages
from lkpkg.pipeline.build import build_package
from lkpkg.pipeline.push import PlatformOf, publish_index, push_package
from lkpkg.pipeline.sign import (
    Signable,
    SigningPlan,
    plan_signing,
    sign_items,
    sign_reference,
    verify_reference,
)
from lkpkg.platforms import host_platform
from lkpkg.reference import Reference
from lkpkg.registry.client import RegistryClient
from lkpkg.trust.cosign import generate_key_pair, load_public_key
from lkpkg.trust.dct import DCTSigner, TrustConfig

F = TypeVar("F", bound=Callable[..., Any])


def _platforms(value: str | None) -> list[Platform] | None:
    if not value:
        return None
    platforms = []
    for item in value.split(","):
        item = item.strip()
        try:
            platforms.append(Platform.parse(item if "/" in item else f"linux/{item}"))
        except LkpkgError as exc:
            raise InputError(f"--platforms: {exc}") from exc
    return platforms


def _cache(path: Path | None) -> Cache:
    return Cache(path or default_cache_dir())


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def _options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


cache_option = click.option(
    "--cache",
    "cache_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="OCI layout cache (default $LINUXKIT_CACHE or ~/.linuxkit/cache).",
)
insecure_option = click.option(
    "--insecure-registry",
    "insecure",
    multiple=True,
    envvar="LKPKG_INSECURE_REGISTRIES",
    help="A registry (host[:port]) that may be spoken to over plain http; loopback always may.",
)
dirs_argument = click.argument(
    "directories", nargs=-1, type=click.Path(path_type=Path, file_okay=False), required=True
)
notrust_option = click.option(
    "--notrust",
    is_flag=True,
    envvar="LKPKG_NOTRUST",
    help="No Docker Content Trust (the seed's NOTRUST=1).",
)
trust_ca_option = click.option(
    "--trust-ca",
    type=click.Path(path_type=Path, dir_okay=False),
    help="CA of the trust server (default $DOCKER_CONFIG/tls/<server>/ca.crt when present).",
)

package_options = _options(
    click.option("--org", help="Override the org (may carry a registry: localhost:5000/wombat)."),
    click.option("--hash", "hash_", help="Override the content hash part of the tag."),
)
build_options = _options(
    click.option(
        "--platforms", help="Comma-separated, e.g. linux/amd64,linux/arm64 (default: the host's)."
    ),
    click.option(
        "--builder",
        type=click.Choice(BUILDER_NAMES),
        envvar="LKPKG_BUILDER",
        default="auto",
        show_default=True,
        help="Build engine: buildah (daemonless) or a Docker engine; auto prefers buildah.",
    ),
    click.option(
        "--force", is_flag=True, help="Build even when the cache already holds the image."
    ),
    click.option("-v", "--verbose", is_flag=True, help="Stream the builder's output."),
)
push_options = _options(
    click.option("--allow-dirty", is_flag=True, help="Push a package with uncommitted changes."),
    click.option(
        "--release",
        "releases",
        multiple=True,
        help="Also push ORG/IMAGE:TAG-ARCH and ORG/IMAGE:TAG (default: git tags on HEAD); "
        "never moves an existing release.",
    ),
    notrust_option,
    click.option(
        "--sign-key",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="LKPKG_SIGN_KEY",
        help="Also sign cosign-style with this key (passphrase in $COSIGN_PASSWORD).",
    ),
    trust_ca_option,
    insecure_option,
)


@dataclass(frozen=True)
class PushOptions:
    org: str | None
    hash_: str | None
    platforms: str | None
    builder: str
    force: bool
    verbose: bool
    allow_dirty: bool
    releases: Sequence[str]
    notrust: bool
    sign_key: Path | None
    trust_ca: Path | None
    insecure: Sequence[str]
    cache_dir: Path | None


def _builder_factory(name: str) -> Callable[[], Builder]:
    chosen: list[Builder] = []

    def factory() -> Builder:
        # Chosen on first need: a run where everything is cached needs no builder at all.
        if not chosen:
            chosen.append(select_builder(name))
        return chosen[0]

    return factory


class _Registries:
    """One registry client per registry host for the whole run (connections and tokens reused)."""

    def __init__(self, insecure: Sequence[str]) -> None:
        self._insecure = [h for item in insecure for h in item.split(",") if h]
        self._clients: dict[str, RegistryClient] = {}
        self._keychain: Keychain | None = None

    def __call__(self, domain: str) -> RegistryClient:
        if domain not in self._clients:
            if self._keychain is None:
                self._keychain = Keychain()
            self._clients[domain] = RegistryClient(
                domain, keychain=self._keychain, insecure=self._insecure
            )
        return self._clients[domain]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def _push(options: PushOptions, directories: Sequence[Path]) -> None:
    packages = load_packages(list(directories), org=options.org, hash_override=options.hash_)
    targets = _platforms(options.platforms)
    cache = _cache(options.cache_dir)
    factory = _builder_factory(options.builder)
    # Every package's signing is checked (passphrases, keys, trust server) before any push.
    plans = [
        plan_signing(
            package.reference(),
            dct=not (options.notrust or package.spec.disable_content_trust),
            sign_key=options.sign_key,
            trust_ca=options.trust_ca,
        )
        for package in packages
    ]
    registries = _Registries(options.insecure)
    try:
        for package, plan in zip(packages, plans, strict=True):
            registry = registries(package.reference().domain)
            result = push_package(
                package,
                cache=cache,
                registry=registry,
                builder_factory=factory,
                platforms=targets,
                force=options.force,
                allow_dirty=options.allow_dirty,
                hash_given=options.hash_ is not None,
                releases=list(options.releases) or None,
                verbose=options.verbose,
                report=_echo_err,
                sign=_signer(plan, registry, package),
            )
            arches = ",".join(a.arch for a in result.arches) or "-"
            signed = ",".join(result.signed) or "-"
            reference = package.reference().familiar()
            click.echo(f"{reference} {result.index.digest} pushed={arches} signed={signed}")
    finally:
        registries.close()


Written = Sequence[tuple[str, str, int]]


def _signer(
    plan: SigningPlan, registry: RegistryClient, package: Package
) -> Callable[[Written], tuple[str, ...]]:
    def sign(written: Written) -> tuple[str, ...]:
        sign_items(plan, registry, package.reference(), [Signable(*item) for item in written])
        return plan.kinds

    return sign


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lkpkg")
def cli() -> None:
    """Build, publish, sign and verify LinuxKit packages.

    \b
    Examples (the seed's workflows):
      lkpkg build --org wombat pkg/hello                     # make ORG=wombat NOTRUST=1 tag
      lkpkg push --org localhost:5000/wombat --notrust pkg/hello    # ... NOTRUST=1 push
      DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=... lkpkg push pkg/hello   # make (maintainer)
      lkpkg show-tag pkg/*
    """


@cli.command("show-tag")
@package_options
@dirs_argument
def show_tag(org: str | None, hash_: str | None, directories: Sequence[Path]) -> None:
    """Print ORG/IMAGE:HASH for each package, in argument order.

    \b
    HASH is the git tree id of the package directory at HEAD; a package with uncommitted
    changes gets the tree id it would have if committed now, followed by -dirty.
    """
    for package in load_packages(list(directories), org=org, hash_override=hash_):
        click.echo(package.reference().familiar())


@cli.command()
@package_options
@build_options
@click.option("--push", "then_push", is_flag=True, help="Push afterwards, as `lkpkg push` does.")
@push_options
@cache_option
@dirs_argument
def build(then_push: bool, directories: Sequence[Path], **kwargs: Any) -> None:
    """Build packages into the local cache as ORG/IMAGE:HASH-ARCH and ORG/IMAGE:HASH.

    \b
    The image also lands in the builder's own store (buildah/podman or docker) as
    ORG/IMAGE:HASH-ARCH, so you can run it there. A platform already in the cache is not
    rebuilt unless --force. With --push, continues as `lkpkg push`.
    """
    options = PushOptions(**kwargs)
    if then_push:
        _push(options, directories)
        return
    packages = load_packages(list(directories), org=options.org, hash_override=options.hash_)
    targets = _platforms(options.platforms)
    cache = _cache(options.cache_dir)
    factory = _builder_factory(options.builder)
    for package in packages:
        result = build_package(
            package,
            cache=cache,
            builder_factory=factory,
            platforms=targets,
            force=options.force,
            verbose=options.verbose,
            report=_echo_err,
        )
        built = ",".join(p.platform.architecture for p in result.platforms if p.built) or "-"
        click.echo(f"{result.reference.familiar()} {result.index.digest} built={built}")


@cli.command()
@package_options
@build_options
@push_options
@cache_option
@dirs_argument
def push(directories: Sequence[Path], **kwargs: Any) -> None:
    """Build what is missing, push ORG/IMAGE:HASH-ARCH, then the index ORG/IMAGE:HASH; sign.

    \b
    The index covers every architecture the registry holds for HASH, including those other
    hosts pushed — even at the same moment: arches need not be built in sequence.
    Signing with Docker Content Trust is on by default (passphrases from
    DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE, and _ROOT_ for a new repository), for every
    arch tag and the index; --sign-key adds cosign-compatible signatures.

    \b
    Examples (the seed's workflows):
      DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=... lkpkg push pkg/hello
      lkpkg push --org localhost:5000/wombat --notrust pkg/hello
      lkpkg push --org localhost:5000/wombat --notrust --hash foo pkg/hello
    """
    _push(PushOptions(**kwargs), directories)


@cli.command()
@insecure_option
@cache_option
@click.argument("reference")
def manifest(insecure: Sequence[str], cache_dir: Path | None, reference: str) -> None:
    """Rebuild the index REFERENCE (ORG/IMAGE:HASH) from the HASH-ARCH tags in the registry.

    \b
    Architectures without a HASH-ARCH tag are left out (manifest-tool's --ignore-missing).
    Example: lkpkg manifest localhost:5000/wombat/hello:4b825dc6
    """
    ref = Reference.parse(reference)
    if ref.tag is None or ref.digest is not None:
        raise InputError(f"manifest: '{reference}' must name a tag (ORG/IMAGE:HASH)")
    registries = _Registries(insecure)
    try:
        client = registries(ref.domain)
        platform_of = PlatformOf(client, ref.path, _cache(cache_dir))
        index = publish_index(client, ref.path, ref.tag, platform_of=platform_of)
    finally:
        registries.close()
    click.echo(f"{ref.familiar()} {index.digest}")


@cli.command()
@notrust_option
@click.option(
    "--sign-key",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="LKPKG_SIGN_KEY",
    help="Also sign cosign-style with this key (passphrase in $COSIGN_PASSWORD).",
)
@trust_ca_option
@insecure_option
@click.argument("reference")
def sign(
    notrust: bool,
    sign_key: Path | None,
    trust_ca: Path | None,
    insecure: Sequence[str],
    reference: str,
) -> None:
    """Sign what the registry holds at REFERENCE (an index: its arch images too).

    \b
    The seed's separate "sign the manifest" step, for something already pushed.
    Example: DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=... lkpkg sign linuxkit/init:4b825dc6
    """
    ref = Reference.parse(reference)
    plan = plan_signing(ref, dct=not notrust, sign_key=sign_key, trust_ca=trust_ca)
    if not plan.kinds:
        raise InputError("sign: nothing to sign with: --notrust and no --sign-key")
    registries = _Registries(insecure)
    try:
        signed = sign_reference(plan, registries(ref.domain), ref)
    finally:
        registries.close()
    click.echo(f"signed {ref.familiar()} ({', '.join(plan.kinds)}): {len(signed)} manifests")


@cli.command()
@notrust_option
@click.option(
    "--key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="cosign public key to verify with.",
)
@trust_ca_option
@insecure_option
@click.argument("reference")
def verify(
    notrust: bool, key: Path | None, trust_ca: Path | None, insecure: Sequence[str], reference: str
) -> None:
    """Check REFERENCE before consuming it: exit 0 with a summary, or 1 naming the first mismatch.

    \b
    Docker Content Trust (unless --notrust): the digest the registry serves for the tag must
    be the signed target. With --key: a valid cosign signature for that key. For an index,
    every per-arch manifest too.
    Example: lkpkg verify --key cosign.pub localhost:5000/wombat/hello:4b825dc6
    """
    ref = Reference.parse(reference)
    dct = None if notrust else DCTSigner(TrustConfig.for_registry(ref.domain, os.environ, trust_ca))
    public = load_public_key(key) if key is not None else None
    registries = _Registries(insecure)
    try:
        summary = verify_reference(registries(ref.domain), ref, dct=dct, public_key=public)
    finally:
        registries.close()
    click.echo(summary)


@cli.command()
@click.option(
    "--output-key-prefix",
    default="cosign",
    show_default=True,
    help="Writes PREFIX.key and PREFIX.pub.",
)
def keygen(output_key_prefix: str) -> None:
    """Make an ECDSA P-256 key pair for cosign-compatible signatures.

    \b
    The private key is encrypted with $COSIGN_PASSWORD (cosign's own variable) and written
    with mode 0600; the public key is what consumers verify with (lkpkg verify, skopeo, cosign).
    """
    prefix = Path(output_key_prefix)
    generate_key_pair(
        prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    )
    click.echo(f"wrote {prefix}.key and {prefix}.pub")


@cli.group()
def cache() -> None:
    """Inspect the local OCI cache."""


@cache.command("ls")
@cache_option
def cache_ls(cache_dir: Path | None) -> None:
    """List references and digests in the cache."""
    for ref, descriptor in _cache(cache_dir).refs():
        click.echo(f"{ref}\t{descriptor.digest}")


@cli.command("import")
@click.argument("tarball", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("reference")
@click.option(
    "--platform", "platform_", help="Platform of the root filesystem (default: the host's)."
)
@cache_option
def import_(tarball: Path, reference: str, platform_: str | None, cache_dir: Path | None) -> None:
    """Import a root filesystem tarball as a single-layer image REFERENCE.

    \b
    Example: lkpkg import bookworm-arm64.tar localhost/debian:bookworm --platform linux/arm64
    """
    platforms = _platforms(platform_)
    target = platforms[0] if platforms else host_platform()
    ref = Reference.parse(reference)
    index = import_rootfs(_cache(cache_dir), tarball, ref, target)
    click.echo(f"{ref.familiar()} {index.digest}")


def main(argv: Sequence[str] | None = None) -> None:
    try:
        cli.main(
            args=list(argv) if argv is not None else None, prog_name="lkpkg", standalone_mode=False
        )
    except click.exceptions.Abort:
        _echo_err("lkpkg: aborted")
        sys.exit(130)
    except click.ClickException as exc:
        _echo_err(f"lkpkg: error: {exc.format_message()}")
        sys.exit(2)
    except LkpkgError as exc:
        if isinstance(exc, BuildError):
            for line in exc.tail:
                _echo_err(f"  | {line}")
        _echo_err(f"lkpkg: error: {exc.message}")
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        _echo_err("lkpkg: interrupted")
        sys.exit(130)
