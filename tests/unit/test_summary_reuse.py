"""A platform reused from another org's build (pipeline/reuse.py) in the summary: its NOTE
and --json say so; a built or cached platform says nothing of the kind."""

from __future__ import annotations

from lkpkg.pipeline.report import PackageReport, PlatformReport, RunReport
from lkpkg.summary import summary_json, summary_text

DIGEST = "sha256:" + "a" * 64


def report(*platforms: PlatformReport, status: str = "skipped") -> PackageReport:
    return PackageReport("pkg", "b/hello", "b/hello:t", "t", status, platforms, index=DIGEST)


def test_the_note_names_the_reused_arches_and_where_they_were_built() -> None:
    reused = report(
        PlatformReport(
            "linux/amd64", "b/hello:t-amd64", DIGEST, False, reused_from="a/hello:t-amd64"
        ),
        PlatformReport(
            "linux/arm64", "b/hello:t-arm64", DIGEST, False, reused_from="a/hello:t-arm64"
        ),
        PlatformReport("linux/riscv64", "b/hello:t-riscv64", DIGEST, False),
    )
    assert reused.note() == "amd64,arm64 reused from a/hello"
    text = summary_text([reused], push=False)
    assert "amd64,arm64 reused from a/hello" in text.splitlines()[1]


def test_an_error_or_a_plain_hit_is_not_called_a_reuse() -> None:
    hit = report(PlatformReport("linux/amd64", "b/hello:t-amd64", DIGEST, False))
    assert hit.note() == ""
    failed = PackageReport(
        "pkg",
        "b/hello",
        "b/hello:t",
        "t",
        "failed",
        (PlatformReport("linux/amd64", "r", None, False, reused_from="a/hello:t-amd64"),),
        error="registry unreachable",
    )
    assert failed.note() == "registry unreachable"


def test_json_carries_reused_from_for_every_platform() -> None:
    run = RunReport(
        "build",
        (
            report(
                PlatformReport(
                    "linux/amd64", "b/hello:t-amd64", DIGEST, False, reused_from="a/hello:t-amd64"
                ),
                PlatformReport("linux/arm64", "b/hello:t-arm64", DIGEST, True),
                status="built",
            ),
        ),
    )
    platforms = summary_json(run)["packages"][0]["platforms"]
    assert [(p["built"], p["reused_from"]) for p in platforms] == [
        (False, "a/hello:t-amd64"),
        (True, None),
    ]
