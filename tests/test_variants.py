"""Tests for twinflow.io.variants and twinflow.demo.germline.

Real files (via ``shared_data``): PharmCAT's 100-sample GRCh38 VCF and its positions file,
and PCGR's TCGA breast tumour calls (contigs without ``chr``).  Expected values are taken
from the raw text of those files with plain parsing here, independent of pysam, or were
read off the files by hand and hard-coded.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest

from twinflow.demo.germline import (
    PGX_VARIANTS,
    SOMATIC_HOTSPOTS,
    hotspot_calls,
    write_germline_vcf,
    write_somatic_vcf,
)
from twinflow.errors import InputError
from twinflow.io.variants import (
    COLUMNS,
    GRCH37_LENGTHS,
    GRCH38_LENGTHS,
    ingest_variants,
    minimal_representation,
    normalize_contig,
    read_variants,
)

# --------------------------------------------------------------------------- helpers


def raw_records(path: Path) -> tuple[list[str], list[list[str]]]:
    """(sample names, data lines split on tabs) by plain text parsing (gzip or not)."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    samples: list[str] = []
    rows: list[list[str]] = []
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith("##"):
                continue
            fields = line.rstrip("\n").split("\t")
            if line.startswith("#CHROM"):
                samples = fields[9:]
            else:
                rows.append(fields)
    return samples, rows


def expected_dosages(gt: str, n_alts: int) -> list[int | None]:
    """Copies of each ALT (1..n_alts) in a raw GT string such as '1/3' or './.'."""
    alleles = re.split(r"[/|]", gt)
    if all(a == "." for a in alleles):
        return [None] * n_alts
    return [sum(1 for a in alleles if a == str(i)) for i in range(1, n_alts + 1)]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CHR38 = "".join(
    f"##contig=<ID={c},length={n}>\n" for c, n in GRCH38_LENGTHS.items()
)
CHR37 = "".join(
    f"##contig=<ID={c[3:] if c != 'chrM' else 'MT'},length={n if c != 'chrM' else 16569}>\n"
    for c, n in GRCH37_LENGTHS.items()
)
FMT = (
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">\n'
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    '##FILTER=<ID=LowQual,Description="low quality">\n'
)


def vcf_text(contigs: str, body: list[str], samples=("S1",), extra: str = "") -> str:
    head = "##fileformat=VCFv4.2\n" + extra + contigs + FMT
    head += "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]) + "\n"
    return head + "".join(line + "\n" for line in body)


BODY = [
    "chr1\t1000\trsA\tA\tG\t50\tPASS\t.\tGT:AD:DP\t0/1:6,4:10",
    "chr1\t2000\t.\tGTT\tG,GT\t30\tLowQual\t.\tGT:AD:DP\t1/2:0,5,5:11",
    "chr2\t500\t.\tACGT\tACGA\t.\t.\t.\tGT\t1|1",
    "chrX\t7000\t.\tC\tT\t99\tPASS\t.\tGT\t1",
    "chrX\t8000\t.\tC\tT\t99\tPASS\t.\tGT\t./.",
]


@pytest.fixture()
def small_vcf(tmp_path: Path) -> Path:
    p = tmp_path / "small.vcf"
    p.write_text(vcf_text(CHR38, BODY), encoding="utf-8")
    return p


# --------------------------------------------------------------------------- units


def test_normalize_contig():
    assert [normalize_contig(c) for c in ["1", "chr1", "22", "X", "chrY", "MT", "M", "chrM", "chrMT"]] == [
        "chr1", "chr1", "chr22", "chrX", "chrY", "chrM", "chrM", "chrM", "chrM"]
    assert normalize_contig("GL000192.1") == "GL000192.1"
    assert normalize_contig("chr1_KI270706v1_random") == "chr1_KI270706v1_random"
    assert normalize_contig("23") == "23"


def test_minimal_representation():
    assert minimal_representation(100, "GTT", "G") == (100, "GTT", "G")
    assert minimal_representation(100, "GTT", "GT") == (100, "GT", "G")
    assert minimal_representation(500, "ACGT", "ACGA") == (503, "T", "A")
    assert minimal_representation(233760233, "CAT", "CATAT") == (233760233, "C", "CAT")
    assert minimal_representation(10, "A", "<DEL>") == (10, "A", "<DEL>")


# --------------------------------------------------------------------------- generated files


