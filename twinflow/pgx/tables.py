"""Star-allele definitions, functions and phenotype tables from the ``pypgx`` package.

The tables are the CSV files that ship inside the `pypgx <https://pypi.org/project/pypgx/>`_
wheel (``pypgx/api/data/*.csv``; curated by the pypgx authors from PharmVar, CPIC and
PharmGKB).  They are read with :mod:`csv` straight from the installed distribution --
``pypgx`` itself is never imported (its import pulls in heavy optional dependencies).  The
package version and the SHA-256 of every table read are recorded by :func:`source_info` so
that every call can name the exact tables it used.

Variants are keyed by ``(chrom, pos, ref, alt)`` in the same representation that
:func:`twinflow.io.variants.read_variants` produces: UCSC contig names and the *minimal*
REF/ALT (shared suffix, then shared prefix trimmed, one base kept).  pypgx writes GRCh38
variants as ``chrom-pos-ref-alt`` with a VCF anchor base (``2-233760233-C-CAT`` for
UGT1A1*28); :func:`variant_key` trims both sides the same way, so PharmCAT's
``CAT>CATAT`` at the same position and pypgx's ``C>CAT`` become one key.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.metadata
import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twinflow.io.variants import minimal_representation, normalize_contig

__all__ = [
    "FUNCTION_ORDER",
    "GENES",
    "Allele",
    "DefiningVariant",
    "GeneDefinition",
    "VariantKey",
    "data_dir",
    "evaluate_equation",
    "load_gene",
    "panel_records",
    "source_info",
    "variant_key",
]

#: Genes called by :mod:`twinflow.pgx.caller`, in report order.
GENES: tuple[str, ...] = (
    "CYP2C9", "CYP2C19", "CYP2D6", "CYP3A5", "DPYD", "NUDT15", "SLCO1B1", "TPMT",
    "UGT1A1", "VKORC1",
)

#: Allele function priority used to pick one allele per haplotype (highest first); this is
#: pypgx's ``FUNCTION_ORDER`` (pypgx/api/core.py), copied because pypgx is not imported.
FUNCTION_ORDER: tuple[str, ...] = (
    "No Function", "Severely Decreased Function", "Decreased Function",
    "Possible Decreased Function", "Increased Function", "Possible Increased Function",
    "Class I (Deficient with CNSHA)", "Class II (Deficient)", "Class III (Deficient)",
    "Unfavorable Response", "Malignant Hyperthermia Associated", "Uncertain Function",
    "Unknown Function", "Normal Function",
)

_TABLES = ("allele-table.csv", "variant-table.csv", "gene-table.csv", "diplotype-table.csv",
           "equation-table.csv", "phenotype-table.csv")

VariantKey = tuple[str, int, str, str]


def variant_key(chrom: str, pos: int, ref: str, alt: str) -> VariantKey:
    """``(chrom, pos, ref, alt)`` in UCSC naming and minimal representation."""
    p, r, a = minimal_representation(int(pos), ref, alt)
    return normalize_contig(str(chrom)), p, r, a


def _parse_name(name: str) -> VariantKey:
    chrom, pos, ref, alt = name.split("-")
    return variant_key(chrom, int(pos), ref, alt)


@functools.lru_cache(maxsize=1)
def data_dir() -> Path:
    """Folder of pypgx's bundled tables (located through the distribution metadata)."""
    try:
        dist = importlib.metadata.distribution("pypgx")
    except importlib.metadata.PackageNotFoundError as exc:  # pragma: no cover - install problem
        raise RuntimeError("the pypgx package (allele tables) is not installed; pip install pypgx") from exc
    path = Path(str(dist.locate_file("pypgx/api/data/allele-table.csv"))).parent
    if not (path / "allele-table.csv").is_file():  # pragma: no cover
        raise RuntimeError(f"pypgx is installed but its tables are missing ({path})")
    return path


@functools.lru_cache(maxsize=None)
def _rows(name: str) -> tuple[dict[str, str], ...]:
    with open(data_dir() / name, newline="", encoding="utf-8") as fh:
        return tuple(csv.DictReader(fh))


