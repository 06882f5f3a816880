"""The summary table on a terminal narrower than it (issue 10, item 9)."""

from __future__ import annotations


def test_a_summary_wider_than_the_terminal_is_not_cut():
    import io

    from rich.console import Console

    from lkpkg.pipeline.report import PackageReport, PlatformReport
    from lkpkg.summary import fits, summary_table, summary_text

    image = "127.0.0.1:55555/lkpkg/some-long-org-name/greeter-with-a-long-name"
    platform = PlatformReport("linux/amd64", "r", "sha256:" + "a" * 64, True, True)
    wide = [PackageReport("pkg/x", image, "r", "0" * 40, "built", (platform,), index="sha256:c")]
    narrow = Console(file=io.StringIO(), width=80)
    assert not fits(narrow, summary_table(wide, push=True))
    assert fits(Console(file=io.StringIO(), width=200), summary_table(wide, push=True))
    assert "PUSHED" in summary_text(wide, push=True) and image in summary_text(wide, push=True)
