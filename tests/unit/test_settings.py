"""Settings enter once, at the edge: resolved by the CLI, never read inside the library."""

from __future__ import annotations

import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

import lkpkg
from lkpkg.cli.main import main
from lkpkg.errors import EXIT_BAD_INPUT, InputError
from lkpkg.settings import Settings, resolve_settings

SRC = Path(lkpkg.__file__).parent
# On code tokens joined by spaces: strings and comments (prose) do not count.
ENVIRONMENT_READ = re.compile(r"\bos \. (environ|environb|getenv)\b|\bgetenv \(|^from os import")
# Where reading the process environment is the job: the CLI (flags and the environment are
# resolved there, once, into `Settings`).
ALLOWED = ("cli/",)
# Child-environment construction that still starts from the process environment, each with
# why; the list may only shrink.
KNOWN = {
    # git's environment: everything but GIT_* variables, so a user's git config, HOME and
    # credentials keep working; to be handed in by the caller like proc.child_environment.
    "package/git.py",
}


def _code_lines(path: Path) -> dict[int, str]:
    """Each line's code tokens, without strings and comments."""
    lines: dict[int, list[str]] = {}
    with path.open("rb") as source:
        for token in tokenize.tokenize(source.readline):
            if token.type in (tokenize.STRING, tokenize.COMMENT, tokenize.ENCODING):
                continue
            lines.setdefault(token.start[0], []).append(token.string)
    return {number: " ".join(tokens) for number, tokens in lines.items()}


def _reads() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for path in sorted(SRC.rglob("*.py")):
        name = str(path.relative_to(SRC))
        if name.startswith(ALLOWED):
            continue
        for number, code in _code_lines(path).items():
            if ENVIRONMENT_READ.search(code):
                found.setdefault(name, []).append(number)
    return found


def test_the_check_sees_a_read_and_not_prose(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""os.environ in a docstring"""\nimport os\n# os.getenv here\nx = os.environ\n'
    )
    assert [n for n, code in _code_lines(sample).items() if ENVIRONMENT_READ.search(code)] == [4]


def test_no_library_module_reads_the_environment() -> None:
    reads = _reads()
    assert set(reads) <= KNOWN, {k: v for k, v in reads.items() if k not in KNOWN}


def test_flags_win_over_the_environment_and_the_rest_comes_from_it(tmp_path: Path) -> None:
    env = {
        "LINUXKIT_CACHE": str(tmp_path / "from-env"),
        "DOCKER_HOST": "unix:///run/other.sock",
        "LKPKG_DOCKER_CLIENT": "docker-20",
        "SOURCE_DATE_EPOCH": "1700000000",
        "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "not-for-logs",
    }
    settings = resolve_settings(
        env, cache_dir=tmp_path / "flag", builder="Docker", insecure=("a:5000,b:5000", "c")
    )
    assert settings.cache_dir == tmp_path / "flag"
    assert settings.builder == "docker"
    assert settings.docker_host == "unix:///run/other.sock"
    assert settings.docker_client == "docker-20"
    assert settings.source_date_epoch == 1700000000
    assert settings.insecure_registries == ("a:5000", "b:5000", "c")
    assert resolve_settings(env).cache_dir == tmp_path / "from-env"
    # The environment is kept for secrets, but never shown.
    assert settings.env["DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE"] == "not-for-logs"
    assert "not-for-logs" not in repr(settings)


def test_a_source_date_epoch_that_is_not_a_number_is_ignored() -> None:
    assert resolve_settings({"SOURCE_DATE_EPOCH": "yesterday"}).source_date_epoch is None


def test_a_settings_value_checks_its_choices(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown builder 'podman'"):
        Settings(cache_dir=tmp_path, builder="podman")
    with pytest.raises(InputError, match="unknown progress mode"):
        Settings(cache_dir=tmp_path, progress="fancy")


def test_an_error_hint_is_its_own_line_after_the_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import lkpkg.cli.main as cli_main

    def fails(**_: object) -> None:
        raise InputError("wombat: the thing is wrong\nacross lines", hint="do this\ninstead")

    monkeypatch.setattr(cli_main.cli, "main", fails)
    with pytest.raises(SystemExit) as exited:
        main(["show-tag", "x"])
    assert exited.value.code == EXIT_BAD_INPUT
    assert capsys.readouterr().err.splitlines() == [
        "lkpkg: error: wombat: the thing is wrong across lines",
        "lkpkg: hint: do this instead",
    ]


@pytest.mark.parametrize("command", ["show-tag", "build", "push"])
def test_commands_start_without_the_heavy_libraries(command: str) -> None:
    """Start-up stays lazy: a command's help (and show-tag's whole run) loads neither the
    registry client's httpx, nor rich, nor cryptography; they come with the work needing them."""
    code = (
        "import sys\n"
        "from lkpkg.cli.main import main\n"
        "try:\n"
        f"    main([{command!r}, '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = {'httpx', 'rich', 'cryptography'}\n"
        # None entries are imports refused on purpose (lkpkg/__init__: httpx._main), not loaded.
        "loaded = {m.split('.')[0] for m, v in sys.modules.items() if v is not None}\n"
        "print(sorted(loaded & heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
