"""Reading what Debian's `notary` CLI (0.7) prints: its tables and its one-line reasons.

notary has no machine-readable output; its tables come from Go's tabwriter. Everything that
depends on their shape is here, tested against captured output (tests/unit/test_trust_dct.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lkpkg.errors import TrustError

TARGETS_ROLE = "targets"
RELEASES_ROLE = "targets/releases"

HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
_FATAL = "* fatal: "


@dataclass(frozen=True)
class Delegation:
    """A delegation role as `notary delegation list` shows it (key IDs are canonical, so they
    match the file names of private keys even for x509-certificate delegations)."""

    role: str
    paths: tuple[str, ...]
    key_ids: frozenset[str]

    def covers(self, tag: str) -> bool:
        """Whether the role may sign `tag`: TUF paths are name prefixes; "" covers all."""
        return any(tag.startswith(path) for path in self.paths)

    @property
    def is_direct_child(self) -> bool:
        # docker signs only into children of `targets`; deeper roles need their parent's key.
        return self.role.rpartition("/")[0] == TARGETS_ROLE


@dataclass(frozen=True)
class ListedTarget:
    """One row of `notary list`."""

    name: str
    sha256_hex: str
    size: int
    role: str


def _table_rows(output: str, first_column: str) -> tuple[str, list[str]] | None:
    """(header, rows) of the tabwriter table whose header starts with `first_column`."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(first_column + " "):
            rows: list[str] = []
            for row in lines[index + 2 :]:  # skip the "----" underline
                if not row.strip():
                    break
                rows.append(row)
            return line, rows
    return None


def parse_delegation_list(output: str) -> list[Delegation]:
    """The roles in `notary delegation list` output ([] for "No delegations present").

    Rows are cut at the header's column offsets: Go's tabwriter aligns every row of the table
    to them, paths may contain spaces, and a role with several paths or keys continues on rows
    whose ROLE cell is empty.
    """
    table = _table_rows(output, "ROLE")
    if table is None:
        return []
    header, rows = table
    paths_at, keys_at, threshold_at = (
        header.find("PATHS"),
        header.find("KEY IDS"),
        header.find("THRESHOLD"),
    )
    if min(paths_at, keys_at, threshold_at) < 0:
        raise TrustError(f"unexpected `notary delegation list` header: {header.strip()}")
    found: list[tuple[str, list[str], set[str]]] = []
    for row in rows:
        role = row[:paths_at].strip()
        path = row[paths_at:keys_at].strip()
        key = row[keys_at:threshold_at].strip()
        if role:
            found.append((role, [], set()))
        elif not found:
            continue
        if path:
            # notary spells the empty ("all paths") prefix this way.
            found[-1][1].append("" if path == '"" <all paths>' else path)
        if key:
            found[-1][2].add(key)
    return [Delegation(role, tuple(paths), frozenset(keys)) for role, paths, keys in found]


def parse_target_list(output: str) -> list[ListedTarget]:
    """The rows of `notary list` output ([] for "No targets present")."""
    table = _table_rows(output, "NAME")
    if table is None:
        return []
    listed: list[ListedTarget] = []
    for row in table[1]:
        fields = row.split()
        # A target not named like a tag (notary allows any name) cannot be a docker tag.
        if len(fields) != 4 or not HEX64.fullmatch(fields[1]) or not fields[2].isdigit():
            continue
        listed.append(ListedTarget(fields[0], fields[1], int(fields[2]), fields[3]))
    return listed


def parse_key_ids(output: str) -> set[str]:
    """Key IDs in `notary key list` output (its GUN column is truncated, so only IDs count)."""
    return set(HEX64.findall(output))


def fatal_reason(output: str) -> str:
    """notary's one-line reason: its last `* fatal:` line, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(_FATAL):
            return line[len(_FATAL) :]
    return lines[-1] if lines else "no output"
