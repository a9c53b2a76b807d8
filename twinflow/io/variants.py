"""Read germline and somatic variant calls (VCF / BCF) into one normalised table.

``read_variants`` accepts VCF and BCF, plain, gzip or BGZF-compressed, selects one sample,
checks that the calls are on GRCh38, renames contigs to UCSC style, splits multi-allelic
records into one row per ALT allele and trims every REF/ALT pair to its minimal
representation.  Any problem raises :class:`twinflow.errors.InputError` naming the patient,
the file (as shown to the user) and what is wrong.  Sample names other than the one asked
for never appear in messages, and no sample name appears in any output.

Output columns (one row per sample x ALT allele; sorted by chrom in natural order
``chr1..chr22, chrX, chrY, chrM, others alphabetically``, then pos, ref, alt):

=================  ===========================================================================
chrom              contig, UCSC style (``1`` -> ``chr1``, ``MT`` -> ``chrM``); other contigs
                   keep their name
pos                1-based position of the minimal representation of this REF/ALT pair
ref, alt           minimal REF / ALT (shared suffix, then shared prefix trimmed, keeping one
                   base); symbolic alleles (``<DEL>``, ``*``) are kept as they are; a record
                   without ALT gives one row with ``alt == "."``
id                 the ID column (``.`` when empty)
qual               QUAL (NaN when ``.``)
filter             ``PASS``, the failed filters joined by ``;``, or ``.`` when not filtered
gt                 the sample's original genotype, allele indices relative to ``orig_alts``
                   (``0/1``, ``1|2``, ``./.``, ``1`` for haploid calls, ``.`` when the file
                   has no GT)
alt_index          1-based index of this row's ALT within ``orig_alts`` (0 for no ALT)
alt_dosage         copies of this row's ALT allele in ``gt`` (0, 1, 2); other ALT alleles do
                   not count here; empty (NA) when no allele is called (``./.``) or there is
                   no GT -- never read a missing call as reference
zygosity           of the sample at the site, the same on every row of a record:
                   ``hom_ref`` (no non-reference allele), ``het`` (one non-reference allele,
                   or two different ones, e.g. 1/2), ``hom_alt`` (all alleles the same
                   non-reference allele), ``hemi`` (haploid non-reference call),
                   ``no_call`` (any allele missing, or no GT at all)
phased             True when the genotype is phased (``|``)
depth              FORMAT DP, else (somatic) FORMAT DPT, else the sum of AD; empty if none
allele_fraction    FORMAT AF of this ALT, else AD[alt] / sum(AD) (somatic: also ADT);
                   NaN if none
orig_pos           POS of the VCF record
orig_ref           REF of the VCF record
orig_alts          ALT column of the VCF record (comma-joined)
=================  ===========================================================================

``df.attrs`` holds ``build`` (always ``"GRCh38"`` -- anything else is refused),
``build_evidence`` (``contig_lengths``, ``header``, ``liftover``, ``positions`` or ``none``),
``build_detail`` (one human-readable sentence), ``warnings`` (list of strings) and the counts
used by the QC JSON of :func:`ingest_variants`.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pysam

from twinflow.errors import InputError
from twinflow.io.atomic import write_json, write_tsv

__all__ = [
    "COLUMNS",
    "GRCH37_LENGTHS",
    "GRCH38_LENGTHS",
    "KINDS",
    "detect_build",
    "ingest_variants",
    "minimal_representation",
    "normalize_contig",
    "read_variants",
    "write_variant_table",
]

KINDS = ("germline", "somatic")

COLUMNS = [
    "chrom", "pos", "ref", "alt", "id", "qual", "filter", "gt", "alt_index", "alt_dosage",
    "zygosity", "phased", "depth", "allele_fraction", "orig_pos", "orig_ref", "orig_alts",
]

# Primary-assembly chromosome lengths (UCSC chromInfo / NCBI assembly reports for
# GRCh38 = hg38 and GRCh37 = hg19).  chrM is left out of the vote where it is ambiguous:
# GRCh38 chrM and GRCh37 MT are both the rCRS (16,569 bp); only UCSC hg19 chrM (16,571 bp,
# the old Yoruba sequence) is specific.
GRCH38_LENGTHS: dict[str, int] = {
    "chr1": 248956422, "chr2": 242193529, "chr3": 198295559, "chr4": 190214555,
    "chr5": 181538259, "chr6": 170805979, "chr7": 159345973, "chr8": 145138636,
    "chr9": 138394717, "chr10": 133797422, "chr11": 135086622, "chr12": 133275309,
    "chr13": 114364328, "chr14": 107043718, "chr15": 101991189, "chr16": 90338345,
    "chr17": 83257441, "chr18": 80373285, "chr19": 58617616, "chr20": 64444167,
    "chr21": 46709983, "chr22": 50818468, "chrX": 156040895, "chrY": 57227415,
    "chrM": 16569,
}
GRCH37_LENGTHS: dict[str, int] = {
    "chr1": 249250621, "chr2": 243199373, "chr3": 198022430, "chr4": 191154276,
    "chr5": 180915260, "chr6": 171115067, "chr7": 159138663, "chr8": 146364022,
    "chr9": 141213431, "chr10": 135534747, "chr11": 135006516, "chr12": 133851895,
    "chr13": 115169878, "chr14": 107349540, "chr15": 102531392, "chr16": 90354753,
    "chr17": 81195210, "chr18": 78077248, "chr19": 59128983, "chr20": 63025520,
    "chr21": 48129895, "chr22": 51304566, "chrX": 155270560, "chrY": 59373566,
    "chrM": 16571,
}
_MAIN_CONTIGS = [f"chr{i}" for i in range(1, 23)] + ["chrX", "chrY", "chrM"]
_CONTIG_RANK = {c: i for i, c in enumerate(_MAIN_CONTIGS)}

# Header hints: tokens that name a build.  Checked on lower-cased text.
_BUILD_TOKENS: list[tuple[str, re.Pattern[str]]] = [
    ("GRCh38", re.compile(
        r"grch38|hg38|(?<![a-z0-9])b38(?![0-9])|hs38|assembly38|gca_000001405\.(1[5-9]|2[0-9])(?![0-9])"
        r"|gcf_000001405\.(2[6-9]|[34][0-9])(?![0-9])")),
    ("GRCh37", re.compile(
        r"grch37|hg19|(?<![a-z0-9])b37(?![0-9])|hs37|g1k_v37|assembly19|gca_000001405\.([1-9]|1[0-4])(?![0-9])"
        r"|gcf_000001405\.(1[3-9]|2[0-5])(?![0-9])")),
    ("NCBI36", re.compile(r"ncbi36|hg18|(?<![a-z0-9])b36(?![0-9])")),
    ("T2T-CHM13", re.compile(r"chm13|t2t")),
]
_LIFTOVER_CHAIN = re.compile(r"([a-z0-9]+)to([a-z0-9]+)\.over\.chain", re.IGNORECASE)
_PLAIN_ALLELE = re.compile(r"^[ACGTNacgtn]+$")
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


# --------------------------------------------------------------------------- helpers


def normalize_contig(name: str) -> str:
    """UCSC-style name for the primary human chromosomes; other contigs unchanged.

    ``1``/``chr1`` -> ``chr1``, ``x``/``X``/``chrX`` -> ``chrX``, ``MT``/``M``/``chrMT`` -> ``chrM``.
    """
    core = name[3:] if name[:3].lower() == "chr" else name
    if core.isdigit() and 1 <= int(core) <= 22 and not core.startswith("0"):
        return f"chr{core}"
    up = core.upper()
    if up in ("X", "Y"):
        return f"chr{up}"
    if up in ("M", "MT"):
        return "chrM"
    return name


def minimal_representation(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Trim the shared suffix, then the shared prefix, of REF/ALT (one base always kept).

    Symbolic or missing alleles are returned unchanged.  No left-alignment (that needs the
    reference sequence).
    """
    if not (_PLAIN_ALLELE.match(ref) and _PLAIN_ALLELE.match(alt)):
        return pos, ref, alt
    r, a = ref.upper(), alt.upper()
    while len(r) > 1 and len(a) > 1 and r[-1] == a[-1]:
        r, a = r[:-1], a[:-1]
    while len(r) > 1 and len(a) > 1 and r[0] == a[0]:
        r, a = r[1:], a[1:]
        pos += 1
    return pos, r, a