def test_small_vcf_split_and_fields(small_vcf: Path):
    df = read_variants(small_vcf)
    assert list(df.columns) == COLUMNS
    assert len(df) == 6  # 1 + 2 (split) + 1 + 1 + 1
    assert df.attrs["build"] == "GRCh38" and df.attrs["build_evidence"] == "contig_lengths"
    assert df.attrs["n_records"] == 5 and df.attrs["n_multiallelic"] == 1
    m = df[df.orig_pos == 2000].reset_index(drop=True)
    # REF=GTT ALT=G,GT -> two deletions, the second trimmed to GT>G
    assert m[["pos", "ref", "alt"]].values.tolist() == [[2000, "GT", "G"], [2000, "GTT", "G"]]
    assert m.alt_index.tolist() == [2, 1]
    assert m.alt_dosage.tolist() == [1, 1]
    assert set(m.zygosity) == {"het"} and set(m["gt"]) == {"1/2"}
    assert set(m.orig_ref) == {"GTT"} and set(m.orig_alts) == {"G,GT"}
    assert set(m["filter"]) == {"LowQual"} and m.qual.tolist() == [30.0, 30.0]
    assert m.depth.tolist() == [11, 11]
    assert m.allele_fraction.tolist() == [0.5, 0.5]  # AD 0,5,5
    first = df[df.orig_pos == 1000].iloc[0]
    assert (first.id, first["filter"], first.zygosity, first.alt_dosage, first.depth) == ("rsA", "PASS", "het", 1, 10)
    assert first.allele_fraction == pytest.approx(0.4)
    snv = df[df.orig_pos == 500].iloc[0]
    assert (snv.pos, snv.ref, snv.alt, snv["gt"], bool(snv.phased), snv.zygosity, snv.alt_dosage) == (
        503, "T", "A", "1|1", True, "hom_alt", 2)
    assert np.isnan(snv.qual) and snv["filter"] == "."
    hemi = df[df.orig_pos == 7000].iloc[0]
    assert (hemi["gt"], hemi.zygosity, hemi.alt_dosage) == ("1", "hemi", 1)
    nc = df[df.orig_pos == 8000].iloc[0]
    assert (nc["gt"], nc.zygosity) == ("./.", "no_call") and pd.isna(nc.alt_dosage)
    assert df.chrom.tolist() == ["chr1", "chr1", "chr1", "chr2", "chrX", "chrX"]


def test_plain_bgzip_gzip_and_bcf_equal(small_vcf: Path, tmp_path: Path):
    ref = read_variants(small_vcf)
    bgz = tmp_path / "small.vcf.gz"
    pysam.tabix_compress(str(small_vcf), str(bgz), force=True)
    gz = tmp_path / "small.plain.vcf.gz"
    gz.write_bytes(gzip.compress(small_vcf.read_bytes(), mtime=0))
    bcf = tmp_path / "small.bcf"
    with pysam.VariantFile(str(small_vcf)) as vin, pysam.VariantFile(str(bcf), "wb", header=vin.header) as vout:
        for rec in vin:
            vout.write(rec)
    assert bcf.read_bytes()[:2] == b"\x1f\x8b"
    for other in (bgz, gz, bcf):
        got = read_variants(other)
        pd.testing.assert_frame_equal(got, ref)
        assert got.attrs["build_evidence"] == "contig_lengths"


def test_grch37_refused_naming_build_and_file(tmp_path: Path):
    p = tmp_path / "old.vcf"
    p.write_text(vcf_text(CHR37, [b.replace("chr", "") for b in BODY[:1]]), encoding="utf-8")
    with pytest.raises(InputError) as ei:
        read_variants(p, patient="P007", display_path="calls/old.vcf")
    msg = str(ei.value)
    assert msg.startswith("patient P007: calls/old.vcf: ")
    assert "GRCh37" in msg and "GRCh38 is required" in msg and "lift" in msg
    assert str(tmp_path) not in msg
    # build named only in ##reference, no contig lengths
    q = tmp_path / "hg19.vcf"
    q.write_text(vcf_text("##contig=<ID=chr1>\n", BODY[:1], extra="##reference=file:///refs/hg19.fa\n"))
    with pytest.raises(InputError, match="GRCh37"):
        read_variants(q, patient="P007")
    # mixed contig lengths
    mixed = "##contig=<ID=chr1,length=248956422>\n##contig=<ID=chr2,length=243199373>\n"
    r = tmp_path / "mixed.vcf"
    r.write_text(vcf_text(mixed, BODY[:1]))
    with pytest.raises(InputError, match="inconsistent"):
        read_variants(r)