@functools.lru_cache(maxsize=1)
def source_info() -> dict[str, Any]:
    """Name, version and table checksums of the allele/phenotype source."""
    files = {}
    for name in _TABLES:
        files[name] = hashlib.sha256((data_dir() / name).read_bytes()).hexdigest()
    return {
        "source": "pypgx bundled allele, variant, diplotype and phenotype tables "
                  "(curated from PharmVar, CPIC and PharmGKB)",
        "package": "pypgx",
        "version": importlib.metadata.version("pypgx"),
        "assembly": "GRCh38",
        "tables_sha256": files,
        "url": "https://github.com/sbslee/pypgx",
    }


def _na(x: str | None) -> bool:
    return x is None or x.strip() in ("", "N/A", "NA", "nan")


@dataclass(frozen=True)
class DefiningVariant:
    key: VariantKey
    name: str               # pypgx GRCh38 name, e.g. 2-233760233-C-CAT
    rsid: str               # '' when none
    impact: str             # protein impact ('' when none)

    @property
    def label(self) -> str:
        c, p, r, a = self.key
        rs = f" ({self.rsid})" if self.rsid else ""
        return f"{c}:{p} {r}>{a}{rs}"


@dataclass(frozen=True)
class Allele:
    name: str
    function: str
    activity_score: float | None
    core: frozenset[VariantKey]
    tag: frozenset[VariantKey]
    sv: bool                 # defined by a structural variant (copy number / hybrid)

    @property
    def priority(self) -> int:
        return FUNCTION_ORDER.index(self.function) if self.function in FUNCTION_ORDER else len(FUNCTION_ORDER)


@dataclass(frozen=True)
class GeneDefinition:
    gene: str
    strand: str
    phenotype_method: str            # 'Score', 'Diplotype' or 'N/A'
    ref_allele: str                  # the allele the nomenclature calls reference
    default_allele: str              # the allele the GRCh38 reference sequence carries
    alleles: dict[str, Allele]
    variants: dict[VariantKey, DefiningVariant]
    synonyms: dict[VariantKey, VariantKey]
    diplotype_phenotypes: dict[frozenset[str] | tuple[str, str], str] = field(repr=False)
    equations: tuple[tuple[str, str], ...] = ()
    has_sv: bool = False

    @property
    def snv_alleles(self) -> list[Allele]:
        """Alleles defined by SNVs/indels (a non-empty core, no structural variant)."""
        return [a for a in self.alleles.values() if a.core and not a.sv]

    @property
    def sv_alleles(self) -> list[str]:
        return sorted(a.name for a in self.alleles.values() if a.sv)

    def defining_keys(self) -> list[VariantKey]:
        keys: set[VariantKey] = set()
        for a in self.snv_alleles:
            keys |= a.core
        return sorted(keys)

    def phenotype_of(self, a: str, b: str) -> str | None:
        """Phenotype of diplotype ``a/b`` from the diplotype table (None: not listed)."""
        return self.diplotype_phenotypes.get((a, b)) or self.diplotype_phenotypes.get((b, a))


@functools.lru_cache(maxsize=None)
def load_gene(gene: str) -> GeneDefinition:
    """Definition of one gene from the pypgx tables (GRCh38)."""
    gene_rows = [r for r in _rows("gene-table.csv") if r["Gene"] == gene]
    if not gene_rows:
        raise KeyError(f"gene {gene!r} is not in the pypgx gene table")
    g = gene_rows[0]
    variants: dict[VariantKey, DefiningVariant] = {}
    synonyms: dict[VariantKey, VariantKey] = {}
    for r in _rows("variant-table.csv"):
        if r["Gene"] != gene or _na(r["GRCh38Name"]):
            continue
        key = _parse_name(r["GRCh38Name"])
        variants[key] = DefiningVariant(
            key, r["GRCh38Name"], "" if _na(r["rsID"]) else r["rsID"],
            "" if _na(r["Impact"]) else r["Impact"])
        if not _na(r["GRCh38Synonym"]):
            for syn in r["GRCh38Synonym"].split(","):
                synonyms[_parse_name(syn)] = key
    alleles: dict[str, Allele] = {}
    for r in _rows("allele-table.csv"):
        if r["Gene"] != gene:
            continue
        core = frozenset() if _na(r["GRCh38Core"]) else frozenset(_parse_name(v) for v in r["GRCh38Core"].split(","))
        tag = frozenset() if _na(r["GRCh38Tag"]) else frozenset(_parse_name(v) for v in r["GRCh38Tag"].split(","))
        score = None if _na(r["ActivityScore"]) else float(r["ActivityScore"])
        alleles[r["StarAllele"]] = Allele(r["StarAllele"], r["Function"], score, core, tag,
                                          r["SV"].strip().upper() == "TRUE")
    dip: dict[Any, str] = {}
    for r in _rows("diplotype-table.csv"):
        if r["Gene"] == gene:
            a, b = _split_diplotype(r["Diplotype"])
            dip[(a, b)] = r["Phenotype"]
    eqs = tuple((r["Phenotype"], r["Equation"]) for r in _rows("equation-table.csv") if r["Gene"] == gene)
    return GeneDefinition(
        gene=gene, strand=g["Strand"], phenotype_method=g["PhenotypeMethod"],
        ref_allele=g["RefAllele"], default_allele=g["GRCh38Default"], alleles=alleles,
        variants=variants, synonyms=synonyms, diplotype_phenotypes=dip, equations=eqs,
        has_sv=g["SV"].strip().upper() == "TRUE",
    )


