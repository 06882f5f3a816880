"""in-toto Statements (in-toto attestation framework, Statement v1).

A statement binds a predicate (an SPDX document, a SLSA provenance) to subjects named by
digest. lkpkg's subject is one platform's image manifest, named as BuildKit names it
(`pkg:docker/REPO@TAG?platform=linux%2Famd64`). Readers such as linuxkit look only at
`predicateType` and `predicate`, so v1 and BuildKit's v0.1 read alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from lkpkg.errors import FormatError
from lkpkg.oci.model import Platform

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_TYPES = frozenset({STATEMENT_V1, "https://in-toto.io/Statement/v0.1"})


@dataclass(frozen=True)
class Statement:
    subject_name: str
    subject_digest: str  # sha256:<hex>
    predicate_type: str
    predicate: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        algorithm, _, hex_ = self.subject_digest.partition(":")
        return {
            "_type": STATEMENT_V1,
            "subject": [{"name": self.subject_name, "digest": {algorithm: hex_}}],
            "predicateType": self.predicate_type,
            "predicate": self.predicate,
        }

    def to_bytes(self) -> bytes:
        """Compact, key order as built: one statement, one digest."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode()


def subject_name(repository: str, tag: str, platform: Platform) -> str:
    return f"pkg:docker/{repository}@{tag}?platform={quote(str(platform), safe='')}"


def parse_statement(data: bytes, where: str) -> Statement:
    """A statement's first subject, type and predicate; `FormatError` naming `where`."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise FormatError(f"{where}: attestation is not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("_type") not in STATEMENT_TYPES:
        raise FormatError(f"{where}: not an in-toto statement")
    subjects = doc.get("subject")
    predicate_type = doc.get("predicateType")
    predicate = doc.get("predicate")
    if (
        not isinstance(subjects, list)
        or not subjects
        or not isinstance(subjects[0], dict)
        or not isinstance(predicate_type, str)
        or not isinstance(predicate, dict)
    ):
        raise FormatError(f"{where}: in-toto statement lacks subject, predicateType or predicate")
    digests = subjects[0].get("digest")
    if not isinstance(digests, dict) or not isinstance(digests.get("sha256"), str):
        raise FormatError(f"{where}: in-toto statement subject has no sha256 digest")
    return Statement(
        str(subjects[0].get("name", "")),
        "sha256:" + digests["sha256"],
        predicate_type,
        predicate,
    )