def test_build_from_positions_or_none(tmp_path: Path):
    bare = "##contig=<ID=chr1>\n##contig=<ID=chrX>\n"
    # no build information at all: accepted, evidence recorded as none with a warning
    p = tmp_path / "bare.vcf"
    p.write_text(vcf_text(bare, [BODY[0]]))
    df = read_variants(p)
    assert df.attrs["build"] == "GRCh38" and df.attrs["build_evidence"] == "none"
    assert len(df.attrs["warnings"]) == 1 and "assumed GRCh38" in df.attrs["warnings"][0]
    # chrX:155,500,000 exists on GRCh38 (156,040,895 bp) but not on GRCh37 (155,270,560 bp)
    q = tmp_path / "beyond37.vcf"
    q.write_text(vcf_text(bare, ["chrX\t155500000\t.\tA\tG\t.\tPASS\t.\tGT\t0/1"]))
    df = read_variants(q)
    assert (df.attrs["build"], df.attrs["build_evidence"]) == ("GRCh38", "positions")
    # chr1:249,000,000 exists on GRCh37 (249,250,621 bp) but not on GRCh38 (248,956,422 bp)
    r = tmp_path / "beyond38.vcf"
    r.write_text(vcf_text(bare, ["chr1\t249000000\t.\tA\tG\t.\tPASS\t.\tGT\t0/1"]))
    with pytest.raises(InputError, match="GRCh37"):
        read_variants(r, patient="P1")


