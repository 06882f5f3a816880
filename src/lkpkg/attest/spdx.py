"""An SPDX 2.3 JSON document from an image's inventory (spdx.github.io/spdx-spec/v2.3).

Written directly as JSON rather than through a model library: the document is a fixed
shape lkpkg fully controls, the output must be byte-stable (key order, sorted elements,
ids derived from content), and the runtime stays free of a large dependency tree.
spdx-tools validates the output in the tests.

Shape:
- `SPDXRef-DOCUMENT DESCRIBES` the image package (purpose CONTAINER, purl `pkg:oci`).
- The image `CONTAINS` every OS and Python package, every listed file, and each Go
  binary file `CONTAINS` its main module, which `DEPENDS_ON` the modules it linked.
- The image is `GENERATED_FROM` a package of the lkpkg package's own source files.
Licenses are recorded only where the metadata states one; a text that is not an
expression of known SPDX identifiers becomes a `LicenseRef-` with the text kept.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lkpkg.attest.inventory import Component, FileRecord, Inventory

SPDX_VERSION = "SPDX-2.3"
PREDICATE_TYPE = "https://spdx.dev/Document"
NOASSERTION = "NOASSERTION"

# Identifiers common in package metadata; an expression made only of these (and the
# operators) is used as it is, anything else is kept as extracted text.
_KNOWN_LICENSES = frozenset(
    """0BSD AFL-2.1 AGPL-3.0-only AGPL-3.0-or-later Apache-1.1 Apache-2.0 Artistic-1.0
    Artistic-1.0-Perl Artistic-2.0 BSD-1-Clause BSD-2-Clause BSD-3-Clause BSD-4-Clause
    BSL-1.0 bzip2-1.0.6 CC-BY-4.0 CC-BY-SA-4.0 CC0-1.0 CDDL-1.0 curl EPL-1.0 EPL-2.0
    GFDL-1.2-only GFDL-1.2-or-later GFDL-1.3-only GFDL-1.3-or-later GPL-1.0-only
    GPL-1.0-or-later GPL-2.0-only GPL-2.0-or-later GPL-3.0-only GPL-3.0-or-later HPND ISC
    LGPL-2.0-only LGPL-2.0-or-later LGPL-2.1-only LGPL-2.1-or-later LGPL-3.0-only
    LGPL-3.0-or-later libtiff MIT MIT-0 MPL-1.1 MPL-2.0 NCSA OpenSSL PostgreSQL PSF-2.0
    Python-2.0 Ruby Sleepycat TCL Unicode-DFS-2016 Unlicense Vim W3C WTFPL X11 Zlib
    ZPL-2.1 GPL-2.0 GPL-3.0 LGPL-2.1 LGPL-3.0 GPL-2.0+ LGPL-2.1+ GPL-3.0+""".split()  # noqa: SIM905
)
_EXCEPTIONS = frozenset(
    {"Classpath-exception-2.0", "GCC-exception-3.1", "LLVM-exception", "OpenSSL-exception"}
)
# Debian's DEP-5 short names that differ from SPDX identifiers (compared lowercased).
_DEBIAN_NAMES = {
    "expat": "MIT",
    "apache-2": "Apache-2.0",
    "artistic": "Artistic-1.0",
    "artistic-1": "Artistic-1.0",
    "artistic-2": "Artistic-2.0",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "cc0": "CC0-1.0",
    "mpl-2": "MPL-2.0",
    "psf-2": "PSF-2.0",
    "zlib": "Zlib",
    "isc": "ISC",
    "x11": "X11",
}
_GNU = re.compile(r"(A?GPL|LGPL|GFDL)-(\d)(?:\.(\d))?(\+?)", re.IGNORECASE)
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_IDSTRING = re.compile(r"[^A-Za-z0-9.-]+")


@dataclass(frozen=True)
class SourceFile:
    """A file of the lkpkg package's own source, relative to the package directory."""

    path: str
    sha1: str
    sha256: str


@dataclass(frozen=True)
class Subject:
    """The image the document describes."""

    repository: str  # docker.io/org/image
    tag: str
    arch: str
    manifest_digest: str
    created: str  # SPDX date: YYYY-MM-DDThh:mm:ssZ
    source_version: str  # the package's content hash
    source_location: str  # SPDX downloadLocation of the source, or NOASSERTION


def _id(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]
    return f"SPDXRef-{kind}-{digest}"


