"""Commands on packages: build, push, manifest (show-tag is in cli/showtag).

`build` and `push` take any number of packages. They run in dependency order (what a package
builds FROM first, see pipeline/graph), independent ones at once (`-j`), with a live display
or greppable lines on stderr (`--progress`), and end with a summary: a table on stderr when
there is more than one package, JSON on stdout with `--json`. A run of one package ends as
it always did: its line on stdout, or its own error (and exit code) as the last line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lkpkg.cli.common import (
    build_options,
    cache_option,
    default_jobs,
    dirs_argument,
    insecure_option,
    open_cache,
    package_options,
    parse_platforms,
    parse_skip_platforms,
    push_options,
    resolve_org_and_hash,
    run_options,
    settings,
    tag_mode_of,
    tag_mode_option,
    timeout_option,
)
from lkpkg.errors import InputError, LkpkgError, PackagesFailed, exit_code_for
from lkpkg.package.model import load_packages
from lkpkg.pipeline.report import RunReport
from lkpkg.reference import Reference

if TYPE_CHECKING:
    from lkpkg.attest.attach import AttestOptions


def _run(command: str, directories: Sequence[Path], flags: dict[str, Any]) -> None:
    """Resolve settings and options from the flags, run, render. Nothing else happens here."""
    # Imported here: `show-tag` shares this module and must not pay for rich or the pipeline.
    from lkpkg.pipeline.run import RunOptions, run_build, run_push
    from lkpkg.progress import choose_mode, make_progress

    json_output = flags.pop("json_output")
    dry_run = flags.pop("dry_run")
    jobs = flags.pop("jobs")
    org, hash_ = flags.pop("org"), flags.pop("hash_")
    # linuxkit's `pkg` flags that name the package, resolved as show-tag resolves them.
    org, hash_ = resolve_org_and_hash(org, hash_, flags.pop("dev"), dict(os.environ))
    releases = flags.pop("releases")
    platforms = parse_platforms(flags.pop("platforms"))
    skip = parse_skip_platforms(flags.pop("skip_platforms"), platforms)
    options = RunOptions(
        platforms=tuple(platforms) if platforms else None,
        skip_platforms=skip,
        pull=flags.pop("pull", False),
        force=flags.pop("force"),
        verbose=flags.pop("verbose"),
        jobs=jobs or default_jobs(),
        allow_dirty=flags.pop("allow_dirty"),
        hash_given=hash_ is not None,
        releases=tuple(releases) or None,
        attest=_attest_options(flags.pop("sbom"), flags.pop("provenance")),
    )
    build_arg_files = flags.pop("build_arg_files")
    tag_template, build_yml = flags.pop("tag_template"), flags.pop("build_yml")
    hash_path = flags.pop("hash_path")
    if flags.pop("hash_commit") != "HEAD":
        raise InputError("--hash-commit: cannot build from a commit other than HEAD (as linuxkit)")
    force_dirty, network = flags.pop("force_dirty"), flags.pop("network")
    disable_cache = flags.pop("disable_cache")
    mode = tag_mode_of(flags.pop("tag_mode"))
    resolved = settings(**flags)
    packages = load_packages(
        list(directories),
        org=org,
        hash_override=hash_,
        build_yml=build_yml,
        hash_path=hash_path,
        tag_template=tag_template,
        build_arg_files=build_arg_files,
        network=network,
        disable_cache=disable_cache,
        force_dirty=force_dirty,
        tag_mode=mode,
    )
    labels = [os.path.normpath(d) for d in directories]
    if dry_run:
        _dry_run(command, packages, options, labels)
        return
    progress = choose_mode(resolved.progress, env=resolved.env)
    run = run_push if command == "push" else run_build
    with make_progress(progress) as display:
        report = run(packages, options, resolved, on_event=display, labels=labels)
    finish(report, json_output=json_output, rich=progress == "rich")


def _dry_run(command: str, packages: Sequence[Any], options: Any, labels: Sequence[str]) -> None:
    """What the run would build (or push): one line per package, nothing done. The cache
    and the registry are not consulted: a line names the platforms the run would consider."""
    from lkpkg.pipeline.run import plan_run

    plan = plan_run(packages, options, labels)
    verb = "push" if command == "push" else "build"
    for package in plan.skipped:
        click.echo(f"would skip {package.reference().familiar()}: no architectures to build")
    for number, package in enumerate(plan.packages):
        arches = ",".join(p.architecture for p in plan.platforms[number])
        click.echo(
            f"would {verb} {package.reference().familiar()} {arches} ({plan.reasons[number]})"
        )


def _attest_options(sbom: bool, provenance: bool) -> AttestOptions | None:
    if sbom and provenance:
        return None  # every attestation, without loading the SBOM scanners up front
    from lkpkg.attest.attach import AttestOptions

    return AttestOptions(sbom=sbom, provenance=provenance)


def finish(report: RunReport, *, json_output: bool, rich: bool) -> None:
    """Print the results and the summary; raise if any package did not make it."""
    from lkpkg.summary import fits, result_lines, summary_json, summary_table, summary_text

    if not report.packages:
        return  # every package was skipped (no arches): nothing was done, nothing to say
    if json_output:
        click.echo(json.dumps(summary_json(report), indent=2))
    else:
        for line in result_lines(report):
            click.echo(line)
    push = report.command == "push"
    if len(report.packages) > 1:
        if rich:
            from rich.console import Console

            console = Console(stderr=True)
            table = summary_table(report.packages, push=push)
            if fits(console, table):
                console.print(table)
            else:  # narrower than the table: aligned text, every column whole
                click.echo(summary_text(report.packages, push=push), err=True)
        else:
            click.echo(summary_text(report.packages, push=push), err=True)
    errors = [p.exception for p in report.packages if p.exception is not None]
    for error in errors:
        if not isinstance(error, LkpkgError):
            raise error  # a bug: keep its traceback
    if len(report.packages) == 1 and errors:
        raise errors[0]  # as before: its own message, tail and exit code
    failed = report.failed
    if failed:
        reasons = "; ".join(f"{p.image}: {p.note()}" for p in failed)
        error = PackagesFailed(
            f"{len(failed)} of {len(report.packages)} packages failed: {reasons}"
        )
        # Nothing made it, for one cause (a registry unreachable: 3): exit as one package would.
        codes = {exit_code_for(e) for e in errors}
        if len(codes) == 1 and len(failed) == len(report.packages):
            error.exit_code = codes.pop()
        raise error


@click.command()
@package_options
@build_options
@click.option("--push", "then_push", is_flag=True, help="Push afterwards, as `lkpkg push` does.")
@click.option(
    "--pull",
    is_flag=True,
    help="An arch the registry of --org holds as TAG-ARCH is pulled into the cache (blobs "
    "checked against their digests) instead of only reported; linuxkit build then finds it.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would be built or pushed (package, platforms, why) and do nothing.",
)
@push_options
@run_options
@cache_option
@dirs_argument
def build(then_push: bool, directories: Sequence[Path], **kwargs: Any) -> None:
    """Build packages into the local cache as ORG/IMAGE:HASH-ARCH and ORG/IMAGE:HASH.

    \b
    Platforms: every arch of build.yml (amd64, arm64, riscv64 when it lists none), foreign
    ones under qemu, unless --platforms (which overrides build.yml) or --skip-platforms.
    When --org names a registry (localhost:5000/wombat), an arch it holds as HASH-ARCH is
    not built: "found in registry", or pulled into the cache with --pull.

    \b
    The image also lands in the builder's own store (buildah/podman or docker) as
    ORG/IMAGE:HASH-ARCH, so you can run it there. A platform already in the cache is not
    rebuilt unless --force. With --push, continues as `lkpkg push`.

    \b
    Packages are built after the packages of the same run they need: a build.yml buildArgs
    value @lkt:pkg:PATH or @lkt:pkgs:GLOB, or a FROM naming another package's ORG/IMAGE.
    Independent packages build at once (-j); a failure stops only the packages that need it.

    \b
    Examples (the seed's `make tag`):
      lkpkg build --org wombat pkg/hello                   # make ORG=wombat NOTRUST=1 tag
      lkpkg build --org wombat --hash foo pkg/hello        # ... HASH=foo tag
      lkpkg build --platforms linux/amd64,linux/arm64 -j 2 pkg/*
    """
    if not then_push:
        given = click.get_current_context().get_parameter_source
        for name, flag in (("sign_key", "--sign-key"), ("releases", "--release")):
            if given(name) == click.core.ParameterSource.COMMANDLINE:
                raise InputError(f"{flag} acts on a push: add --push, or run `lkpkg push`")
    _run("push" if then_push else "build", directories, kwargs)


@click.command()
@package_options
@build_options
@push_options
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print what would be built or pushed (package, platforms, why) and do nothing.",
)
@run_options
@cache_option
@dirs_argument
def push(directories: Sequence[Path], **kwargs: Any) -> None:
    """Build what is missing, push ORG/IMAGE:HASH-ARCH, then the index ORG/IMAGE:HASH; sign.

    \b
    The index covers every architecture the registry holds for HASH, including those other
    hosts pushed — even at the same moment: arches need not be built in sequence.
    Signing with Docker Content Trust is on by default (passphrases from
    DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE, and _ROOT_ for a new repository), for every
    arch tag and the index; --sign-key adds cosign-compatible signatures. Packages go in
    dependency order, independent ones at once (-j), as for build.

    \b
    Examples (the seed's workflows):
      DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=... lkpkg push pkg/hello
      lkpkg push --org localhost:5000/wombat --notrust pkg/hello
      lkpkg push --org localhost:5000/wombat --notrust --hash foo pkg/hello
    """
    _run("push", directories, kwargs)


@click.command()
@insecure_option
@timeout_option
@cache_option
@click.option("--org", help="The org of a PKGDIR (may carry a registry: localhost:5000/wombat).")
@click.option("--hash", "hash_", help="The hash of a PKGDIR's tag.")
@tag_mode_option
@click.argument("target")
def manifest(
    insecure: Sequence[str],
    timeout: float | None,
    cache_dir: Path | None,
    org: str | None,
    hash_: str | None,
    tag_mode: str | None,
    target: str,
) -> None:
    """Rebuild the index ORG/IMAGE:HASH from the HASH-ARCH tags in the registry.

    \b
    TARGET is a reference (ORG/IMAGE:HASH) or a package directory, whose reference is taken
    as show-tag takes it (--org, --hash, $LINUXKIT_PKG_ORG), as `linuxkit pkg manifest DIR`.
    Architectures without a HASH-ARCH tag are left out (manifest-tool's --ignore-missing).
    Examples: lkpkg manifest localhost:5000/wombat/hello:4b825dc6
              lkpkg manifest --org localhost:5000/wombat pkg/hello
    """
    from lkpkg.pipeline.publish import PlatformOf, publish_index
    from lkpkg.pipeline.registries import RegistryPool

    if Path(target).is_dir():
        org, hash_ = resolve_org_and_hash(org, hash_, False, dict(os.environ))
        mode = tag_mode_of(tag_mode)
        package = load_packages([Path(target)], org=org, hash_override=hash_, tag_mode=mode)[0]
        ref = package.reference()
    else:
        if org is not None or hash_ is not None:
            raise InputError("manifest: --org and --hash apply to a package directory only")
        ref = Reference.parse(target)
    if ref.tag is None or ref.digest is not None:
        raise InputError(f"manifest: '{target}' must name a tag (ORG/IMAGE:HASH)")
    with RegistryPool(insecure, os.environ, timeout=timeout) as registries:
        client = registries(ref.domain)
        platform_of = PlatformOf(client, ref.path, open_cache(cache_dir))
        index = publish_index(client, ref.path, ref.tag, platform_of=platform_of)
    click.echo(f"{ref.familiar()} {index.digest}")


@click.command("remote-tag")
@insecure_option
@timeout_option
@cache_option
@click.option(
    "--release",
    "release",
    hidden=True,
    help="Accepted as linuxkit's `pkg remote-tag` accepts it, and ignored as it ignores it.",
)
@click.argument("source")
@click.argument("target")
def remote_tag(
    insecure: Sequence[str],
    timeout: float | None,
    cache_dir: Path | None,
    release: str | None,
    source: str,
    target: str,
) -> None:
    """Tag SOURCE as TARGET in the registry, without pulling (linuxkit's `pkg remote-tag`).

    \b
    Within one repository, the manifest or index SOURCE names is put under TARGET's tag as
    the same bytes, so it keeps its digest. In another repository (of the same registry or
    another one) the image is copied, as linuxkit does: every manifest and blob, digests
    unchanged; within one registry blobs are mounted, not moved (blobs that must move wait
    in the cache's scratch area). An identical TARGET is left as it is.
    Example: lkpkg remote-tag localhost:5000/wombat/hello:4b825dc6 localhost:5000/wombat/hello:v1
    """
    from lkpkg.pipeline.registries import RegistryPool
    from lkpkg.pipeline.remotetag import remote_tag as tag_remotely
    from lkpkg.pipeline.remotetag import same_repository

    src, dst = (Reference.parse(r) for r in (source, target))
    src = src if src.tag or src.digest else src.with_tag("latest")
    if dst.tag is None or dst.digest is not None:
        raise InputError(f"remote-tag: '{target}' must name a tag")
    with RegistryPool(insecure, os.environ, timeout=timeout) as registries:
        if same_repository(src, dst):
            digest = tag_remotely(registries, src, dst, None)
        else:
            store = open_cache(cache_dir)
            try:
                with store.scratch_dir("remote-tag") as scratch:
                    digest = tag_remotely(registries, src, dst, scratch)
            finally:
                store.close()
    click.echo(f"{dst.familiar()} {digest}")
