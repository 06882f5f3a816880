from __future__ import annotations

import io
import os
import sys

import pytest

from lkpkg import proc
from lkpkg.errors import BuildError
from lkpkg.proc import DEFAULT_PATH, child_environment

PARENT = {
    "PATH": "/opt/bin:/usr/bin",
    "HOME": "/root",
    "LC_ALL": "C",
    "COSIGN_PASSWORD": "s3cret",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "s3cret",
    "NOTARY_TARGETS_PASSPHRASE": "s3cret",
    "CONTAINERS_STORAGE_CONF": "/etc/x.conf",
    "AWS_SECRET_ACCESS_KEY": "other",
}


def test_only_allowed_variables_reach_a_child() -> None:
    env = child_environment(PARENT, ("CONTAINERS_*",), overrides={"DOCKER_BUILDKIT": "1"})
    assert env == {
        "PATH": "/opt/bin:/usr/bin",
        "HOME": "/root",
        "LC_ALL": "C",
        "CONTAINERS_STORAGE_CONF": "/etc/x.conf",
        "DOCKER_BUILDKIT": "1",
    }


def test_passphrases_need_an_explicit_grant_even_when_listed() -> None:
    listed = child_environment(PARENT, ("COSIGN_*", "DOCKER_*", "NOTARY_*"))
    assert not {k for k in listed if "PASS" in k}
    granted = child_environment(PARENT, ("NOTARY_*",), secrets_allowed=("NOTARY_*",))
    assert granted["NOTARY_TARGETS_PASSPHRASE"] == "s3cret"
    assert "COSIGN_PASSWORD" not in granted


def test_a_child_always_has_a_path() -> None:
    assert child_environment({}, ())["PATH"] == DEFAULT_PATH


class _Writes(io.StringIO):
    """A stderr that records each write call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_each_echoed_build_line_is_one_write_with_its_prefix_and_newline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Parallel verbose builds echo from several threads: a line written in two calls (text,
    # then newline, as print does) let another build's line land between them.
    stderr = _Writes()
    monkeypatch.setattr(sys, "stderr", stderr)
    script = "import sys; [print(f'step {i}') for i in range(3)]; print('no newline', end='')"
    proc.run_logged(
        [sys.executable, "-c", script],
        what="echo",
        env={"PATH": os.environ.get("PATH", "/usr/bin")},
        echo=True,
        echo_prefix="org/one:tag | ",
    )
    expected = [f"org/one:tag | step {i}\n" for i in range(3)] + ["org/one:tag | no newline\n"]
    assert stderr.calls == expected


def test_stop_children_ends_running_work_and_work_started_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    monkeypatch.setattr(proc, "_stopping", False)
    running = threading.Event()
    outcome: list[BaseException | None] = []

    def build() -> None:
        try:
            proc.run_logged(
                ["sleep", "317"], what="a build", env=dict(os.environ), started=running.set
            )
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=build)
    thread.start()
    assert running.wait(timeout=30)
    proc.stop_children()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(outcome[0], BuildError)
    assert "a build failed (exit -9)" in str(outcome[0])
    # Work started now is stopped at once; a short clean-up command still runs.
    with pytest.raises(BuildError, match="exit -9"):
        proc.run_logged(["sleep", "317"], what="another build", env=dict(os.environ))
    cleanup = proc.run_quiet(["echo", "swept"], env=dict(os.environ))
    assert (cleanup.returncode, cleanup.stdout) == (0, "swept\n")
    assert proc.live_children() == 0
