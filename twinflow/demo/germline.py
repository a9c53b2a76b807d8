"""Deterministic demo variant calls: a germline pharmacogene VCF and a tumour VCF.

The germline VCF carries real pharmacogene variants at their true GRCh38 positions and
alleles, so that the PGx stage can be exercised end to end on a demo patient.  Positions and
REF/ALT come from dbSNP / PharmVar (GRCh38, forward strand) and agree with PharmCAT's
``pharmcat_positions.vcf`` (checked by ``tests/test_variants.py``).  The tumour VCF uses
contig names without ``chr`` (as callers do on Ensembl references) and holds somatic
hotspots given by the caller, e.g. from :data:`SOMATIC_HOTSPOTS`.

Both writers produce byte-identical files across runs: a path ending in ``.gz``/``.bgz`` is
written as BGZF (no time stamp) with a tabix index beside it, anything else as plain text.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Iterable, NamedTuple

import pysam

from twinflow.io.atomic import atomic_path
from twinflow.io.variants import GRCH38_LENGTHS

__all__ = [
    "PGX_VARIANTS",
    "SOMATIC_HOTSPOTS",
    "PgxVariant",
    "SomaticHotspot",
    "hotspot_calls",
    "write_germline_vcf",
    "write_somatic_vcf",
]


class PgxVariant(NamedTuple):
    rsid: str
    gene: str
    chrom: str
    pos: int  # 1-based, GRCh38
    ref: str  # forward strand
    alt: str  # forward strand
    allele: str  # star allele / haplotype it defines (or tags)
    hgvs: str  # transcript-level name, gene orientation


# Source: dbSNP (build 155+) and PharmVar, GRCh38 coordinates, forward-strand alleles;
# cross-checked against PharmCAT's pharmcat_positions.vcf (PharmGKB/PharmCAT, GRCh38.p14).
# Genes on the minus strand (DPYD, TPMT, VKORC1, CYP3A5, CYP2D6) therefore show the
# complement of the HGVS c. alleles.  Where PharmCAT lists several ALTs at a position
# (rs1142345: C,G; rs3064744: C,CATAT,CATATAT) only the allele named here is used.
PGX_VARIANTS: tuple[PgxVariant, ...] = (
    PgxVariant("rs3918290", "DPYD", "chr1", 97450058, "C", "T", "*2A", "c.1905+1G>A"),
    PgxVariant("rs55886062", "DPYD", "chr1", 97515787, "A", "C", "*13", "c.1679T>G (p.I560S)"),
    PgxVariant("rs67376798", "DPYD", "chr1", 97082391, "T", "A", "c.2846A>T", "c.2846A>T (p.D949V)"),
    PgxVariant("rs56038477", "DPYD", "chr1", 97573863, "C", "T", "HapB3", "c.1236G>A (p.E412=)"),
    PgxVariant("rs1800462", "TPMT", "chr6", 18143724, "C", "G", "*2", "c.238G>C (p.A80P)"),
    PgxVariant("rs1800460", "TPMT", "chr6", 18138997, "C", "T", "*3B", "c.460G>A (p.A154T)"),
    PgxVariant("rs1142345", "TPMT", "chr6", 18130687, "T", "C", "*3C", "c.719A>G (p.Y240C)"),
    PgxVariant("rs116855232", "NUDT15", "chr13", 48045719, "C", "T", "*3", "c.415C>T (p.R139C)"),
    PgxVariant("rs12248560", "CYP2C19", "chr10", 94761900, "C", "T", "*17", "c.-806C>T"),
    PgxVariant("rs4986893", "CYP2C19", "chr10", 94780653, "G", "A", "*3", "c.636G>A (p.W212*)"),
    PgxVariant("rs4244285", "CYP2C19", "chr10", 94781859, "G", "A", "*2", "c.681G>A (splice defect)"),
    PgxVariant("rs1799853", "CYP2C9", "chr10", 94942290, "C", "T", "*2", "c.430C>T (p.R144C)"),
    PgxVariant("rs1057910", "CYP2C9", "chr10", 94981296, "A", "C", "*3", "c.1075A>C (p.I359L)"),
    PgxVariant("rs9923231", "VKORC1", "chr16", 31096368, "C", "T", "-1639G>A", "c.-1639G>A"),
    PgxVariant("rs4149056", "SLCO1B1", "chr12", 21178615, "T", "C", "c.521T>C", "c.521T>C (p.V174A)"),
    PgxVariant("rs776746", "CYP3A5", "chr7", 99672916, "T", "C", "*3", "g.6986A>G (c.219-237A>G, splice defect)"),
    PgxVariant("rs887829", "UGT1A1", "chr2", 233759924, "C", "T", "*80", "c.-364C>T"),
    # *28: promoter A(TA)7TAA instead of A(TA)6TAA, written as PharmCAT writes it (anchor C).
    PgxVariant("rs3064744", "UGT1A1", "chr2", 233760233, "CAT", "CATAT", "*28", "A(TA)7TAA promoter repeat (TA insertion)"),
    PgxVariant("rs4148323", "UGT1A1", "chr2", 233760498, "G", "A", "*6", "c.211G>A (p.G71R)"),
    PgxVariant("rs3892097", "CYP2D6", "chr22", 42128945, "C", "T", "*4", "c.506-1G>A (1846G>A, splice defect)"),
    PgxVariant("rs1065852", "CYP2D6", "chr22", 42130692, "G", "A", "*10", "c.100C>T (p.P34S)"),
)


class SomaticHotspot(NamedTuple):
    gene: str
    protein: str
    hgvs_c: str
    chrom: str  # UCSC style; written without 'chr' by write_somatic_vcf
    pos: int  # 1-based, GRCh38
    ref: str  # forward strand
    alt: str


# GRCh38, forward strand (IDH1, BRAF and KRAS lie on the minus strand, so their c. change
# appears complemented: c.395G>A -> C>T, c.1799T>A -> A>T, c.35G>A -> C>T).  Source: COSMIC /
# ClinVar / CIViC GRCh38 records.  PIK3CA H1047R is present at exactly this position and
# allele in the real TCGA file pcgr/T001-BRCA.grch38.vcf.gz (checked by the tests); the other
# four were cross-checked only against secondary public sources, not a reference FASTA.
SOMATIC_HOTSPOTS: tuple[SomaticHotspot, ...] = (
    SomaticHotspot("IDH1", "R132H", "c.395G>A", "chr2", 208248388, "C", "T"),
    SomaticHotspot("PIK3CA", "H1047R", "c.3140A>G", "chr3", 179234297, "A", "G"),
    SomaticHotspot("EGFR", "L858R", "c.2573T>G", "chr7", 55191822, "T", "G"),
    SomaticHotspot("BRAF", "V600E", "c.1799T>A", "chr7", 140753336, "A", "T"),
    SomaticHotspot("KRAS", "G12D", "c.35G>A", "chr12", 25245350, "C", "T"),
)

_CONTIGS = [f"chr{i}" for i in range(1, 23)] + ["chrX", "chrY", "chrM"]
_GT = re.compile(r"^[01.]([/|][01.])?$")


def hotspot_calls(allele_fraction: float = 0.3, depth: int = 200,
                  genes: Iterable[str] | None = None) -> list[tuple[str, int, str, str, float, int]]:
    """(chrom, pos, ref, alt, allele_fraction, depth) tuples for :func:`write_somatic_vcf`."""
    wanted = None if genes is None else set(genes)
    return [(h.chrom, h.pos, h.ref, h.alt, allele_fraction, depth)
            for h in SOMATIC_HOTSPOTS if wanted is None or h.gene in wanted]


def _ensembl(chrom: str) -> str:
    core = chrom[3:] if chrom.startswith("chr") else chrom
    return "MT" if core in ("M", "MT") else core


def _write_vcf_text(path: str | Path, text: str) -> None:
    """Write ``text`` atomically; BGZF + tabix index when the name ends in .gz/.bgz."""
    path = Path(path)
    data = text.encode("utf-8")
    if path.suffix not in (".gz", ".bgz"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        return
    index = Path(str(path) + ".tbi")
    with atomic_path(path) as tmp:
        with pysam.BGZFile(str(tmp), "wb") as fh:
            fh.write(data)
        tmp_index = Path(str(tmp) + ".tbi")
        try:
            pysam.tabix_index(str(tmp), preset="vcf", force=True, keep_original=True)
            os.chmod(tmp_index, 0o644)
            os.replace(tmp_index, index)  # index first: never newer data without its index
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp_index.unlink()
            raise


def write_germline_vcf(path: str | Path, genotypes: dict[str, str], sample: str = "DEMO",
                       panel_genes: Iterable[str] | None = None) -> None:
    """Write a GRCh38 single-sample VCF with one record per :data:`PGX_VARIANTS` entry.

    ``genotypes`` maps rsID -> GT (``0/0``, ``0/1``, ``1/1``, ``0|1``, ``1|0``, ``./.``, or a
    haploid ``0``/``1``); every table position not given is written as ``0/0`` (a demo patient
    is fully genotyped at these positions).  Records are sorted by chromosome and position.

    ``panel_genes`` (e.g. :data:`twinflow.pgx.tables.GENES`) adds, like a real PGx genotyping
    panel, every allele-defining GRCh38 position of those genes from the pypgx tables
    (:func:`twinflow.pgx.tables.panel_records`) as a reference call ``0/0`` -- alleles starting
    at one position merged into one multi-allelic record -- so that the caller sees no
    missing positions.  Positions already in :data:`PGX_VARIANTS` keep their record.
    """
    known = {v.rsid for v in PGX_VARIANTS}
    panel = []
    if panel_genes is not None:
        from twinflow.pgx.tables import panel_records

        panel = panel_records(tuple(panel_genes))
        known |= {r for rec in panel for r in rec[4].split(";") if r != "."}
    unknown = sorted(set(genotypes) - known)
    if unknown:
        raise ValueError(f"genotypes for rsIDs not in PGX_VARIANTS (or the panel): {', '.join(unknown)}")
    for rsid, gt in sorted(genotypes.items()):
        if not _GT.match(gt):
            raise ValueError(f"{rsid}: genotype {gt!r} is not one of 0/0, 0/1, 1/1, 0|1, 1|0, ./. ...")
    if not re.match(r"^[A-Za-z0-9_.-]+$", sample):
        raise ValueError(f"sample name {sample!r} must be letters, digits, '_', '.', '-'")
    lines = [
        "##fileformat=VCFv4.2",
        '##FILTER=<ID=PASS,Description="All filters passed">',
        "##reference=GRCh38",
        "##source=twinflow.demo.germline",
    ]
    lines += [f"##contig=<ID={c},length={GRCH38_LENGTHS[c]},assembly=GRCh38>" for c in _CONTIGS]
    lines += [
        '##INFO=<ID=GENE,Number=1,Type=String,Description="Pharmacogene">',
        '##INFO=<ID=PGX,Number=1,Type=String,Description="Star allele or variant name defined by this ALT">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", sample]),
    ]
    order = {c: i for i, c in enumerate(_CONTIGS)}
    records = []
    for v in PGX_VARIANTS:
        info = f"GENE={v.gene};PGX={v.allele.replace(' ', '_').replace(';', '_')}"
        records.append((order[v.chrom], v.pos, v.ref, v.alt,
                        [v.chrom, str(v.pos), v.rsid, v.ref, v.alt, ".", "PASS", info, "GT",
                         genotypes.get(v.rsid, "0/0")]))
    taken = {(v.chrom, v.pos) for v in PGX_VARIANTS}
    for chrom, pos, ref, alts, rid, genes in panel:
        if (chrom, pos) in taken:
            continue
        alt = ",".join(alts)
        gt = next((genotypes[r] for r in rid.split(";") if r in genotypes), "0/0")
        records.append((order[chrom], pos, ref, alt,
                        [chrom, str(pos), rid, ref, alt, ".", "PASS", f"GENE={genes.replace(',', '_')}",
                         "GT", gt]))
    for *_, fields in sorted(records, key=lambda r: r[:4]):
        lines.append("\t".join(fields))
    _write_vcf_text(path, "\n".join(lines) + "\n")


def write_somatic_vcf(
    path: str | Path,
    variants: Iterable[tuple[str, int, str, str, float, int]],
    sample: str = "TUMOR",
) -> None:
    """Write a GRCh38 tumour VCF with Ensembl-style contigs (``1``, ``X``, ``MT``; no ``chr``).

    ``variants`` are ``(chrom, pos, ref, alt, allele_fraction, depth)``; chrom may be given with
    or without ``chr``.  Each call is written as GT ``0/1`` with AD = (depth - alt reads, alt
    reads), alt reads = round(allele_fraction * depth), DP = depth and AF = allele_fraction.
    """
    if not re.match(r"^[A-Za-z0-9_.-]+$", sample):
        raise ValueError(f"sample name {sample!r} must be letters, digits, '_', '.', '-'")
    order = {_ensembl(c): i for i, c in enumerate(_CONTIGS)}
    records = []
    for chrom, pos, ref, alt, af, depth in variants:
        c = _ensembl(str(chrom))
        if c not in order:
            raise ValueError(f"contig {chrom!r} is not a primary GRCh38 chromosome")
        if not (0.0 <= float(af) <= 1.0) or int(depth) < 0:
            raise ValueError(f"{chrom}:{pos}: allele fraction must be in [0, 1] and depth >= 0")
        alt_reads = int(round(float(af) * int(depth)))
        records.append((order[c], int(pos), ref, alt, c, float(af), int(depth), alt_reads))
    records.sort()
    lines = [
        "##fileformat=VCFv4.2",
        '##FILTER=<ID=PASS,Description="All filters passed">',
        "##reference=GRCh38",
        "##source=twinflow.demo.germline",
    ]
    lines += [f"##contig=<ID={_ensembl(c)},length={GRCH38_LENGTHS[c]},assembly=GRCh38>" for c in _CONTIGS]
    lines += [
        '##INFO=<ID=SOMATIC,Number=0,Type=Flag,Description="Somatic call">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths for the ref and alt alleles">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fraction of the alt allele">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", sample]),
    ]
    for _, pos, ref, alt, c, af, depth, alt_reads in records:
        fmt = f"0/1:{depth - alt_reads},{alt_reads}:{depth}:{af:.6g}"
        lines.append("\t".join([c, str(pos), ".", ref, alt, ".", "PASS", "SOMATIC", "GT:AD:DP:AF", fmt]))
    _write_vcf_text(path, "\n".join(lines) + "\n")