def _build_from_text(text: str) -> set[str]:
    low = text.lower()
    return {build for build, pat in _BUILD_TOKENS if pat.search(low)}


def detect_build(
    contig_lengths: dict[str, int | None],
    hints: dict[str, list[str]],
    max_pos: dict[str, int],
) -> tuple[str | None, str, str]:
    """Decide the genome build from header contig lengths, header hints and positions.

    ``contig_lengths`` and ``max_pos`` are keyed by normalised contig name; ``hints`` maps a
    header key (``reference``, ``assembly``, ``contig_assembly``, ``liftOverChainFile``) to
    its values.  Returns ``(build, evidence, detail)`` where ``build`` is ``"GRCh38"``,
    ``"GRCh37"``, another build name, ``"mixed"`` or None (nothing tells) and ``evidence`` is
    ``contig_lengths``, ``header``, ``liftover``, ``positions`` or ``none``.
    """
    # 1. contig lengths: the strongest evidence.
    votes: dict[str, list[str]] = {"GRCh38": [], "GRCh37": [], "other": []}
    for contig, length in sorted(contig_lengths.items(), key=lambda kv: _CONTIG_RANK.get(kv[0], 99)):
        if length is None or contig not in GRCH38_LENGTHS:
            continue
        if contig == "chrM" and length != GRCH37_LENGTHS["chrM"]:
            continue  # 16,569 bp rCRS is used by GRCh38 and by GRCh37 (MT) alike
        is38 = length == GRCH38_LENGTHS[contig]
        is37 = length == GRCH37_LENGTHS[contig]
        if is38 and is37:
            continue
        votes["GRCh38" if is38 else "GRCh37" if is37 else "other"].append(f"{contig}={length}")
    if votes["GRCh38"] or votes["GRCh37"] or votes["other"]:
        n38, n37 = len(votes["GRCh38"]), len(votes["GRCh37"])
        if n38 and not n37:
            return "GRCh38", "contig_lengths", f"{n38} ##contig lengths match GRCh38 (e.g. {votes['GRCh38'][0]})"
        if n37 and not n38:
            return "GRCh37", "contig_lengths", f"{n37} ##contig lengths match GRCh37/hg19 (e.g. {votes['GRCh37'][0]})"
        if n37 and n38:
            return "mixed", "contig_lengths", (
                f"##contig lengths mix GRCh38 ({votes['GRCh38'][0]}) and GRCh37 ({votes['GRCh37'][0]})")
        return "unknown", "contig_lengths", (
            f"##contig lengths match neither GRCh38 nor GRCh37 (e.g. {votes['other'][0]})")

    # 2. explicit header hints (##reference, ##assembly, ##contig=<...,assembly=...>).
    found: dict[str, set[str]] = {}
    for key in ("reference", "assembly", "contig_assembly"):
        for value in hints.get(key, []):
            for build in _build_from_text(value):
                found.setdefault(build, set()).add(key)
    if len(found) == 1:
        build, keys = next(iter(found.items()))
        shown = {"reference": "##reference", "assembly": "##assembly", "contig_assembly": "##contig assembly="}
        return build, "header", f"header {', '.join(shown[k] for k in sorted(keys))} names {build}"
    if len(found) > 1:
        return "mixed", "header", f"header hints name several builds: {', '.join(sorted(found))}"

    # 3. a liftover record names the target build (e.g. CrossMap's hg19Tohg38.over.chain).
    targets: set[str] = set()
    for value in hints.get("liftOverChainFile", []):
        m = _LIFTOVER_CHAIN.search(value.rsplit("/", 1)[-1])
        if m:
            targets |= _build_from_text(m.group(2))
    if len(targets) == 1:
        build = next(iter(targets))
        return build, "liftover", f"##liftOverChainFile lifts over to {build}"

    # 4. positions beyond the end of one build's chromosome.
    beyond37 = [c for c, p in max_pos.items() if c in GRCH37_LENGTHS and c != "chrM" and p > GRCH37_LENGTHS[c]]
    beyond38 = [c for c, p in max_pos.items() if c in GRCH38_LENGTHS and c != "chrM" and p > GRCH38_LENGTHS[c]]
    if beyond37 and not beyond38:
        c = beyond37[0]
        return "GRCh38", "positions", f"position {c}:{max_pos[c]} lies beyond the GRCh37 end of {c}"
    if beyond38 and not beyond37:
        c = beyond38[0]
        return "GRCh37", "positions", f"position {c}:{max_pos[c]} lies beyond the GRCh38 end of {c}"
    return None, "none", "no contig lengths, build names or liftover records in the header"


