"""PharmCAT allele definitions and CPIC allele functions (package data, MPL-2.0).

``data/pharmcat_alleles.json`` holds, for DPYD, TPMT, NUDT15, UGT1A1, CYP2C9, CYP2C19, CYP3A5,
SLCO1B1 and VKORC1, the allele definitions of PharmCAT's ``<GENE>_translation.json`` files
(PharmGKB/PharmCAT, MPL-2.0; see ``data/SOURCES.tsv``): every allele-defining position (GRCh38,
VCF representation: POS, REF, ALTs) and every named allele as ``{position: VCF allele}``.
An IUPAC code (``R``, ``Y``, ``M`` ...) stands for either base; a position an allele does not
name is, as in PharmCAT, the reference allele's base.  The reference allele (``*1``,
``*38`` for CYP2C19, ``Reference`` for DPYD, ``rs9923231 reference (C)`` for VKORC1) names
every position.

``data/cpic_phenotypes.json`` holds CPIC's allele functions / activity values as PharmCAT ships
them (``phenotype/cpic/<GENE>.json``) and the function-pair -> phenotype rules that CPIC's
diplotype tables in those files follow.

The files are the reference data PharmCAT uses, restricted to the fields the matcher needs
(how each was transcribed is recorded per gene, ``transcription``); their origin, version,
licence and SHA-256 are in ``data/SOURCES.tsv`` and in :func:`source_info`, which every call
record carries.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = [
    "PHARMCAT_GENES",
    "GeneDefinition",
    "NamedAllele",
    "Variant",
    "data_files",
    "load_definition",
    "load_phenotypes",
    "source_info",
]

#: Genes called with PharmCAT's matching semantics (CYP2D6 is not: PharmCAT takes it from
#: outside callers only).
PHARMCAT_GENES: tuple[str, ...] = (
    "CYP2C9", "CYP2C19", "CYP3A5", "DPYD", "NUDT15", "SLCO1B1", "TPMT", "UGT1A1", "VKORC1",
)

_DATA = ("pharmcat_alleles.json", "cpic_phenotypes.json")


@dataclass(frozen=True)
class Variant:
    position: int
    rsid: str | None
    ref: str
    alts: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.position} {self.ref}>{','.join(self.alts)}" + (f" ({self.rsid})" if self.rsid else "")


@dataclass(frozen=True, eq=False)
class NamedAllele:
    name: str
    id: str | None
    reference: bool
    alleles: dict[int, str]          # position -> VCF allele or IUPAC code (defined positions only)

    @property
    def positions(self) -> frozenset[int]:
        return frozenset(self.alleles)


@dataclass(eq=False)
class GeneDefinition:
    gene: str
    chromosome: str
    version: str
    variants: tuple[Variant, ...]            # sorted by position
    named_alleles: tuple[NamedAllele, ...]    # reference first
    transcription: str

    @property
    def reference(self) -> NamedAllele:
        return self.named_alleles[0]

    @property
    def positions(self) -> tuple[int, ...]:
        return tuple(v.position for v in self.variants)

    def variant(self, position: int) -> Variant:
        return next(v for v in self.variants if v.position == position)

    def allele(self, name: str) -> NamedAllele | None:
        return next((a for a in self.named_alleles if a.name == name), None)


def _read(name: str) -> bytes:
    return resources.files("twinflow.pgx").joinpath("data", name).read_bytes()


@functools.lru_cache(maxsize=1)
def _all_definitions() -> dict[str, Any]:
    return json.loads(_read("pharmcat_alleles.json"))


@functools.lru_cache(maxsize=None)
def load_definition(gene: str) -> GeneDefinition:
    """PharmCAT's definition of ``gene`` (one of :data:`PHARMCAT_GENES`)."""
    raw = _all_definitions().get(gene)
    if raw is None:
        raise KeyError(f"no PharmCAT allele definition for {gene!r}")
    variants = tuple(sorted((Variant(int(v["position"]), v["rsid"], v["ref"], tuple(v["alts"]))
                             for v in raw["variants"]), key=lambda v: v.position))
    alleles = [NamedAllele(a["name"], a["id"], bool(a["reference"]),
                           {int(p): s for p, s in a["alleles"].items()})
               for a in raw["namedAlleles"]]
    alleles.sort(key=lambda a: not a.reference)
    if not alleles or not alleles[0].reference or sum(a.reference for a in alleles) != 1:
        raise ValueError(f"{gene}: the definition needs exactly one reference allele")
    return GeneDefinition(gene, raw["chromosome"], raw["version"], variants, tuple(alleles),
                          raw["transcription"])


@functools.lru_cache(maxsize=1)
def _all_phenotypes() -> dict[str, Any]:
    return json.loads(_read("cpic_phenotypes.json"))


def load_phenotypes(gene: str) -> dict[str, Any]:
    """CPIC allele functions / activity values and phenotype rules for ``gene``."""
    return _all_phenotypes()[gene]


def data_files() -> list[str]:
    return list(_DATA)


@functools.lru_cache(maxsize=1)
def source_info() -> dict[str, Any]:
    """Origin, version, licence and SHA-256 of the shipped reference tables."""
    rows = list(csv.DictReader(_read("SOURCES.tsv").decode("utf-8").splitlines(), delimiter="\t"))
    files = {}
    for row in rows:
        data = _read(row["file"])
        files[row["file"]] = {"sha256": hashlib.sha256(data).hexdigest(), "origin": row["origin"],
                              "version": row["version"], "licence": row["licence"]}
        if files[row["file"]]["sha256"] != row["sha256"]:
            raise RuntimeError(f"package data {row['file']} does not match the checksum in SOURCES.tsv")
    return {
        "source": "PharmCAT allele definitions and CPIC allele functions (PharmGKB/PharmCAT)",
        "package": "pharmcat-definitions",
        "version": sorted({r["version"] for r in rows})[0],
        "licence": "MPL-2.0 (https://mozilla.org/MPL/2.0/; the text is PharmCAT's LICENSE)",
        "assembly": "GRCh38",
        "files": files,
        "url": "https://github.com/PharmGKB/PharmCAT",
    }