class _Licenses:
    def __init__(self) -> None:
        self.extracted: dict[str, str] = {}

    def expression(self, text: str | None) -> str:
        if not text or not text.strip():
            return NOASSERTION
        text = " ".join(text.split())
        if self._is_known_expression(text):
            return text
        ref = "LicenseRef-" + (_IDSTRING.sub("-", text).strip("-")[:60] or "unnamed")
        ref += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
        self.extracted[ref] = text
        return ref

    def of_terms(self, terms: Sequence[str]) -> str:
        """All of `terms` (Debian short names, `A or B` alternatives) as one expression."""
        parts = [self._term(term) for term in terms]
        if not parts:
            return NOASSERTION
        return (
            parts[0]
            if len(parts) == 1
            else " AND ".join(f"({p})" if " OR " in p else p for p in parts)
        )

    def _term(self, term: str) -> str:
        alternatives = [a.strip() for a in re.split(r"\s+or\s+", term, flags=re.IGNORECASE)]
        mapped = [_debian_license(a) for a in alternatives]
        if all(m is not None for m in mapped):
            return " OR ".join(m for m in mapped if m is not None)
        return self.expression(term)

    @staticmethod
    @staticmethod
    def _is_known_expression(text: str) -> bool:
        tokens = _TOKEN.findall(text)
        expect_id = True
        depth = 0
        after_with = False
        for word in tokens:
            if word == "(":
                if not expect_id:
                    return False
                depth += 1
            elif word == ")":
                if expect_id:
                    return False
                depth -= 1
                if depth < 0:
                    return False
            elif word in ("AND", "OR", "WITH"):
                if expect_id:
                    return False
                expect_id = True
                after_with = word == "WITH"
                continue
            else:
                if not expect_id:
                    return False
                known = _EXCEPTIONS if after_with else _KNOWN_LICENSES
                if word not in known:
                    return False
                expect_id = False
            after_with = False
        return bool(tokens) and not expect_id and depth == 0

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {"licenseId": ref, "extractedText": text, "name": text}
            for ref, text in sorted(self.extracted.items())
        ]


def _debian_license(name: str) -> str | None:
    """The SPDX identifier for one Debian short name (`GPL-2+` → `GPL-2.0-or-later`)."""
    if name in _KNOWN_LICENSES:
        return name
    known = _DEBIAN_NAMES.get(name.lower())
    if known is not None:
        return known
    gnu = _GNU.fullmatch(name)
    if gnu is not None:
        family, major, minor, plus = gnu.groups()
        spdx_id = f"{family.upper()}-{major}.{minor or 0}-{'or-later' if plus else 'only'}"
        return spdx_id if spdx_id in _KNOWN_LICENSES else None
    return None


def _supplier(text: str | None) -> str:
    if not text:
        return NOASSERTION
    # "Name <mail>" is a person or a team; SPDX wants "Organization: Name (mail)".
    name, _, rest = text.partition("<")
    email = rest.rstrip(">").strip()
    name = " ".join(name.split()) or email
    return f"Organization: {name} ({email})" if email else f"Organization: {name}"


def _component(component: Component, licenses: _Licenses) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": component.name,
        "SPDXID": _id("Package", component.ecosystem, component.purl, component.found_in),
        "versionInfo": component.version,
        "supplier": _supplier(component.supplier),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": licenses.of_terms(component.license_terms)
        if component.license_terms
        else licenses.expression(component.license),
        "copyrightText": NOASSERTION,
        "sourceInfo": f"from {component.ecosystem} metadata at /{component.found_in}",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": component.purl,
            }
        ],
        "primaryPackagePurpose": "LIBRARY"
        if component.ecosystem in ("pypi", "golang") and component.contained_in is None
        else "APPLICATION",
    }
    if component.homepage:
        out["homepage"] = component.homepage
    if component.summary:
        out["summary"] = component.summary
    return out


def _file(record: FileRecord) -> dict[str, Any]:
    return {
        "fileName": f"./{record.path}",
        "SPDXID": _id("File", "image", record.path),
        "fileTypes": ["BINARY"],
        "checksums": [
            {"algorithm": "SHA1", "checksumValue": record.sha1},
            {"algorithm": "SHA256", "checksumValue": record.sha256},
        ],
        "licenseConcluded": NOASSERTION,
        "copyrightText": NOASSERTION,
    }


def _source_file(source: SourceFile) -> dict[str, Any]:
    return {
        "fileName": f"./{source.path}",
        "SPDXID": _id("File", "source", source.path),
        "fileTypes": ["SOURCE"],
        "checksums": [
            {"algorithm": "SHA1", "checksumValue": source.sha1},
            {"algorithm": "SHA256", "checksumValue": source.sha256},
        ],
        "licenseConcluded": NOASSERTION,
        "copyrightText": NOASSERTION,
    }