def _sniff(path: Path, fail) -> str:
    """Return 'bgzf', 'gzip' or 'plain' after checking the file looks like VCF/BCF."""
    size = path.stat().st_size
    if size == 0:
        fail("file is empty")
    with open(path, "rb") as fh:
        head = fh.read(65536)
        fh.seek(max(0, size - len(_BGZF_EOF)))
        tail = fh.read()
    if head[:2] == b"\x1f\x8b":
        is_bgzf = len(head) >= 18 and head[3] & 4 and head[12:14] == b"BC"
        try:
            text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 64)
        except zlib.error:
            fail("not a readable gzip/BGZF file (corrupt compressed data)")
        if not (text.startswith(b"##fileformat=VCF") or text.startswith(b"BCF\x02")):
            fail("not a VCF or BCF file (compressed, but no ##fileformat=VCF header)")
        if is_bgzf:
            if tail != _BGZF_EOF:
                fail("file is truncated (the BGZF end-of-file marker is missing)")
            return "bgzf"
        return "gzip"
    if head.startswith(b"BCF\x02"):
        return "plain"
    if not head.startswith(b"##fileformat=VCF"):
        fail("not a VCF or BCF file (it does not start with ##fileformat=VCF)")
    if not tail.endswith(b"\n"):
        fail("file is truncated (the last line does not end with a newline)")
    return "plain"


