"""The pure parts of lkpkg.trust (configuration, passphrases, notary's output, key files), and
DCTSigner's error handling with a stand-in notary."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from lkpkg.errors import (
    EXIT_BAD_INPUT,
    EXIT_ENVIRONMENT,
    EnvironmentProblem,
    ReferenceError_,
    TrustConfigError,
    TrustError,
    TrustPassphraseMissing,
    TrustServerUnreachable,
    exit_code_for,
)
from lkpkg.trust.config import DOCKER_HUB_NOTARY, SERVER_VARIABLE, DCTSettings, TrustConfig
from lkpkg.trust.dct import DCTSigner, Target
from lkpkg.trust.notary import notary_environment
from lkpkg.trust.notary_output import (
    Delegation,
    parse_delegation_list,
    parse_key_ids,
    parse_target_list,
)
from lkpkg.trust.passphrases import (
    REPOSITORY_PASSPHRASE,
    ROOT_PASSPHRASE,
    DCTPassphrases,
    check_passphrases,
    scrub,
)

S = DCTSettings.from_environment
P = DCTPassphrases.from_environment

HEX_A = "a" * 64
HEX_B = "7860f121e7e2a32e299a191a45e6942e54cd1587bf49c045be5405083b4dfac0"
HEX_C = "c5130376ee36f2f5bf746d181ae9f584791e037efbe21aacb96460c663e8951e"

# Captured from Debian's notary 0.7 CLI.
DELEGATION_LIST = f"""
ROLE                PATHS             KEY IDS                                                             THRESHOLD
----                -----             -------                                                             ---------
targets/alice       "" <all paths>    {HEX_B}    1
targets/carol       v1                {HEX_C}    1
                    v2 x                                                                                  
targets/releases    "" <all paths>    {HEX_B}    1
                                      {HEX_C}    

"""  # noqa: E501, W291
TARGET_LIST = f"""NAME    DIGEST                                                              SIZE (BYTES)    ROLE
----    ------                                                              ------------    ----
one     {HEX_A}    523             targets
two     {HEX_B}    1024            targets/releases