def _split_diplotype(text: str) -> tuple[str, str]:
    # DPYD-style names can contain '/', but only genes without such names use the table.
    a, b = text.split("/", 1)
    return a, b


_OPS = {"<": operator.lt, "<=": operator.le, "==": operator.eq, ">": operator.gt, ">=": operator.ge}
_TOKEN = re.compile(r"\s*(<=|>=|==|<|>|score|[0-9]+(?:\.[0-9]+)?)")


def evaluate_equation(equation: str, score: float) -> bool:
    """Evaluate a pypgx phenotype equation such as ``0.25 <= score < 1.25`` (no ``eval``)."""
    tokens = []
    pos = 0
    text = equation.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot read phenotype equation {equation!r}")
        tokens.append(m.group(1))
        pos = m.end()
    values = [score if t == "score" else float(t) for t in tokens[0::2]]
    ops = tokens[1::2]
    if len(values) != len(ops) + 1 or not ops:
        raise ValueError(f"cannot read phenotype equation {equation!r}")
    return all(_OPS[op](values[i], values[i + 1]) for i, op in enumerate(ops))


def phenotype_from_score(defn: GeneDefinition, score: float | None) -> str:
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return "Indeterminate"
    for phenotype, eq in defn.equations:
        if evaluate_equation(eq, score):
            return phenotype
    return "Indeterminate"


def panel_records(genes: tuple[str, ...] | list[str] = GENES) -> list[tuple[str, int, str, list[str], str, str]]:
    """Every allele-defining GRCh38 position of ``genes`` as VCF records.

    Returns sorted ``(chrom, pos, ref, alts, id, gene)``; variants that start at the same
    position are merged into one multi-allelic record (REF = the longest REF, every ALT
    extended with the REF bases it does not cover), as a PGx genotyping panel writes them.
    Representations are pypgx's (VCF, one anchor base).
    """
    by_pos: dict[tuple[str, int], list[tuple[str, str, str, str]]] = {}
    for gene in genes:
        defn = load_gene(gene)
        for key in defn.defining_keys():
            v = defn.variants.get(key)
            if v is None:
                continue
            chrom, pos, ref, alt = v.name.split("-")
            by_pos.setdefault((normalize_contig(chrom), int(pos)), []).append((ref, alt, v.rsid, gene))
    out = []
    for (chrom, pos), items in by_pos.items():
        ref = max((i[0] for i in items), key=len)
        alts: list[str] = []
        for r, a, _, _ in items:
            if not ref.startswith(r):
                raise ValueError(f"{chrom}:{pos}: inconsistent REF alleles in the pypgx tables")
            ext = a + ref[len(r):]
            if ext not in alts and ext != ref:
                alts.append(ext)
        ids = sorted({i[2] for i in items if i[2]})
        gene_names = sorted({i[3] for i in items})
        out.append((chrom, pos, ref, alts, ";".join(ids) or ".", ",".join(gene_names)))
    order = {f"chr{i}": i for i in range(1, 23)}
    out.sort(key=lambda r: (order.get(r[0], 99), r[0], r[1]))
    return out