def _fmt_gt(alleles: tuple, phased: bool) -> str:
    sep = "|" if phased else "/"
    return sep.join("." if a is None else str(a) for a in alleles)


def _zygosity(alleles: tuple) -> str:
    if not alleles or any(a is None for a in alleles):
        return "no_call"
    nonref = [a for a in alleles if a != 0]
    if not nonref:
        return "hom_ref"
    if len(alleles) == 1:
        return "hemi"
    if len(nonref) == len(alleles) and len(set(nonref)) == 1:
        return "hom_alt"
    return "het"


def _ints(value: Any) -> list[int] | None:
    """AD-like value (tuple of int or of strings such as ('112', '32')) -> list of ints."""
    if value is None:
        return None
    if isinstance(value, (str, int)):
        value = (value,)
    out = []
    for v in value:
        if v is None or v == ".":
            return None
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            return None
    return out


def _sample_field(smp: Any, fmt_keys: set[str], key: str) -> Any:
    if key not in fmt_keys:
        return None
    try:
        return smp[key]
    except (KeyError, ValueError, TypeError):
        return None


def _header_info(header: pysam.VariantHeader) -> tuple[dict[str, int | None], dict[str, list[str]], dict[str, str]]:
    lengths: dict[str, int | None] = {}
    renamed: dict[str, str] = {}
    hints: dict[str, list[str]] = {}
    for name in header.contigs:
        norm = normalize_contig(name)
        if norm != name:
            renamed[name] = norm
        lengths[norm] = header.contigs[name].length
    for rec in header.records:
        if rec.type == "CONTIG":
            items = dict(rec)
            if items.get("assembly"):
                hints.setdefault("contig_assembly", []).append(items["assembly"])
        elif rec.type == "GENERIC" and rec.key in ("reference", "assembly", "liftOverChainFile"):
            hints.setdefault(rec.key, []).append(str(rec.value))
    return lengths, hints, renamed


