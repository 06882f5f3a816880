"""Commands on packages: show-tag, build, push, manifest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from lkpkg.cli.common import (
    PushOptions,
    Registries,
    build_options,
    builders_for,
    cache_option,
    dirs_argument,
    echo_err,
    insecure_option,
    open_cache,
    package_options,
    parse_platforms,
    push_options,
)
from lkpkg.errors import InputError
from lkpkg.package.model import Package, load_packages
from lkpkg.pipeline.build import build_package
from lkpkg.pipeline.push import PlatformOf, publish_index, push_package
from lkpkg.pipeline.sign import Signable, SigningPlan, plan_signing, sign_items
from lkpkg.reference import Reference
from lkpkg.registry.client import RegistryClient


def push_packages(options: PushOptions, directories: Sequence[Path]) -> None:
    packages = load_packages(list(directories), org=options.org, hash_override=options.hash_)
    targets = parse_platforms(options.platforms)
    cache = open_cache(options.cache_dir)
    builder_for = builders_for(options)
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
    registries = Registries(options.insecure)
    try:
        for package, plan in zip(packages, plans, strict=True):
            registry = registries(package.reference().domain)
            result = push_package(
                package,
                cache=cache,
                registry=registry,
                builder_for=builder_for,
                platforms=targets,
                force=options.force,
                allow_dirty=options.allow_dirty,
                hash_given=options.hash_ is not None,
                releases=list(options.releases) or None,
                verbose=options.verbose,
                report=echo_err,
                sign=signer(plan, registry, package),
            )
            arches = ",".join(a.arch for a in result.arches) or "-"
            signed = ",".join(result.signed) or "-"
            reference = package.reference().familiar()
            click.echo(f"{reference} {result.index.digest} pushed={arches} signed={signed}")
    finally:
        registries.close()


Written = Sequence[tuple[str, str, int]]


def signer(
    plan: SigningPlan, registry: RegistryClient, package: Package
) -> Callable[[Written], tuple[str, ...]]:
    def sign(written: Written) -> tuple[str, ...]:
        sign_items(plan, registry, package.reference(), [Signable(*item) for item in written])
        return plan.kinds

    return sign


@click.command("show-tag")
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


@click.command()
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
        push_packages(options, directories)
        return
    packages = load_packages(list(directories), org=options.org, hash_override=options.hash_)
    targets = parse_platforms(options.platforms)
    cache = open_cache(options.cache_dir)
    builder_for = builders_for(options)
    for package in packages:
        result = build_package(
            package,
            cache=cache,
            builder_for=builder_for,
            platforms=targets,
            force=options.force,
            verbose=options.verbose,
            report=echo_err,
        )
        built = ",".join(p.platform.architecture for p in result.platforms if p.built) or "-"
        click.echo(f"{result.reference.familiar()} {result.index.digest} built={built}")


@click.command()
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
    push_packages(PushOptions(**kwargs), directories)


@click.command()
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
    registries = Registries(insecure)
    try:
        client = registries(ref.domain)
        platform_of = PlatformOf(client, ref.path, open_cache(cache_dir))
        index = publish_index(client, ref.path, ref.tag, platform_of=platform_of)
    finally:
        registries.close()
    click.echo(f"{ref.familiar()} {index.digest}")