"""  # noqa: E501
KEY_LIST = f"""
ROLE     GUN                          KEY ID                                                              LOCATION
----     ---                          ------                                                              --------
root                                  {HEX_B}    /home/u/.docker/trust/private
targets  ...0.1:45000/wombat/hello    {HEX_C}    /home/u/.docker/trust/private
"""  # noqa: E501


# -- TrustConfig ---------------------------------------------------------------------------


def test_docker_hub_uses_docker_s_notary(tmp_path):
    env = {"DOCKER_CONFIG": str(tmp_path)}
    for domain in ("docker.io", "index.docker.io"):
        assert TrustConfig.for_registry(domain, S(env)).server == DOCKER_HUB_NOTARY


def test_other_registries_use_their_own_address_as_docker_does(tmp_path):
    config = TrustConfig.for_registry("127.0.0.1:5000", S({"DOCKER_CONFIG": str(tmp_path)}))
    assert config.server == "https://127.0.0.1:5000"
    assert config.trust_dir == tmp_path / "trust"
    assert config.ca_cert is None


def test_the_server_variable_wins(tmp_path):
    env = {"DOCKER_CONFIG": str(tmp_path), SERVER_VARIABLE: "https://notary.example:4443/"}
    assert TrustConfig.for_registry("docker.io", S(env)).server == "https://notary.example:4443"


@pytest.mark.parametrize("value", ["http://notary.example", "notary.example:4443", "https://"])
def test_the_server_variable_must_be_https(tmp_path, value):
    env = {"DOCKER_CONFIG": str(tmp_path), SERVER_VARIABLE: value}
    with pytest.raises(TrustConfigError, match=SERVER_VARIABLE) as caught:
        TrustConfig.for_registry("docker.io", S(env))
    assert exit_code_for(caught.value) == EXIT_BAD_INPUT


def test_the_ca_comes_from_docker_s_tls_directory(tmp_path):
    ca = tmp_path / "tls" / "notary.example:4443" / "ca.crt"
    ca.parent.mkdir(parents=True)
    ca.write_text("PEM")
    env = {"DOCKER_CONFIG": str(tmp_path), SERVER_VARIABLE: "https://notary.example:4443"}
    assert TrustConfig.for_registry("r.example", S(env)).ca_cert == ca
    given = tmp_path / "other.crt"
    assert TrustConfig.for_registry("r.example", S(env), ca_cert=given).ca_cert == given


def test_without_docker_config_the_trust_dir_is_under_home(tmp_path):
    config = TrustConfig.for_registry("r.example", S({"HOME": str(tmp_path)}))
    assert config.trust_dir == tmp_path / ".docker" / "trust"


def test_a_missing_ca_file_is_bad_input(tmp_path):
    config = TrustConfig("https://n.example", tmp_path, tmp_path / "missing.crt")
    with pytest.raises(TrustConfigError, match=r"missing\.crt"):
        DCTSigner(config, S({}))


# -- passphrases ---------------------------------------------------------------------------


def test_the_repository_passphrase_is_always_needed():
    with pytest.raises(TrustPassphraseMissing) as caught:
        check_passphrases(P({ROOT_PASSPHRASE: "r"}), may_need_root=False)
    message = caught.value.message
    assert REPOSITORY_PASSPHRASE in message and ROOT_PASSPHRASE not in message
    hint = caught.value.hint or ""
    assert "NOTRUST=1" in hint and "--notrust" in hint
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert "\n" not in message


def test_the_root_passphrase_only_when_a_repository_may_be_initialised():
    check_passphrases(P({REPOSITORY_PASSPHRASE: "p"}), may_need_root=False)
    with pytest.raises(TrustPassphraseMissing, match=ROOT_PASSPHRASE):
        check_passphrases(P({REPOSITORY_PASSPHRASE: "p"}), may_need_root=True)
    check_passphrases(P({REPOSITORY_PASSPHRASE: "p", ROOT_PASSPHRASE: "r"}), may_need_root=True)


def test_empty_counts_as_unset_and_both_are_named():
    with pytest.raises(TrustPassphraseMissing) as caught:
        check_passphrases(P({REPOSITORY_PASSPHRASE: "", ROOT_PASSPHRASE: ""}), may_need_root=True)
    assert f"{ROOT_PASSPHRASE} and {REPOSITORY_PASSPHRASE} are not set" in caught.value.message


def test_scrub_hides_every_secret_longest_first():
    assert scrub("a hunter2 b hunter c", ["hunter", "hunter2", ""]) == (
        "a <redacted> b <redacted> c"
    )
    assert scrub("nothing here", []) == "nothing here"


def test_secret_values_include_notary_auth_decoded():
    auth = base64.b64encode(b"wombat:s3cret-pw").decode()
    values = P({ROOT_PASSPHRASE: "r1", REPOSITORY_PASSPHRASE: "", "NOTARY_AUTH": auth}).secrets()
    assert set(values) == {"r1", auth, "wombat:s3cret-pw", "s3cret-pw"}


def test_notary_gets_docker_s_passphrases_under_its_own_names():
    base = {
        "PATH": "/usr/bin",
        "NOTARY_ROOT_PASSPHRASE": "stray",
        "NOTARY_DELEGATION_PASSPHRASE": "stray",
        REPOSITORY_PASSPHRASE: "inherited",
    }
    env = {ROOT_PASSPHRASE: "root-pw", REPOSITORY_PASSPHRASE: "repo-pw"}
    child = notary_environment(P(env), base)
    assert child == {
        "PATH": "/usr/bin",
        "NOTARY_ROOT_PASSPHRASE": "root-pw",
        "NOTARY_TARGETS_PASSPHRASE": "repo-pw",
        "NOTARY_SNAPSHOT_PASSPHRASE": "repo-pw",
        "NOTARY_DELEGATION_PASSPHRASE": "repo-pw",
    }
    # No root passphrase given: a stray one must not stand in for it.
    assert "NOTARY_ROOT_PASSPHRASE" not in notary_environment(P({REPOSITORY_PASSPHRASE: "p"}), base)


# -- values and notary's tables ------------------------------------------------------------


def test_target_validation():
    assert Target("v1", f"sha256:{HEX_A}", 1).hex == HEX_A
    with pytest.raises(ReferenceError_):
        Target("-rm", f"sha256:{HEX_A}", 1)
    with pytest.raises(ReferenceError_, match="sha256"):
        Target("v1", "sha512:" + "a" * 128, 1)
    with pytest.raises(ReferenceError_):
        Target("v1", "sha256:ABC", 1)
    with pytest.raises(ValueError, match="negative"):
        Target("v1", f"sha256:{HEX_A}", -1)


def test_parse_delegation_list_follows_continuation_rows():
    assert parse_delegation_list(DELEGATION_LIST) == [
        Delegation("targets/alice", ("",), frozenset({HEX_B})),
        Delegation("targets/carol", ("v1", "v2 x"), frozenset({HEX_C})),
        Delegation("targets/releases", ("",), frozenset({HEX_B, HEX_C})),
    ]
    assert parse_delegation_list("\nNo delegations present in this repository.\n\n") == []


def test_delegation_paths_are_prefixes():
    carol = Delegation("targets/carol", ("v1", "v2 x"), frozenset())
    assert carol.covers("v1") and carol.covers("v1.2") and not carol.covers("v2")
    assert Delegation("targets/releases", ("",), frozenset()).covers("anything")
    assert carol.is_direct_child
    assert not Delegation("targets/carol/sub", ("",), frozenset()).is_direct_child


def test_parse_target_list_and_key_ids():
    rows = parse_target_list(TARGET_LIST)
    assert [(r.name, r.sha256_hex, r.size, r.role) for r in rows] == [
        ("one", HEX_A, 523, "targets"),
        ("two", HEX_B, 1024, "targets/releases"),
    ]
    assert parse_target_list("\nNo targets present in this repository.\n") == []
    assert parse_key_ids(KEY_LIST) == {HEX_B, HEX_C}


# -- DCTSigner with a stand-in notary ------------------------------------------------------

FAKE_NOTARY = """#!/bin/sh
printf '%s\\n' "$@" >> "@ARGV@"
env > "@ENV@"
case "$(cat "@MODE@" 2>/dev/null)" in
  offline)
    echo
    echo "* fatal: client is offline"
    echo 'time="t" level=error msg="could not reach https://n.example:4443: Get \\"https://n.example:4443/v2/\\": dial tcp 10.0.0.1:4443: connect: connection refused"' >&2
    exit 1;;
  leak)
    echo "* fatal: key for $NOTARY_TARGETS_PASSPHRASE and $NOTARY_ROOT_PASSPHRASE is odd"
    exit 1;;
  slow)
    exec sleep 10;;
