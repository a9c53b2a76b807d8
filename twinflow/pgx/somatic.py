"""Actionable somatic hotspots detected by GRCh38 coordinate and allele.

No consequence annotation is needed: each hotspot codon is listed with its gene strand, the
GRCh38 positions of its three coding bases (c. order) and its reference codon, so that any
SNV inside the codon is translated here with the standard genetic code.  The reference base
in the VCF is checked against the expected codon base; a mismatch is reported (it would mean
a different build or a wrong table row), never silently used.

Table sources: codon numbers and HGVS from COSMIC Cancer Gene Census / cancerhotspots.org
(Chang et al., Nat Biotechnol 2016;34:155 and Cancer Discov 2018;8:174); GRCh38 positions
from ClinVar / COSMIC GRCh38 records of the named variants (IDH1 R132H chr2:208248388 C>T,
BRAF V600E chr7:140753336 A>T, PIK3CA H1047R chr3:179234297 A>G, E545K chr3:179218303 G>A,
E542K chr3:179218294 G>A, KRAS G12D chr12:25245350 C>T, EGFR L858R chr7:55191822 T>G,
TP53 R175H chr17:7675088 C>T, R248Q chr17:7674220 C>T, R273H chr17:7673802 C>T); the other
bases of each codon follow from the strand.  PIK3CA H1047R is also checked against the real
TCGA tumour in ``../shared/data/pcgr`` (tests).

How markers shift model priors: :func:`prior_shifts` returns multiplicative factors on the
oncology twin's prior means (never on the data likelihood), each with its rationale.  The
estimator multiplies the prior median by the factor and keeps the prior width, so strong
data still override the shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from twinflow.io.variants import read_variants

__all__ = ["HOTSPOT_CODONS", "HotspotCodon", "detect_hotspots", "prior_shifts", "translate"]

_BASES = "TCAG"
_AA = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
CODON_TABLE = {a + b + c: _AA[16 * i + 4 * j + k]
               for i, a in enumerate(_BASES) for j, b in enumerate(_BASES) for k, c in enumerate(_BASES)}
_THREE = {"A": "Ala", "R": "Arg", "N": "Asn", "D": "Asp", "C": "Cys", "Q": "Gln", "E": "Glu", "G": "Gly",
          "H": "His", "I": "Ile", "L": "Leu", "K": "Lys", "M": "Met", "F": "Phe", "P": "Pro", "S": "Ser",
          "T": "Thr", "W": "Trp", "Y": "Tyr", "V": "Val", "*": "Ter"}
_COMP = str.maketrans("ACGT", "TGCA")


def translate(codon: str) -> str:
    return CODON_TABLE[codon.upper()]


@dataclass(frozen=True)
class HotspotCodon:
    gene: str
    codon: int
    ref_codon: str          # coding strand, 5'->3'
    chrom: str              # UCSC
    strand: str             # '+' or '-'
    c1_pos: int             # GRCh38 position of the codon's first coding base
    actionable: str         # which changes count (e.g. 'any missense', 'E')
    evidence: str           # clinical meaning, short

    def positions(self) -> tuple[int, int, int]:
        """GRCh38 positions of coding bases 1, 2, 3."""
        s = 1 if self.strand == "+" else -1
        return self.c1_pos, self.c1_pos + s, self.c1_pos + 2 * s

    @property
    def ref_aa(self) -> str:
        return translate(self.ref_codon)


#: Documented hotspot codons (GRCh38).  ``actionable`` 'missense' = any amino-acid change.
HOTSPOT_CODONS: tuple[HotspotCodon, ...] = (
    HotspotCodon("IDH1", 132, "CGT", "chr2", "-", 208248389, "missense",
                 "IDH-mutant glioma (WHO CNS5 2021); ivosidenib/vorasidenib target"),
    HotspotCodon("BRAF", 600, "GTG", "chr7", "-", 140753337, "missense",
                 "BRAF V600E/K: BRAF/MEK inhibitor sensitivity"),
    HotspotCodon("PIK3CA", 1047, "CAT", "chr3", "+", 179234296, "missense",
                 "PIK3CA kinase-domain hotspot: alpelisib (HR+ breast cancer)"),
    HotspotCodon("PIK3CA", 545, "GAG", "chr3", "+", 179218303, "missense",
                 "PIK3CA helical-domain hotspot: alpelisib (HR+ breast cancer)"),
    HotspotCodon("PIK3CA", 542, "GAA", "chr3", "+", 179218294, "missense",
                 "PIK3CA helical-domain hotspot: alpelisib (HR+ breast cancer)"),
    HotspotCodon("KRAS", 12, "GGT", "chr12", "-", 25245351, "missense",
                 "KRAS G12: anti-EGFR resistance (colorectal); G12C: sotorasib/adagrasib"),
    HotspotCodon("KRAS", 13, "GGC", "chr12", "-", 25245348, "missense",
                 "KRAS G13: anti-EGFR resistance (colorectal)"),
    HotspotCodon("EGFR", 858, "CTG", "chr7", "+", 55191821, "missense",
                 "EGFR L858R: EGFR tyrosine-kinase inhibitor sensitivity"),
    HotspotCodon("TP53", 175, "CGC", "chr17", "-", 7675089, "missense", "TP53 DNA-binding hotspot"),
    HotspotCodon("TP53", 220, "TAT", "chr17", "-", 7674873, "missense", "TP53 DNA-binding hotspot"),
    HotspotCodon("TP53", 245, "GGC", "chr17", "-", 7674230, "missense", "TP53 DNA-binding hotspot"),
    HotspotCodon("TP53", 248, "CGG", "chr17", "-", 7674221, "missense", "TP53 DNA-binding hotspot"),
    HotspotCodon("TP53", 249, "AGG", "chr17", "-", 7674218, "missense", "TP53 DNA-binding hotspot"),
    HotspotCodon("TP53", 273, "CGT", "chr17", "-", 7673803, "missense", "TP53 DNA-binding hotspot"),
    HotspotCodon("TP53", 282, "CGG", "chr17", "-", 7673776, "missense", "TP53 DNA-binding hotspot"),
)


def _index() -> dict[tuple[str, int], tuple[HotspotCodon, int]]:
    out = {}
    for h in HOTSPOT_CODONS:
        for i, p in enumerate(h.positions()):
            out[(h.chrom, p)] = (h, i)
    return out


def detect_hotspots(variants: pd.DataFrame | str | Path, *, min_allele_fraction: float = 0.0,
                    patient: str | None = None) -> list[dict[str, Any]]:
    """Hotspot hits in a somatic table (``read_variants(kind='somatic')``, its TSV, or a VCF).

    Only SNVs inside a listed codon count; a synonymous change is not reported.  Rows with
    ``alt_dosage == 0`` (reference genotype) or an allele fraction below
    ``min_allele_fraction`` are skipped.  Each hit: gene, protein (``R132H``), hgvs_p,
    chrom/pos/ref/alt, allele_fraction, depth, filter, evidence and ``ref_check``.
    """
    df = _as_table(variants, patient)
    idx = _index()
    hits = []
    for row in df.itertuples(index=False):
        if len(str(row.ref)) != 1 or len(str(row.alt)) != 1 or str(row.alt) not in "ACGT":
            continue
        key = (str(row.chrom), int(row.pos))
        if key not in idx:
            continue
        if not pd.isna(row.alt_dosage) and int(row.alt_dosage) == 0:
            continue
        af = None if pd.isna(row.allele_fraction) else float(row.allele_fraction)
        if af is not None and af < min_allele_fraction:
            continue
        h, i = idx[key]
        ref_c, alt_c = (row.ref, row.alt) if h.strand == "+" else (row.ref.translate(_COMP), row.alt.translate(_COMP))
        ref_ok = ref_c == h.ref_codon[i]
        mut = h.ref_codon[:i] + alt_c + h.ref_codon[i + 1:]
        alt_aa = translate(mut)
        if alt_aa == h.ref_aa:
            continue
        c_pos = 3 * (h.codon - 1) + i + 1
        hits.append({
            "gene": h.gene, "codon": h.codon,
            "protein": f"{h.ref_aa}{h.codon}{alt_aa}",
            "hgvs_p": f"p.{_THREE[h.ref_aa]}{h.codon}{_THREE[alt_aa]}",
            "hgvs_c": f"c.{c_pos}{ref_c}>{alt_c}",
            "chrom": row.chrom, "pos": int(row.pos), "ref": row.ref, "alt": row.alt,
            "allele_fraction": af, "depth": None if pd.isna(row.depth) else int(row.depth),
            "filter": row.filter, "evidence": h.evidence,
            "ref_check": "ok" if ref_ok else f"VCF REF {row.ref} does not match the expected codon base",
        })
    hits.sort(key=lambda d: (d["gene"], d["codon"], d["pos"], d["alt"]))
    return hits


def _as_table(variants, patient):
    if isinstance(variants, pd.DataFrame):
        return variants
    p = Path(variants)
    if p.suffix == ".tsv":
        return pd.read_csv(p, sep="\t", dtype={"chrom": str, "ref": str, "alt": str, "filter": str},
                           keep_default_na=False, na_values={"alt_dosage": [""], "allele_fraction": [""], "depth": [""]})
    return read_variants(p, kind="somatic", patient=patient)


#: Prior shifts per marker: (gene, protein prefix) -> list of (parameter, factor, rationale).
PRIOR_SHIFTS: dict[str, list[dict[str, Any]]] = {
    "IDH1": [
        {"parameter": "k_per_day", "factor": 0.5,
         "rationale": "IDH-mutant gliomas grow more slowly than IDH-wildtype (median velocity of "
                      "diameter expansion about half; Pallud et al., Neuro Oncol 2012)"},
        {"parameter": "kappa_l_per_mg_h", "factor": 1.5,
         "rationale": "IDH mutation predicts better response to alkylating chemotherapy "
                      "(temozolomide) and radiotherapy (Houillier et al., Neurology 2010)"},
    ],
    "TP53": [
        {"parameter": "alpha_per_gy", "factor": 0.8,
         "rationale": "TP53 loss impairs radiation-induced apoptosis (modest radioresistance)"},
    ],
    "BRAF": [], "PIK3CA": [], "KRAS": [], "EGFR": [],
}


def prior_shifts(hits: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Multiplicative prior-median shifts implied by detected hotspots (one per gene).

    Genes with an empty list in :data:`PRIOR_SHIFTS` are reported for treatment selection only.
    """
    out = []
    seen: set[str] = set()
    for h in hits:
        if h["gene"] in seen:
            continue
        seen.add(h["gene"])
        for s in PRIOR_SHIFTS.get(h["gene"], []):
            out.append({"marker": f"{h['gene']} {h['protein']}", **s})
    return out
