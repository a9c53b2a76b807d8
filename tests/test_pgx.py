"""Tests for twinflow.pgx: pypgx tables, diplotype/phenotype calling, somatic hotspots, record, CLI.

Expected calls for the PharmCAT 100-sample file were worked out by hand from the raw
genotypes (re-read here with plain text parsing) and the pypgx allele definitions:
s2  TPMT  chr6:18138997 C>T 0/1 (*3B), chr6:18130687 ./. (the *3C position) -> *1/*3A or *1/*3B
s39 DPYD  chr1:97515787 A>C 0/1 (c.1679T>G, *13, activity 0)            -> Reference/*13, AS 1
s17 CYP2D6 chr22:42128241 CT>C 0/1 (*3 frameshift, minimal on both sides) -> *1/*3, AS 1
s30 CYP2C19 rs12769205 + rs4244285 1/1 (*2)                            -> *2/*2 poor
s30 UGT1A1 CAT>CATAT,CATATAT,C GT 1/3 (*28 and *36 in one multi-allelic record) and rs887829 (*80)
s35 CYP2C9 *2 0/1 and *3 0/1 unphased -> legacy: *1/*3 (AS 1, in cis) or *2/*3 (AS 0.5, in trans);
    PharmCAT (default): *2/*3 only, no named allele carries both variants

The PharmCAT-semantics cases are in tests/test_pgx_pharmcat.py; tests here that check the legacy
caller's own behaviour pass ``matcher="legacy"``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from twinflow.demo.germline import hotspot_calls, write_germline_vcf, write_somatic_vcf
from twinflow.io.variants import read_variants, write_variant_table
from twinflow.pgx import cli as pgx_cli
from twinflow.pgx.caller import call_gene, call_genes, call_vcf
from twinflow.pgx.record import build_record, write_record
from twinflow.pgx.somatic import HOTSPOT_CODONS, detect_hotspots, prior_shifts, translate
from twinflow.pgx.tables import GENES, evaluate_equation, load_gene, panel_records, source_info, variant_key


@pytest.fixture(scope="module")
def p100(shared_data: Path) -> Path:
    return shared_data / "pharmcat" / "100samples.vcf.bgz"


def raw_gt(path: Path, sample: str, chrom: str, pos: int) -> list[tuple[str, str, str]]:
    """(REF, ALT, GT) of ``sample`` at chrom:pos from the raw text."""
    out = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            if line.startswith("##"):
                continue
            f = line.rstrip("\n").split("\t")
            if line.startswith("#CHROM"):
                col = f.index(sample)
                continue
            if f[0] == chrom and int(f[1]) == pos:
                out.append((f[3], f[4], f[col]))
    return out


# --------------------------------------------------------------------------- tables


def test_tables_from_pypgx_without_importing_it():
    import sys
    src = source_info()
    assert src["package"] == "pypgx" and src["version"].count(".") == 2
    assert set(src["tables_sha256"]) >= {"allele-table.csv", "diplotype-table.csv", "variant-table.csv"}
    assert "pypgx" not in sys.modules  # tables are read as CSV files
    tpmt = load_gene("TPMT")
    assert tpmt.alleles["*3A"].core == {("chr6", 18130687, "T", "C"), ("chr6", 18138997, "C", "T")}
    assert tpmt.phenotype_of("*3A", "*1") == "Intermediate Metabolizer"
    assert load_gene("CYP2C19").default_allele == "*38"     # GRCh38 carries *38, not *1
    assert load_gene("CYP2D6").alleles["*4"].activity_score == 0.0
    assert "*5" in load_gene("CYP2D6").sv_alleles             # deletion: not visible in a VCF
    assert evaluate_equation("0.25 <= score < 1.25", 1.0) and not evaluate_equation("2 == score", 1.5)


def test_indel_keys_match_read_variants_and_pharmcat(shared_data: Path):
    # pypgx writes UGT1A1*28 as 2-233760233-C-CAT; PharmCAT writes CAT>CATAT: both minimal C>CAT.
    ugt = load_gene("UGT1A1")
    assert ugt.alleles["*28"].core == {("chr2", 233760233, "C", "CAT")}
    assert variant_key("chr2", 233760233, "CAT", "CATAT") == ("chr2", 233760233, "C", "CAT")
    assert load_gene("CYP2D6").alleles["*3"].core == {("chr22", 42128241, "CT", "C")}
    # every DPYD/TPMT/NUDT15/UGT1A1/CYP2C19 defining variant is an ALT in pharmcat_positions.vcf
    keys = set()
    for line in (shared_data / "pharmcat" / "pharmcat_positions.vcf").read_text().splitlines():
        if line.startswith("#"):
            continue
        f = line.split("\t")
        keys |= {variant_key(f[0], int(f[1]), f[3], a) for a in f[4].split(",") if a != "."}
    for g in ("DPYD", "TPMT", "NUDT15", "UGT1A1", "CYP2C19", "VKORC1"):
        assert set(load_gene(g).defining_keys()) <= keys, g


# --------------------------------------------------------------------------- calling, real samples


@pytest.mark.shared_data
def test_s2_tpmt_no_call_is_not_reference(p100: Path):
    assert raw_gt(p100, "s2", "chr6", 18138997) == [("C", "T", "0/1")]
    assert raw_gt(p100, "s2", "chr6", 18130687) == [("T", "C,G", "./.")]
    df = read_variants(p100, sample="s2")
    c = call_gene(df, "TPMT")
    assert c["diplotypes"] == ["*1/*3A", "*1/*3B"] and c["ambiguous"]
    assert c["phenotype"] == "Intermediate Metabolizer"     # both candidates agree
    assert "chr6:18130687" in c["missing_positions"] and "*3C" in c["untested_alleles"]
    assert not c["call_complete"]
    ref = call_gene(df, "TPMT", missing_as_reference=True)
    assert ref["diplotypes"] == ["*1/*3B"] and ref["missing_as_reference"]


@pytest.mark.shared_data
def test_hand_checked_samples(p100: Path):
    assert raw_gt(p100, "s39", "chr1", 97515787) == [("A", "C", "0/1")]
    d = call_vcf(p100, sample="s39", genes=["DPYD"])[0]
    assert d["diplotypes"] == ["Reference/c.1679T>G (*13)"]
    assert (d["phenotype"], d["activity_score"]) == ("Intermediate Metabolizer", 1.0)

    assert ("CT", "C", "0/1") in raw_gt(p100, "s17", "chr22", 42128241)
    c = {x["gene"]: x for x in call_vcf(p100, sample="s17")}
    assert c["CYP2D6"]["diplotypes"] == ["*1/*3"] and c["CYP2D6"]["activity_score"] == 1.0
    assert c["CYP2D6"]["phenotype"] == "Intermediate Metabolizer"
    assert any("copy number" in n for n in c["CYP2D6"]["notes"])
    # DPYD c.2846A>T (0.5) and *5 (1.0) unphased: cis or trans both give AS 1.5
    assert c["DPYD"]["activity_score"] == 1.5 and c["DPYD"]["phenotype"] == "Intermediate Metabolizer"

    s30 = {x["gene"]: x for x in call_vcf(p100, sample="s30")}
    assert s30["CYP2C19"]["diplotypes"] == ["*2/*2"] and s30["CYP2C19"]["phenotype"] == "Poor Metabolizer"
    assert raw_gt(p100, "s30", "chr2", 233760233) == [("CAT", "CATAT,CATATAT,C", "1/3")]
    # PharmCAT: *80 and *28 on one strand (*80+*28) beside *36; *28/*36 would leave *80 unexplained
    assert s30["UGT1A1"]["diplotypes"] == ["*36/*80+*28"]
    assert s30["UGT1A1"]["phenotype"] == "Intermediate Metabolizer"

    s1 = {x["gene"]: x for x in call_vcf(p100, sample="s1")}
    assert s1["VKORC1"]["rs9923231_genotype"] == "AA" and s1["VKORC1"]["phenotype"] == "-1639 A/A"
    assert s1["CYP2C9"]["diplotypes"] == ["*1/*2"] and s1["CYP2C9"]["activity_score"] == 1.5


@pytest.mark.shared_data
def test_legacy_unphased_ambiguity_reports_candidates(p100: Path):
    assert call_vcf(p100, sample="s35", genes=["CYP2C9"])[0]["diplotypes"] == ["*2/*3"]   # PharmCAT
    c = call_vcf(p100, sample="s35", genes=["CYP2C9"], matcher="legacy")[0]
    assert c["diplotypes"] == ["*1/*3", "*2/*3"] and c["ambiguous"]
    assert c["phenotype"] == "Indeterminate" and c["activity_score"] is None
    assert c["phenotype_candidates"]["*1/*3"] == {"phenotype": "Intermediate Metabolizer", "activity_score": 1.0}
    assert c["phenotype_candidates"]["*2/*3"] == {"phenotype": "Poor Metabolizer", "activity_score": 0.5}


@pytest.mark.shared_data
def test_positions_file_gives_reference_calls(shared_data: Path):
    calls = {c["gene"]: c for c in call_vcf(shared_data / "pharmcat" / "pharmcat_positions.vcf")}
    assert calls["TPMT"]["diplotypes"] == ["*1/*1"] and calls["TPMT"]["missing_positions"] == []
    assert calls["DPYD"]["diplotypes"] == ["Reference/Reference"] and calls["DPYD"]["activity_score"] == 2.0
    assert calls["CYP2C19"]["diplotypes"] == ["*38/*38"]      # GRCh38 reference haplotype
    assert calls["VKORC1"]["phenotype"] == "-1639 G/G"


def test_phased_genotype_resolves_and_uncovered_gene_is_no_call(tmp_path: Path):
    p = tmp_path / "g.vcf"
    gts = {"rs1799853": "0|1", "rs1057910": "0|1", "rs4244285": "0/1", "rs12769205": "0/1",
           "rs3758581": "1/1"}
    write_germline_vcf(p, gts, panel_genes=GENES)
    # PharmCAT: *2 and *3 on one strand is no named allele -> Unknown/Unknown
    assert call_vcf(p, genes=["CYP2C9"])[0]["call"] == "Unknown/Unknown"
    c = {x["gene"]: x for x in call_vcf(p, matcher="legacy")}
    # *2 and *3 on the same haplotype (phased 0|1, 0|1): *3 wins by function -> *1/*3
    assert c["CYP2C9"]["diplotypes"] == ["*1/*3"] and not c["CYP2C9"]["ambiguous"]
    assert c["CYP2C19"]["phenotype"] == "Intermediate Metabolizer" and c["CYP2C19"]["missing_positions"] == []
    # a VCF with only the legacy demo positions: NUDT15 beyond rs116855232 is missing
    q = tmp_path / "legacy.vcf"
    write_germline_vcf(q, {})
    n = call_vcf(q, genes=["NUDT15", "SLCO1B1"], matcher="legacy")
    assert n[0]["diplotypes"] == ["*1/*1"] and len(n[0]["missing_positions"]) == 16
    df = read_variants(q)
    empty = call_gene(df[df.chrom != "chr13"], "NUDT15", matcher="legacy")
    assert empty["diplotypes"] == [] and empty["phenotype"] == "Indeterminate"


def test_panel_writer_deterministic_and_merges(tmp_path: Path):
    a, b = tmp_path / "a.vcf.gz", tmp_path / "b.vcf.gz"
    write_germline_vcf(a, {"rs3918290": "0/1"}, panel_genes=GENES)
    write_germline_vcf(b, {"rs3918290": "0/1"}, panel_genes=GENES)
    assert a.read_bytes() == b.read_bytes()
    recs = {(c, p): (r, alts) for c, p, r, alts, _, _ in panel_records()}
    assert recs[("chr2", 233760233)] == ("CAT", ["CATAT", "CATATAT", "C"])
    assert recs[("chr13", 48037782)][0] == "AGGAGTC"


# --------------------------------------------------------------------------- somatic


def test_translate_and_codon_table():
    assert translate("CGT") == "R" and translate("CAT") == "H" and translate("TAA") == "*"
    for h in HOTSPOT_CODONS:
        assert len(set(h.positions())) == 3


@pytest.mark.shared_data
def test_pcgr_hotspots_no_chr_no_annotation(shared_data: Path, tmp_path: Path):
    path = shared_data / "pcgr" / "T001-BRCA.grch38.vcf.gz"
    hits = detect_hotspots(path)
    assert [(h["gene"], h["protein"], h["hgvs_c"]) for h in hits] == [("PIK3CA", "H1047R", "c.3140A>G")]
    assert hits[0]["ref_check"] == "ok" and hits[0]["allele_fraction"] == pytest.approx(0.418918918919)
    # TP53 chr17:7673806 C>T (codon 272, V272M) is a missense outside the listed hotspot codons
    df = read_variants(path, kind="somatic")
    assert ((df.chrom == "chr17") & (df.pos == 7673806)).any()
    # same result from the ingested TSV
    tsv = tmp_path / "somatic.tsv"
    write_variant_table(df, tsv)
    again = detect_hotspots(tsv)
    assert [(h["protein"], h["pos"], h["depth"]) for h in again] == [("H1047R", 179234297, 74)]
    assert again[0]["allele_fraction"] == pytest.approx(hits[0]["allele_fraction"], abs=1e-9)


def test_demo_hotspots_and_prior_shifts(tmp_path: Path):
    p = tmp_path / "t.vcf"
    write_somatic_vcf(p, hotspot_calls() + [("7", 140753336, "A", "C", 0.3, 100),   # V600G
                                            ("12", 25245349, "A", "G", 0.3, 100)])  # G12G synonymous
    hits = detect_hotspots(p)
    assert [h["protein"] for h in hits] == ["V600G", "V600E", "L858R", "R132H", "G12D", "H1047R"]
    assert all(h["ref_check"] == "ok" for h in hits)
    shifts = prior_shifts(hits)
    assert {s["marker"] for s in shifts} == {"IDH1 R132H"}
    assert {s["parameter"]: s["factor"] for s in shifts} == {"k_per_day": 0.5, "kappa_l_per_mg_h": 1.5}


# --------------------------------------------------------------------------- record and CLI


def _labs() -> pd.DataFrame:
    rows = [("2024-01-02", "creatinine", 70.0, "umol/L"), ("2024-02-20", "creatinine", 140.0, "umol/L"),
            ("2024-01-02", "neutrophils", 1.2, "10^9/L"), ("2024-01-02", "platelets", 180.0, "10^9/L"),
            ("2024-01-02", "bilirubin_total", 40.0, "umol/L")]
    return pd.DataFrame({"date": [r[0] for r in rows], "analyte": [r[1] for r in rows],
                         "value": [r[2] for r in rows], "unit": [r[3] for r in rows], "plausible": True})


def test_record_json_and_tsv(tmp_path: Path):
    g = tmp_path / "germline.vcf"
    write_germline_vcf(g, {"rs3918290": "0/1", "rs9923231": "1/1", "rs1057910": "0/1"}, panel_genes=GENES)
    s = tmp_path / "tumour.vcf"
    write_somatic_vcf(s, hotspot_calls(genes=["IDH1"]))
    gt, st = tmp_path / "g.tsv", tmp_path / "s.tsv"
    write_variant_table(read_variants(g), gt)
    write_variant_table(read_variants(s, kind="somatic"), st)
    patient = {"sex": "M", "age_years": 60, "height_cm": 180, "weight_kg": 80}
    tx = [{"date": "2024-01-10", "kind": "drug", "agent": "capecitabine", "dose": 1250, "unit": "mg/m2"},
          {"date": "2024-03-01", "kind": "drug", "agent": "carboplatin", "dose": 5, "unit": "mg*min/mL"},
          {"date": "2024-01-10", "kind": "radiotherapy", "agent": "photon", "dose": 2, "unit": "Gy"}]
    rec = build_record(gt, st, _labs(), patient, tx, patient_id="P1")
    genes = {c["gene"]: c for c in rec["pgx"]["genes"]}
    assert genes["DPYD"]["activity_score"] == 1.0 and genes["CYP2C9"]["diplotypes"] == ["*1/*3"]
    assert rec["pgx"]["source"]["package"] == "pharmcat-definitions"
    assert rec["pgx"]["source"]["legacy_tables"]["package"] == "pypgx"          # CYP2D6
    assert set(rec["pgx"]["source"]["files"]) == {"pharmcat_alleles.json", "cpic_phenotypes.json"}
    assert genes["DPYD"]["source"]["sha256"]["pharmcat_alleles.json"] == \
        rec["pgx"]["source"]["files"]["pharmcat_alleles.json"]["sha256"]
    cape, carbo = rec["administrations"]
    assert cape["dose_mg"] == pytest.approx(1250 * 2.0)                  # BSA 2.0 m2 (180 cm, 80 kg)
    assert cape["genotype_rule"]["dose_fraction"] == 0.5                   # CPIC DPYD AS 1
    assert cape["eligibility"]["eligible"] is False                        # ANC 1.2 < 1.5
    # carboplatin on 2024-03-01 uses the creatinine of 2024-02-20 (140 umol/L), Cockcroft-Gault
    crcl = (140 - 60) * 80 / (72 * 140 / (10000 / 113.12))
    assert carbo["dose_mg"] == pytest.approx(5 * (crcl + 25))
    assert carbo["pk"]["cl_l_h"] == pytest.approx((crcl + 25) * 0.06)
    assert rec["physiology"]["2024-01-10"]["hepatic_function"]["value"] == "moderate"  # 40/21 = 1.9 x ULN
    assert any(a.startswith("ast: no value") for a in rec["assumptions"])
    assert rec["somatic"]["hotspots"][0]["protein"] == "R132H"
    w = rec["dose_rules"]["warfarin_iwpc"]
    assert w["inputs"]["vkorc1"] == "AA" and w["inputs"]["cyp2c9"] == "*1/*3"
    j1, t1 = tmp_path / "r.json", tmp_path / "r.tsv"
    write_record(rec, j1, t1)
    j2, t2 = tmp_path / "r2.json", tmp_path / "r2.tsv"
    write_record(build_record(gt, st, _labs(), patient, tx, patient_id="P1"), j2, t2)
    assert j1.read_bytes() == j2.read_bytes() and t1.read_bytes() == t2.read_bytes()
    tab = pd.read_csv(t1, sep="\t", keep_default_na=False)
    assert list(tab.columns) == ["section", "item", "date", "value", "unit", "detail", "source"]
    assert tab[(tab.section == "pgx") & (tab.item == "DPYD.activity_score")].value.tolist() == ["1"]
    assert str(tmp_path) not in j1.read_text()


@pytest.mark.shared_data
def test_cli_json_two_samples(p100: Path, capsys):
    assert pgx_cli.main([str(p100), "--sample", "s2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [o["gene"] for o in out] == list(GENES)
    tpmt = next(o for o in out if o["gene"] == "TPMT")
    assert set(tpmt) >= {"gene", "diplotypes", "phenotype", "activity_score", "missing_positions"}
    assert tpmt["diplotypes"] == ["*1/*3A", "*1/*3B"]
    assert pgx_cli.main([str(p100), "--sample", "nope", "--json"]) == 1
    assert "sample 'nope' not found" in capsys.readouterr().err
    assert pgx_cli.main([str(p100), "--sample", "s39", "--genes", "DPYD"]) == 0
    assert "Reference/c.1679T>G (*13)" in capsys.readouterr().out