def _verification_code(sha1s: Sequence[str]) -> str:
    """SPDX 2.3 §7.9: SHA-1 of the sorted SHA-1s of the package's files, concatenated."""
    return hashlib.sha1("".join(sorted(sha1s)).encode(), usedforsecurity=False).hexdigest()


def _rel(a: str, kind: str, b: str) -> dict[str, str]:
    return {"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b}


def document(
    subject: Subject, inventory: Inventory, sources: Sequence[SourceFile]
) -> dict[str, Any]:
    """The SPDX document as a JSON value; `document_bytes` gives its stored bytes."""
    licenses = _Licenses()
    name = subject.repository.rpartition("/")[2]
    image_id = "SPDXRef-Image"
    digest = subject.manifest_digest.partition(":")[2]
    image: dict[str, Any] = {
        "name": subject.repository,
        "SPDXID": image_id,
        "versionInfo": subject.tag,
        "supplier": NOASSERTION,
        "downloadLocation": NOASSERTION,
        # The image's files were read; those listed are the ones no OS package owns.
        "filesAnalyzed": bool(inventory.files),
        "checksums": [{"algorithm": "SHA256", "checksumValue": digest}],
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": f"pkg:oci/{name}@sha256%3A{digest}?arch={subject.arch}"
                f"&repository_url={subject.repository}&tag={subject.tag}",
            }
        ],
        "primaryPackagePurpose": "CONTAINER",
    }
    if inventory.files:
        image["packageVerificationCode"] = {
            "packageVerificationCodeValue": _verification_code([f.sha1 for f in inventory.files])
        }
        image["hasFiles"] = [_id("File", "image", f.path) for f in inventory.files]
    sorted_sources = sorted(sources, key=lambda s: s.path)
    source_id = "SPDXRef-Source"
    source: dict[str, Any] = {
        "name": f"{subject.repository} source",
        "SPDXID": source_id,
        "versionInfo": subject.source_version,
        "supplier": NOASSERTION,
        "downloadLocation": subject.source_location,
        "filesAnalyzed": bool(sorted_sources),
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "SOURCE",
    }
    if sorted_sources:
        source["packageVerificationCode"] = {
            "packageVerificationCodeValue": _verification_code([s.sha1 for s in sorted_sources])
        }
        source["hasFiles"] = [_id("File", "source", s.path) for s in sorted_sources]

    packages = [image, source]
    relationships = [_rel("SPDXRef-DOCUMENT", "DESCRIBES", image_id)]
    relationships.append(_rel(image_id, "GENERATED_FROM", source_id))
    file_ids = {f.path: _id("File", "image", f.path) for f in inventory.files}
    for component in inventory.components:
        entry = _component(component, licenses)
        packages.append(entry)
        if component.contained_in is not None and component.contained_in in file_ids:
            relationships.append(
                _rel(file_ids[component.contained_in], "CONTAINS", entry["SPDXID"])
            )
        elif component.ecosystem != "golang":
            relationships.append(_rel(image_id, "CONTAINS", entry["SPDXID"]))
    by_purl = {
        (c.purl, c.found_in): _id("Package", c.ecosystem, c.purl, c.found_in)
        for c in inventory.components
    }
    for component in inventory.components:
        for dep in component.depends_on:
            target = by_purl.get((dep, component.found_in))
            if target is not None:
                relationships.append(
                    _rel(
                        _id("Package", component.ecosystem, component.purl, component.found_in),
                        "DEPENDS_ON",
                        target,
                    )
                )
    for record in inventory.files:
        relationships.append(_rel(image_id, "CONTAINS", file_ids[record.path]))
    for s in sorted_sources:
        relationships.append(_rel(source_id, "CONTAINS", _id("File", "source", s.path)))

    doc: dict[str, Any] = {
        "spdxVersion": SPDX_VERSION,
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{subject.repository}:{subject.tag}-{subject.arch}",
        "documentNamespace": f"https://spdx.org/spdxdocs/lkpkg/{subject.repository}/"
        f"{subject.arch}-{digest}",
        "creationInfo": {
            "created": subject.created,
            "creators": [f"Tool: lkpkg-{_version()}"],
        },
        "packages": packages,
        "files": [_file(f) for f in inventory.files] + [_source_file(s) for s in sorted_sources],
        "relationships": relationships,
    }
    extracted = licenses.to_json()
    if extracted:
        doc["hasExtractedLicensingInfos"] = extracted
    return doc


def _version() -> str:
    from lkpkg import __version__

    return __version__


def document_bytes(doc: dict[str, Any]) -> bytes:
    """Indented, key order as built: what `lkpkg sbom` prints and what is stored."""
    return json.dumps(doc, indent=2, ensure_ascii=False).encode() + b"\n"