def test_bad_files_raise_input_error(tmp_path: Path, small_vcf: Path):
    def check(path: Path, fragment: str):
        with pytest.raises(InputError) as ei:
            read_variants(path, patient="P042", display_path=f"raw/{path.name}")
        msg = str(ei.value)
        assert msg.startswith(f"patient P042: raw/{path.name}: "), msg
        assert fragment in msg, msg
        assert str(tmp_path) not in msg

    check(tmp_path / "missing.vcf.gz", "not found")
    garbage = tmp_path / "garbage.vcf"
    garbage.write_bytes(b"this is not a VCF\x00\x01\x02 at all\n" * 20)
    check(garbage, "not a VCF or BCF")
    empty = tmp_path / "empty.vcf"
    empty.write_bytes(b"")
    check(empty, "empty")
    cut_text = tmp_path / "cut.vcf"
    data = small_vcf.read_bytes()
    cut_text.write_bytes(data[: len(data) - 7])
    check(cut_text, "truncated")
    bgz = tmp_path / "whole.vcf.gz"
    pysam.tabix_compress(str(small_vcf), str(bgz), force=True)
    cut_bgz = tmp_path / "cut.vcf.gz"
    cut_bgz.write_bytes(bgz.read_bytes()[: bgz.stat().st_size // 2])
    check(cut_bgz, "truncated")
    # plain gzip (not BGZF) cut in the middle
    big = vcf_text(CHR38, [f"chr1\t{1000 + i}\t.\tA\tG\t50\tPASS\t.\tGT\t0/1" for i in range(3000)])
    gz = gzip.compress(big.encode(), mtime=0)
    cut_gz = tmp_path / "cut.gz.vcf.gz"
    cut_gz.write_bytes(gz[: len(gz) * 2 // 3])
    check(cut_gz, "truncated or corrupt (the gzip stream")
    gz_garbage = tmp_path / "garbage.vcf.gz"
    gz_garbage.write_bytes(gzip.compress(b"chrom,pos\n1,2\n", mtime=0))
    check(gz_garbage, "not a VCF or BCF")
    malformed = tmp_path / "malformed.vcf"
    malformed.write_text(vcf_text(CHR38, BODY[:2] + ["chr1\tnot_a_number\t.\tA\tG\t.\t.\t.\tGT\t0/1"] + BODY[2:]))
    check(malformed, "record 3 could not be read")
    sites = tmp_path / "sites.vcf"
    sites.write_text("##fileformat=VCFv4.2\n" + CHR38 + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t5\t.\tA\tG\t.\t.\t.\n")
    check(sites, "no sample columns")


def test_sample_selection_single_sample(small_vcf: Path):
    assert len(read_variants(small_vcf, sample="S1")) == 6
    with pytest.raises(InputError, match=r"sample 'NA12878' not found \(the file has 1 sample\)") as ei:
        read_variants(small_vcf, sample="NA12878", patient="P1")
    assert "S1" not in str(ei.value)


def test_ingest_writes_table_and_qc_without_sample_or_paths(tmp_path: Path, small_vcf: Path):
    out = tmp_path / "out" / "variants.tsv"
    qc_path = tmp_path / "out" / "variants_qc.json"
    qc = ingest_variants(small_vcf, out, qc_path, patient="P9", display_path="in/small.vcf")
    assert qc["n_records"] == 5 and qc["n_rows"] == 6 and qc["n_multiallelic_records"] == 1
    assert qc["n_rows_from_multiallelic"] == 2 and qc["n_filtered"] == 2 and qc["n_no_call"] == 1
    assert qc["build"] == "GRCh38" and qc["build_evidence"] == "contig_lengths"
    assert qc["contig_renaming_applied"] is False
    assert json.loads(qc_path.read_text()) == json.loads(json.dumps(qc))
    for text in (out.read_text(), qc_path.read_text()):
        assert "S1" not in text and str(tmp_path) not in text
    back = pd.read_csv(out, sep="\t", keep_default_na=False)
    assert back.columns.tolist() == COLUMNS and len(back) == 6
    # refused input: nothing written
    bad = tmp_path / "bad.vcf"
    bad.write_text("nonsense\n")
    with pytest.raises(InputError):
        ingest_variants(bad, tmp_path / "o2" / "v.tsv", tmp_path / "o2" / "qc.json", patient="P9")
    assert not (tmp_path / "o2").exists() or not any((tmp_path / "o2").iterdir())


# --------------------------------------------------------------------------- real files


@pytest.fixture(scope="module")
def pharmcat100(shared_data: Path) -> Path:
    return shared_data / "pharmcat" / "100samples.vcf.bgz"


@pytest.mark.shared_data
def test_pharmcat_100_samples_split_and_genotypes(pharmcat100: Path):
    samples, rows = raw_records(pharmcat100)
    assert len(samples) == 100 and len(rows) == 873
    n_alt_total = sum(len(r[4].split(",")) for r in rows)
    assert n_alt_total == 1063
    for name in ("s30", "s5", "s47"):
        df = read_variants(pharmcat100, sample=name, patient="P1")
        assert len(df) == n_alt_total
        assert df.attrs["n_records"] == 873 and df.attrs["n_multiallelic"] == 170
        assert df.attrs["build"] == "GRCh38" and df.attrs["build_evidence"] == "header"
        assert df.attrs["contigs_renamed"] == {}
        col = 9 + samples.index(name)
        # every record, independently parsed: original GT and per-ALT dosage
        exp = {}
        for r in rows:
            alts = r[4].split(",")
            for i, d in enumerate(expected_dosages(r[col], len(alts)), start=1):
                key = (r[0], int(r[1]), r[3], r[4], i)
                assert key not in exp
                exp[key] = (r[col], d)
        got = {(c, p, ro, ao, i): (g, None if pd.isna(d) else int(d)) for c, p, ro, ao, i, g, d in
               zip(df.chrom, df.orig_pos, df.orig_ref, df.orig_alts, df.alt_index, df["gt"], df.alt_dosage)}
        assert len(got) == len(df) and got == exp
    # hand-checked: s30 at UGT1A1 rs3064744, REF=CAT ALT=CATAT,CATATAT,C, GT 1/3 (TA7 / TA5)
    df = read_variants(pharmcat100, sample="s30")
    site = df[(df.chrom == "chr2") & (df.orig_pos == 233760233)]
    assert site[["pos", "ref", "alt", "alt_dosage"]].values.tolist() == [
        [233760233, "C", "CAT", 1], [233760233, "C", "CATAT", 0], [233760233, "CAT", "C", 1]]
    assert set(site.zygosity) == {"het"} and set(site["gt"]) == {"1/3"}
    assert set(site.orig_alts) == {"CATAT,CATATAT,C"}
    # hand-checked: s5 at chr19:41016810 (rs3211371, CYP2B6) REF=C ALT=A,T, GT 2/2
    df5 = read_variants(pharmcat100, sample="s5")
    site = df5[df5.orig_pos == 41016810]
    assert site[["alt", "alt_dosage", "zygosity"]].values.tolist() == [["A", 0, "hom_alt"], ["T", 2, "hom_alt"]]
    # s47 has 20 called non-reference genotypes and 90 no-calls (read off the raw file)
    df47 = read_variants(pharmcat100, sample="s47")
    per_record = df47.drop_duplicates(["chrom", "orig_pos", "orig_ref", "orig_alts"])
    assert (per_record.zygosity.isin(["het", "hom_alt"])).sum() == 20
    nc_raw = sum(1 for r in rows if r[9 + samples.index("s47")] == "./.")
    assert (per_record.zygosity == "no_call").sum() == nc_raw


@pytest.mark.shared_data
def test_pharmcat_100_samples_sample_errors(pharmcat100: Path):
    with pytest.raises(InputError) as ei:
        read_variants(pharmcat100, sample="NA12878", patient="P3", display_path="vcf/cohort.vcf.bgz")
    msg = str(ei.value)
    assert msg == "patient P3: vcf/cohort.vcf.bgz: sample 'NA12878' not found (the file has 100 samples)"
    with pytest.raises(InputError) as ei:
        read_variants(pharmcat100, patient="P3")
    msg = str(ei.value)
    assert "100 samples" in msg and not re.search(r"\bs\d+\b", msg)


@pytest.mark.shared_data
def test_pharmcat_positions_reference_patient(shared_data: Path):
    path = shared_data / "pharmcat" / "pharmcat_positions.vcf"
    _, rows = raw_records(path)
    df = read_variants(path, patient="REF")
    assert df.attrs["n_records"] == len(rows) == 1202
    assert len(df) == sum(len(r[4].split(",")) for r in rows) == 1261
    assert set(df["gt"]) == {"0/0"} and set(df.zygosity) == {"hom_ref"} and df.alt_dosage.sum() == 0
    assert set(df["filter"]) == {"PASS"}
    assert df.attrs["build_evidence"] == "header"
    assert df.chrom.unique().tolist() == ["chr1", "chr2", "chr4", "chr6", "chr7", "chr8", "chr10",
                                          "chr12", "chr13", "chr16", "chr19", "chr22", "chrX"]


@pytest.mark.shared_data
def test_pcgr_somatic_contigs_and_hotspot(shared_data: Path, tmp_path: Path):
    path = shared_data / "pcgr" / "T001-BRCA.grch38.vcf.gz"
    samples, rows = raw_records(path)
    df = read_variants(path, patient="T001", kind="somatic")
    assert len(df) == len(rows) == 196
    assert df.chrom.str.startswith("chr").all()
    assert (df.chrom == "chrX").sum() == 15 and (df.chrom == "chr1").sum() == 17
    assert df.attrs["contigs_renamed"]["X"] == "chrX"
    assert (df.attrs["build"], df.attrs["build_evidence"]) == ("GRCh38", "liftover")
    pik = df[(df.chrom == "chr3") & (df.pos == 179234297)]
    assert pik[["ref", "alt", "zygosity"]].values.tolist() == [["A", "G", "het"]]
    # tumour AF from ADT agrees with the caller's INFO TVAF and depth with TDP on every record
    info = {(f"chr{r[0]}", int(r[1])): dict(kv.split("=", 1) for kv in r[7].split(";")) for r in rows}
    tvaf = np.array([float(info[(c, p)]["TVAF"]) for c, p in zip(df.chrom, df.orig_pos)])
    tdp = [int(info[(c, p)]["TDP"]) for c, p in zip(df.chrom, df.orig_pos)]
    np.testing.assert_allclose(df.allele_fraction.to_numpy(), tvaf, rtol=1e-6)
    assert df.depth.tolist() == tdp
    assert pik.allele_fraction.iloc[0] == pytest.approx(0.418918918919)
    # the TCGA barcode never reaches the outputs
    qc = ingest_variants(path, tmp_path / "v.tsv", tmp_path / "qc.json", patient="T001", kind="somatic")
    assert qc["contig_renaming_applied"] is True and qc["n_rows"] == 196
    for f in ("v.tsv", "qc.json"):
        text = (tmp_path / f).read_text()
        assert samples[0] not in text and "TCGA-" not in text


# --------------------------------------------------------------------------- demo writers


@pytest.mark.shared_data
def test_pgx_table_matches_pharmcat_positions(shared_data: Path):
    _, rows = raw_records(shared_data / "pharmcat" / "pharmcat_positions.vcf")
    by_pos = {(r[0], int(r[1])): r for r in rows}
    assert len(PGX_VARIANTS) == 21
    for v in PGX_VARIANTS:
        r = by_pos[(v.chrom, v.pos)]
        assert v.rsid in r[2].split(";"), v
        assert r[3] == v.ref and v.alt in r[4].split(","), v
        assert f"PX={v.gene}" in r[7], v


def test_demo_germline_roundtrip_and_deterministic(tmp_path: Path):
    gts = {"rs3918290": "0/1", "rs4244285": "1/1", "rs9923231": "0|1", "rs3064744": "1/1",
           "rs1065852": "1|0"}
    a, b = tmp_path / "a" / "demo.vcf.gz", tmp_path / "b" / "demo.vcf.gz"
    write_germline_vcf(a, gts)
    write_germline_vcf(b, gts)
    assert sha(a) == sha(b)
    assert sha(Path(str(a) + ".tbi")) == sha(Path(str(b) + ".tbi"))
    raw = a.read_bytes()
    assert raw[12:14] == b"BC" and raw.endswith(bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000"))
    df = read_variants(a, patient="DEMO1")
    assert df.attrs["build_evidence"] == "contig_lengths" and len(df) == len(PGX_VARIANTS)
    for v in PGX_VARIANTS:
        row = df[(df.chrom == v.chrom) & (df.orig_pos == v.pos)]
        assert len(row) == 1, v
        row = row.iloc[0]
        assert (row.id, row.orig_ref, row.orig_alts) == (v.rsid, v.ref, v.alt)
        gt = gts.get(v.rsid, "0/0")
        assert row["gt"] == gt and row.alt_dosage == gt.count("1")
    ugt = df[df.id == "rs3064744"].iloc[0]
    assert (ugt.pos, ugt.ref, ugt.alt, ugt.zygosity) == (233760233, "C", "CAT", "hom_alt")
    # tabix index works
    with pysam.TabixFile(str(a)) as tbx:
        hits = list(tbx.fetch("chr10", 94781858, 94781859))
    assert len(hits) == 1 and hits[0].split("\t")[2] == "rs4244285"
    with pytest.raises(ValueError):
        write_germline_vcf(tmp_path / "x.vcf", {"rs999": "0/1"})
    with pytest.raises(ValueError):
        write_germline_vcf(tmp_path / "x.vcf", {"rs3918290": "0/2"})


def test_demo_somatic_no_chr_and_normalises(tmp_path: Path):
    assert [h.gene for h in SOMATIC_HOTSPOTS] == ["IDH1", "PIK3CA", "EGFR", "BRAF", "KRAS"]
    p = tmp_path / "tumour.vcf.gz"
    write_somatic_vcf(p, hotspot_calls(allele_fraction=0.25, depth=120))
    q = tmp_path / "tumour2.vcf.gz"
    write_somatic_vcf(q, hotspot_calls(allele_fraction=0.25, depth=120))
    assert sha(p) == sha(q)
    with gzip.open(p, "rt") as fh:
        text = fh.read()
    assert "chr" not in text.replace("##source=twinflow.demo.germline", "")
    _, rows = raw_records(p)
    assert [r[0] for r in rows] == ["2", "3", "7", "7", "12"]
    df = read_variants(p, kind="somatic", patient="DEMO1")
    assert df[["chrom", "pos", "ref", "alt"]].values.tolist() == [
        ["chr2", 208248388, "C", "T"], ["chr3", 179234297, "A", "G"], ["chr7", 55191822, "T", "G"],
        ["chr7", 140753336, "A", "T"], ["chr12", 25245350, "C", "T"]]
    assert df.allele_fraction.tolist() == [0.25] * 5 and df.depth.tolist() == [120] * 5


@pytest.mark.shared_data
def test_pik3ca_hotspot_matches_real_tumour(shared_data: Path):
    _, rows = raw_records(shared_data / "pcgr" / "T001-BRCA.grch38.vcf.gz")
    h = next(h for h in SOMATIC_HOTSPOTS if h.gene == "PIK3CA")
    assert [h.chrom[3:], str(h.pos), h.ref, h.alt] in [[r[0], r[1], r[3], r[4]] for r in rows]