esac
exit 0
"""  # noqa: E501


@pytest.fixture
def fake_notary(tmp_path):
    """A stand-in notary that records its argv (`argv`) and environment (`environ`); the mode
    it plays is written to `mode` (its environment is lkpkg's choice, not the test's)."""
    script = tmp_path / "notary"
    script.write_text(
        FAKE_NOTARY.replace("@ARGV@", str(tmp_path / "argv"))
        .replace("@ENV@", str(tmp_path / "environ"))
        .replace("@MODE@", str(tmp_path / "mode"))
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, tmp_path / "argv"


def set_mode(tmp_path: Path, mode: str) -> None:
    (tmp_path / "mode").write_text(mode)


def signer(tmp_path: Path, notary: Path, env: dict[str, str], **kwargs: float) -> DCTSigner:
    config = TrustConfig("https://n.example:4443", tmp_path / "trust", None)
    return DCTSigner(config, S({"PATH": "/usr/bin:/bin", **env}), notary=str(notary), **kwargs)


TARGET = Target("v1", f"sha256:{HEX_A}", 1)
GUN = "docker.io/wombat/hello"
WORDS = {ROOT_PASSPHRASE: "root-Pass-1234", REPOSITORY_PASSPHRASE: "repo-Pass-5678"}


def test_a_missing_passphrase_stops_before_notary_runs(tmp_path, fake_notary):
    script, argv = fake_notary
    with pytest.raises(TrustPassphraseMissing, match=REPOSITORY_PASSPHRASE):
        signer(tmp_path, script, {ROOT_PASSPHRASE: "r"}).sign(GUN, [TARGET])
    assert not argv.exists()


def test_an_offline_notary_is_an_unreachable_server(tmp_path, fake_notary):
    script, argv = fake_notary
    set_mode(tmp_path, "offline")
    with pytest.raises(TrustServerUnreachable) as caught:
        signer(tmp_path, script, WORDS).list_targets(GUN)
    assert caught.value.message == (
        "trust server https://n.example:4443 unreachable:"
        " dial tcp 10.0.0.1:4443: connect: connection refused"
    )
    assert caught.value.exit_code == EXIT_ENVIRONMENT
    args = argv.read_text().splitlines()
    assert args[args.index("-s") + 1] == "https://n.example:4443"
    assert args[args.index("-d") + 1] == str(tmp_path / "trust")
    assert args[args.index("list") + 1] == GUN
    assert not any(word in argv.read_text() for word in WORDS.values())


def test_notary_s_words_are_scrubbed_of_passphrases(tmp_path, fake_notary):
    script, _ = fake_notary
    set_mode(tmp_path, "leak")
    with pytest.raises(TrustError) as caught:
        signer(tmp_path, script, WORDS).list_targets(GUN)
    assert "key for <redacted> and <redacted> is odd" in caught.value.message
    assert not any(word in str(caught.value) for word in WORDS.values())


def test_a_hanging_notary_times_out(tmp_path, fake_notary):
    script, _ = fake_notary
    set_mode(tmp_path, "slow")
    with pytest.raises(TrustServerUnreachable, match=r"did not finish in 0.5s"):
        signer(tmp_path, script, WORDS, timeout=0.5).list_targets(GUN)


def test_notary_gets_only_what_it_needs_to_run_and_its_own_passphrases(tmp_path, fake_notary):
    script, _ = fake_notary
    caller = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/u",
        "COSIGN_PASSWORD": "cosign-Secret-1",
        "REGISTRY_PASSWORD": "reg-Secret-2",
        "AWS_SECRET_ACCESS_KEY": "aws-Secret-3",
        "NOTARY_ROOT_PASSPHRASE": "stray-Secret-4",
        **WORDS,
    }
    config = TrustConfig("https://n.example:4443", tmp_path / "trust", None)
    DCTSigner(config, S(caller), notary=str(script)).list_targets(GUN)
    seen = dict(
        line.split("=", 1)
        for line in (tmp_path / "environ").read_text().splitlines()
        if "=" in line
    )
    # sh adds PWD (and may add SHLVL, _) itself; everything else came from lkpkg.
    seen = {k: v for k, v in seen.items() if k not in ("PWD", "SHLVL", "_")}
    assert seen == {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/u",
        "NOTARY_ROOT_PASSPHRASE": WORDS[ROOT_PASSPHRASE],
        "NOTARY_TARGETS_PASSPHRASE": WORDS[REPOSITORY_PASSPHRASE],
        "NOTARY_SNAPSHOT_PASSPHRASE": WORDS[REPOSITORY_PASSPHRASE],
        "NOTARY_DELEGATION_PASSPHRASE": WORDS[REPOSITORY_PASSPHRASE],
    }


def test_settings_and_passphrases_never_show_a_secret():
    settings = S({"PATH": "/bin", "COSIGN_PASSWORD": "c-Secret", **WORDS})
    assert "COSIGN_PASSWORD" not in settings.tool_env
    shown = repr(settings)
    assert not any(word in shown for word in (*WORDS.values(), "c-Secret"))
    assert "root=set" in shown and "notary_auth=unset" in shown


def test_a_missing_notary_cli_is_an_environment_problem(tmp_path):
    with pytest.raises(EnvironmentProblem, match="notary CLI") as caught:
        signer(tmp_path, tmp_path / "no-such-notary", WORDS).list_targets(GUN)
    assert caught.value.exit_code == EXIT_ENVIRONMENT


@pytest.mark.parametrize("gun", ["wombat/hello", "docker.io/hello", "docker.io/wombat/hello:v1"])
def test_a_gun_must_be_fully_qualified(tmp_path, fake_notary, gun):
    script, argv = fake_notary
    with pytest.raises(ReferenceError_):
        signer(tmp_path, script, WORDS).sign(gun, [TARGET])
    assert not argv.exists()


def test_one_tag_cannot_be_signed_as_two_digests(tmp_path, fake_notary):
    script, argv = fake_notary
    other = Target("v1", f"sha256:{HEX_B}", 1)
    with pytest.raises(ReferenceError_, match="signed twice"):
        signer(tmp_path, script, WORDS).sign(GUN, [TARGET, other])
    assert not argv.exists()


def test_repr_shows_no_environment(tmp_path):
    shown = repr(signer(tmp_path, Path("notary"), WORDS))
    assert not any(word in shown for word in WORDS.values())


def test_no_trust_or_doctor_module_reads_the_environment():
    """Settings enter at the CLI: trust/, the doctor and its checks, and pipeline/sign.py
    take them as values (issue 8)."""
    src = Path(__file__).resolve().parents[2] / "src" / "lkpkg"
    modules = [
        *sorted((src / "trust").glob("*.py")),
        src / "doctor.py",
        src / "checks.py",
        src / "pipeline" / "sign.py",
        *sorted(src.glob("*/checks.py")),
    ]
    readers = [
        path.relative_to(src)
        for path in modules
        if "os.environ" in path.read_text() or "getenv" in path.read_text()
    ]
    assert len(modules) > 15 and readers == []


def test_trust_does_not_import_the_pipeline():
    src = Path(__file__).resolve().parents[2] / "src" / "lkpkg" / "trust"
    importers = [p.name for p in src.glob("*.py") if "lkpkg.pipeline" in p.read_text()]
    assert importers == []


def test_the_preflight_accepts_any_answer_below_500_from_the_health_path(tmp_path):
    """A hosted notary's front end may refuse the health path to anonymous clients: that
    still proves it is reachable with the CA. `lkpkg doctor` (strict) reports it."""
    import http.server
    import threading

    from lkpkg.trust.server import TrustServer

    class Handler(http.server.BaseHTTPRequestHandler):
        status = 401

        def do_GET(self) -> None:
            self.send_response(Handler.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # Plain HTTP through the same client code: the URL's scheme decides.
        config = TrustConfig(f"http://127.0.0.1:{server.server_port}", tmp_path, None)
        with TrustServer(config, config_dir=tmp_path) as trust:
            trust.health(strict=False)
            with pytest.raises(TrustError, match="answered 401"):
                trust.health()
            Handler.status = 503
            with pytest.raises(TrustError, match="answered 503"):
                trust.health(strict=False)
    finally:
        server.shutdown()
        server.server_close()