# --------------------------------------------------------------------------- reader


def read_variants(
    path: str | Path,
    *,
    sample: str | None = None,
    patient: str | None = None,
    kind: str = "germline",
    display_path: str | Path | None = None,
) -> pd.DataFrame:
    """Read one sample of a VCF/BCF into the normalised table described in the module doc.

    ``sample`` selects the sample column; it may be omitted for a single-sample file (if it is
    given it must match).  ``kind`` is ``germline`` or ``somatic`` (somatic files may lack GT
    and carry tumour depth as DPT/ADT).  ``display_path`` is how the file is named in error
    messages (default ``path``).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    shown = str(display_path if display_path is not None else path)

    def fail(problem: str) -> None:
        raise InputError(problem, patient=patient, path=shown)

    p = Path(path)
    if not p.exists():
        fail("file not found")
    if not p.is_file():
        fail("not a regular file")
    compression = _sniff(p, fail)

    with tempfile.TemporaryDirectory(prefix="twinflow-vcf-") as tmpdir:
        if compression == "gzip":
            # htslib cannot open plain (non-BGZF) gzip VCFs; decompress to a private copy.
            p = _gunzip_copy(p, Path(tmpdir) / "input.vcf", fail)
        old_verbosity = pysam.set_verbosity(0)  # htslib chatter (missing index, ...) off
        try:
            try:
                vf = pysam.VariantFile(str(p), "r")
            except (OSError, ValueError, NotImplementedError) as exc:
                fail("could not be read as VCF/BCF: the header is malformed, or the file is truncated "
                     f"or corrupt ({type(exc).__name__})")
            try:
                return _read_open(vf, sample=sample, kind=kind, fail=fail)
            finally:
                with contextlib.suppress(Exception):  # htslib may fail closing a corrupt file
                    vf.close()
        finally:
            pysam.set_verbosity(old_verbosity)


def _gunzip_copy(src: Path, dst: Path, fail) -> Path:
    try:
        with gzip.open(src, "rb") as fin, open(dst, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    except (EOFError, OSError, zlib.error):
        fail("file is truncated or corrupt (the gzip stream does not decompress to its end)")
    with open(dst, "rb") as fh:
        head = fh.read(16)
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        if head.startswith(b"##fileformat=VCF") and size:
            fh.seek(size - 1)
            if fh.read(1) != b"\n":
                fail("file is truncated (the last line does not end with a newline)")
    return dst


def _read_open(vf: pysam.VariantFile, *, sample: str | None, kind: str, fail) -> pd.DataFrame:
    header = vf.header
    samples = list(header.samples)
    n_samples = len(samples)
    if n_samples == 0:
        fail("the file has no sample columns (sites-only VCF); a genotyped sample is required")
    if sample is None:
        if n_samples > 1:
            fail(f"the file has {n_samples} samples; configure which sample belongs to this patient")
        sample_idx = 0
    else:
        if sample not in samples:
            fail(f"sample {sample!r} not found (the file has {n_samples} sample{'s' if n_samples != 1 else ''})")
        sample_idx = samples.index(sample)
    if n_samples > 1:
        vf.subset_samples([samples[sample_idx]])

    lengths, hints, renamed = _header_info(header)
    warnings: list[str] = []

    # Refuse early on header evidence, before reading any record.
    build, evidence, detail = detect_build(lengths, hints, {})
    if build is not None and build != "GRCh38":
        _refuse_build(build, detail, fail)

    has_gt = "GT" in header.formats
    if not has_gt and kind == "germline":
        fail("no GT (genotype) FORMAT field in the header; germline calls need genotypes")

    rows: list[tuple] = []
    max_pos: dict[str, int] = {}
    n_records = n_multi = 0
    try:
        for rec in vf:
            n_records += 1
            chrom_raw = rec.chrom
            chrom = normalize_contig(chrom_raw)
            if chrom != chrom_raw:
                renamed[chrom_raw] = chrom
            end = rec.pos + len(rec.ref) - 1
            if end > max_pos.get(chrom, 0):
                max_pos[chrom] = end
            alts = rec.alts or ()
            if len(alts) > 1:
                n_multi += 1
            smp = rec.samples[0]
            fmt_keys = set(rec.format.keys())
            if has_gt and "GT" in fmt_keys:
                alleles = tuple(smp.allele_indices or ())
                phased = bool(smp.phased)
                gt = _fmt_gt(alleles, phased) if alleles else "."
            else:
                alleles, phased, gt = (), False, "."
            zyg = _zygosity(alleles)
            gt_known = any(a is not None for a in alleles)  # './.' -> dosage unknown, not 0

            depth = _sample_field(smp, fmt_keys, "DP")
            if depth is None and kind == "somatic":
                depth = _sample_field(smp, fmt_keys, "DPT")
            ad = _ints(_sample_field(smp, fmt_keys, "AD"))
            if ad is None and kind == "somatic":
                ad = _ints(_sample_field(smp, fmt_keys, "ADT"))
            if depth is None and ad is not None:
                depth = sum(ad)
            af = _sample_field(smp, fmt_keys, "AF")
            if af is not None and not isinstance(af, tuple):
                af = (af,)

            qual = np.nan if rec.qual is None else float(rec.qual)
            filt = ";".join(rec.filter.keys()) or "."
            rid = rec.id or "."
            orig_alts = ",".join(alts) if alts else "."
            for i, alt in enumerate(alts or (".",), start=1 if alts else 0):
                if alt == ".":
                    pos, ref, alt_min = rec.pos, rec.ref, "."
                else:
                    pos, ref, alt_min = minimal_representation(rec.pos, rec.ref, alt)
                dosage = sum(1 for a in alleles if a == i) if (gt_known and i > 0) else (0 if gt_known else None)
                frac = np.nan
                if i > 0 and af is not None and len(af) == len(alts) and af[i - 1] is not None:
                    frac = float(af[i - 1])
                elif i > 0 and ad is not None and len(ad) == len(alts) + 1 and sum(ad) > 0:
                    frac = ad[i] / sum(ad)
                rows.append((
                    chrom, pos, ref, alt_min, rid, qual, filt, gt, i, dosage, zyg, phased,
                    depth, frac, rec.pos, rec.ref, orig_alts,
                ))
    except (OSError, ValueError) as exc:
        fail(f"file is truncated or malformed: record {n_records + 1} could not be read "
             f"({type(exc).__name__}; {n_records} records before it were fine)")

    # Decide the build with the positions too, then check positions against GRCh38.
    if build is None:
        build, evidence, detail = detect_build(lengths, hints, max_pos)
        if build is not None and build != "GRCh38":
            _refuse_build(build, detail, fail)
        if build is None:
            build = "GRCh38"
            warnings.append(
                "genome build not stated in the file (no ##contig lengths, ##reference or "
                "##assembly); assumed GRCh38 -- positions are consistent with it")
    for contig, end in sorted(max_pos.items()):
        if contig in GRCH38_LENGTHS and contig != "chrM" and end > GRCH38_LENGTHS[contig]:
            fail(f"position {contig}:{end} lies beyond the end of GRCh38 {contig} "
                 f"({GRCH38_LENGTHS[contig]:,} bp); the file is not on GRCh38 (lift it over to GRCh38)")

    cols = dict(zip(COLUMNS, map(list, zip(*rows)))) if rows else {c: [] for c in COLUMNS}
    dtypes = {"pos": "int64", "orig_pos": "int64", "alt_index": "int64", "alt_dosage": "Int64",
              "depth": "Int64", "qual": "float64", "allele_fraction": "float64", "phased": "bool"}
    df = pd.DataFrame({c: pd.array(cols[c], dtype=dtypes.get(c, "object")) for c in COLUMNS})
    df = _sort(df)
    df.attrs.update({
        "build": build,
        "build_evidence": evidence,
        "build_detail": detail,
        "warnings": warnings,
        "kind": kind,
        "n_records": n_records,
        "n_multiallelic": n_multi,
        "n_samples_in_file": n_samples,
        "contigs_renamed": dict(sorted(renamed.items())),
    })
    return df


def _refuse_build(build: str, detail: str, fail) -> None:
    if build == "mixed":
        fail(f"genome build is inconsistent: {detail}; GRCh38 is required")
    if build == "unknown":
        fail(f"genome build not recognised: {detail}; GRCh38 is required")
    fail(f"genome build is {build} ({detail}), but GRCh38 is required; "
         f"lift the calls over to GRCh38 (e.g. Picard LiftoverVcf or CrossMap) or re-call on GRCh38")


def _sort(df: pd.DataFrame) -> pd.DataFrame:
    rank = df["chrom"].map(lambda c: _CONTIG_RANK.get(c, len(_CONTIG_RANK)))
    out = (df.assign(_rank=rank)
             .sort_values(["_rank", "chrom", "pos", "ref", "alt"], kind="mergesort")
             .drop(columns="_rank")
             .reset_index(drop=True))
    out.attrs = dict(df.attrs)
    return out


# --------------------------------------------------------------------------- writers


def write_variant_table(df: pd.DataFrame, out_tsv: str | Path) -> None:
    """Write the normalised table as TSV (atomic, deterministic float format)."""
    write_tsv(out_tsv, df[COLUMNS])


def variant_qc(df: pd.DataFrame, *, patient: str | None = None) -> dict[str, Any]:
    """Small QC summary of a table from :func:`read_variants` (no sample names, no paths)."""
    a = df.attrs
    n_multi_rows = int((df["orig_alts"].str.contains(",", regex=False)).sum()) if len(df) else 0
    return {
        "patient_id": patient,
        "kind": a.get("kind"),
        "build": a.get("build"),
        "build_evidence": a.get("build_evidence"),
        "build_detail": a.get("build_detail"),
        "warnings": list(a.get("warnings", [])),
        "n_records": int(a.get("n_records", 0)),
        "n_rows": int(len(df)),
        "n_multiallelic_records": int(a.get("n_multiallelic", 0)),
        "n_rows_from_multiallelic": n_multi_rows,
        "n_filtered": int((~df["filter"].isin(["PASS", "."])).sum()),
        "n_no_call": int((df["zygosity"] == "no_call").sum()),
        "n_non_ref_rows": int((df["alt_dosage"].fillna(0) > 0).sum()),
        "n_samples_in_file": int(a.get("n_samples_in_file", 0)),
        "contig_renaming_applied": bool(a.get("contigs_renamed")),
        "contigs_renamed": dict(a.get("contigs_renamed", {})),
    }


def ingest_variants(
    path: str | Path,
    out_tsv: str | Path,
    out_qc_json: str | Path,
    *,
    patient: str,
    sample: str | None = None,
    kind: str = "germline",
    display_path: str | Path | None = None,
) -> dict[str, Any]:
    """Read, normalise and write one patient's calls: the TSV table plus a QC JSON.

    Nothing is written when the input is refused.  Returns the QC dictionary.
    """
    df = read_variants(path, sample=sample, patient=patient, kind=kind, display_path=display_path)
    qc = variant_qc(df, patient=patient)
    write_variant_table(df, out_tsv)
    write_json(out_qc_json, qc)
    return qc
