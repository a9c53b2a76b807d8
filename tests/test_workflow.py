"""The workflow end to end on the demo cohort: twins, verification, determinism,
incremental re-runs and error isolation."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from twinflow.demo import cohort
from twinflow.demo.cardiac import CARDIAC_PATIENTS
from twinflow.demo.pregnancy import PREGNANCIES
from twinflow.twin.artefact import validate
from twinflow.twin.verify import verify

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow
ALL_PATIENTS = [p.patient_id for p in cohort.PATIENTS + CARDIAC_PATIENTS + PREGNANCIES]
PER_PATIENT_RULES = {"patient_sheet", "ingest_image", "ingest_label", "ingest_variants", "ingest_labs", "patient_qc",
                     "segment", "pgx_record", "estimate", "simulate", "build_twin", "patient_report"}
COHORT_RULES = {"cohort_qc", "cohort_summary", "cohort_index", "run_crate", "pipeline_info", "all"}
RUN_LEVEL = ("logs", "benchmarks", "pipeline_info")


def write_config(wd: Path, sheets: str = "demo", generate: bool = True, **overrides) -> Path:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    names = ("patients", "imaging", "treatments") + (("pregnancies",) if sheets == "demo" else ())
    cfg["sheets"] = {k: f"{sheets}/{k}.tsv" for k in names}
    cfg["results"] = "out"
    cfg["demo"] = {"generate": generate, "outdir": "demo/data"}
    cfg.update(overrides)
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return wd / "config.yaml"


def snakemake(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile", timeout: int = 2400):
    env = dict(os.environ, PYTHONPATH=str(snakefile.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


def planned(r: subprocess.CompletedProcess) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job in a dry run's output."""
    out = r.stdout + r.stderr
    jobs = []
    for m in re.finditer(r"^(?:local)?rule (\w+):\n((?:[ \t]+.*\n?)*)", out, re.M):
        w = re.search(r"wildcards: (.*)", m.group(2))
        jobs.append((m.group(1), dict(kv.split("=", 1) for kv in w.group(1).split(", ")) if w else {}))
    return jobs


def planned_jobs(r: subprocess.CompletedProcess) -> set[tuple[str, str]]:
    """(rule, patient or '') of every job in a dry run's output."""
    return {(rule, wc.get("patient", "")) for rule, wc in planned(r)}


def tree_digests(root: Path, skip=RUN_LEVEL) -> dict[str, bytes]:
    out = {}
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root)
        if f.is_file() and rel.parts[0] not in skip and f.name not in (".snakemake_timestamp", "ro-crate-metadata.json"):
            out[rel.as_posix()] = f.read_bytes()
    return out


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("wf")
    cohort.write_sheets(wd / "demo")
    write_config(wd)
    r = snakemake(wd)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    return wd


# ------------------------------------------------------------------------- end to end

def test_demo_cohort_runs_end_to_end(demo_run):
    out = demo_run / "out"
    table = pd.read_csv(out / "cohort" / "ingest_qc.tsv", sep="\t")
    assert sorted(table["patient_id"]) == sorted(ALL_PATIENTS)
    for p in cohort.PATIENTS:
        q = json.loads((out / p.patient_id / "ingest" / "qc.json").read_text())
        assert len(q["visits"]) == len(p.visit_days)
        assert set(q["visits"][0]["series"]) == set(cohort.SERIES + cohort.TISSUE_SERIES)
        assert all(set(v["series"]) == set(cohort.SERIES) for v in q["visits"][1:])
        assert q["treatments"]["n_rt_fractions"] == p.rt_fractions
    row = table.set_index("patient_id").loc["ONC002"]
    assert row["n_expert_labels"] == 3 and row["rt_total_gy"] == pytest.approx(40.05)
    summary = pd.read_csv(out / "cohort" / "summary.tsv", sep="\t")
    assert sorted(summary["patient_id"]) == sorted(ALL_PATIENTS)
    for pid in ALL_PATIENTS:
        assert (out / pid / "report.html").stat().st_size > 10_000
    assert (out / "cohort" / "index.html").is_file()
    for f in ("software_versions.yaml", "config.yaml", "sheets.tsv", "run_log.jsonl"):
        assert (out / "pipeline_info" / f).is_file()
    crate = json.loads((out / "ro-crate-metadata.json").read_text())
    ids = {e["@id"]: e for e in crate["@graph"]}
    assert "ONC001/twin/twin.json" in ids and ids["ONC001/twin/twin.json"]["sha256"]
    inputs = [e for e in crate["@graph"] if str(e["@id"]).startswith("#input-")]
    assert inputs and all("sha256" in e and not str(e["@id"]).startswith("/") for e in inputs)
    assert not any((out / x).exists() for x in ("demo", "data"))   # raw data never copied into the crate


def test_every_per_patient_job_leaves_a_log_and_a_benchmark_table(demo_run):
    """Every per-patient job writes its log; every script job its benchmark table beside it
    (logs/ -> benchmarks/, .log -> .tsv), with the job's own measured numbers."""
    from snakemake.benchmark import BenchmarkRecord

    out = demo_run / "out"
    logs = [p for r in PER_PATIENT_RULES for p in (out / "logs" / r).rglob("*.log")]
    assert {p.relative_to(out / "logs").parts[0] for p in logs} == PER_PATIENT_RULES
    for log in logs:
        if log.relative_to(out / "logs").parts[0] == "patient_sheet":
            continue                                  # a run: directive writing one small JSON file
        table = out / "benchmarks" / log.relative_to(out / "logs").with_suffix(".tsv")
        head, row = table.read_text().splitlines()
        assert head.split("\t") == BenchmarkRecord.get_header()
        rec = dict(zip(head.split("\t"), row.split("\t")))
        assert 0.1 < float(rec["s"]) < 600, table


def test_every_storage_orientation_comes_out_canonical_and_aligned(demo_run):
    """NIfTI RAS, NRRD LPS and NIfTI LAS inputs of the same anatomy give the same RAS volume."""
    masks = []
    for p in cohort.PATIENTS:
        img = nib.load(demo_run / "out" / p.patient_id / "ingest" / "imaging" / "V1" / "brain_mask.nii.gz")
        assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
        masks.append((np.asarray(img.dataobj) > 0, img.affine))
    for m, aff in masks[1:]:
        assert np.allclose(aff, masks[0][1], atol=1e-4)
        assert np.array_equal(m, masks[0][0])
    lab = np.asarray(nib.load(demo_run / "out" / "ONC002" / "ingest" / "imaging" / "V2" / "T1post.label.nii.gz").dataobj)
    truth = np.asarray(nib.load(demo_run / "demo" / "data" / "truth" / "ONC002" / "V2_label.nii.gz").dataobj)
    assert np.array_equal(lab, truth)


def test_twins_recover_the_generating_parameters(demo_run):
    """Through the whole pipeline (automatic segmentation, noisy images), the identifiable
    parameters come back within 5 % of the values that generated the demo patients."""
    for pid in ("ONC001", "ONC002", "ONC003", "CAR001"):
        twin = json.loads((demo_run / "out" / pid / "twin" / "twin.json").read_text())
        truth = json.loads((demo_run / "demo" / "data" / "truth" / pid / "truth.json").read_text())
        gen = truth.get("estimable_truth") or truth["parameters"]
        checked = 0
        for name, p in twin["parameters"].items():
            if p.get("estimated") and p.get("identifiable") and name in gen and gen[name]:
                assert p["value"] == pytest.approx(gen[name], rel=0.05), (pid, name, p["value"], gen[name])
                checked += 1
        assert checked >= 2, pid


def test_twin_contents(demo_run):
    out = demo_run / "out"
    for pid in ALL_PATIENTS:
        doc = json.loads((out / pid / "twin" / "twin.json").read_text())
        assert validate(doc) == [], pid
        assert doc["patient_id"] == pid and doc["inputs"] and doc["software"]["packages"]["numpy"]
        assert all(not i["path"].startswith("/") for i in doc["inputs"])
    onc = json.loads((out / "ONC001" / "twin" / "twin.json").read_text())
    f = onc["model_results"]["forecast"][0]
    assert f["visit"] == "V4" and set(f) >= {"visit", "dice", "ccc", "volume_rel_error", "cell_count_rel_error"}
    assert f["dice"] > 0.8
    car = json.loads((out / "CAR001" / "twin" / "twin.json").read_text())
    cf = car["model_results"]["cardiac_function"]
    truth = json.loads((demo_run / "demo" / "data" / "truth" / "CAR001" / "truth.json").read_text())
    assert cf["ef_percent"] == pytest.approx(truth["model_truth"]["ef_pct"], abs=3.0)
    assert {g["gene"]: g["phenotype"] for g in car["pgx"]["pgx"]["genes"]}["CYP2D6"] == "Intermediate Metabolizer"
    arms = pd.read_csv(out / "CAR001" / "twin" / "results" / "arms.tsv", sep="\t")
    trough = arms[arms["timepoint"] == "trough"].set_index("arm")
    assert trough.loc["metoprolol_100mg_bid", "hr_bpm"] < trough.loc["no_drug", "hr_bpm"]


def test_verify_reproduces_twins_from_the_artefact_alone(demo_run, tmp_path):
    for pid in ALL_PATIENTS:
        rep = verify(demo_run / "out" / pid / "twin")
        assert rep.ok, rep.lines()
        assert rep.resimulated_files >= 1
    # a copy far from the raw data and results verifies too; tampering is caught and named
    copy = tmp_path / "ONC002-twin"
    shutil.copytree(demo_run / "out" / "ONC002" / "twin", copy)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "twinflow.cli", "verify", str(copy)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    arms = copy / "results" / "arms.tsv"
    data = bytearray(arms.read_bytes())
    data[-2] = ord("7") if data[-2] != ord("7") else ord("8")
    arms.write_bytes(bytes(data))
    r = subprocess.run([sys.executable, "-m", "twinflow.cli", "verify", str(copy)], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "results/arms.tsv" in r.stdout


def test_simulate_an_arm_from_the_artefact(demo_run, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "twinflow.cli", "simulate", str(demo_run / "out" / "ONC003" / "twin"),
                        "--arm", "no_treatment", "--out", str(tmp_path)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    arm = pd.read_csv(tmp_path / "arm_no_treatment.tsv", sep="\t")
    stored = pd.read_csv(demo_run / "out" / "ONC003" / "twin" / "results" / "arms.tsv", sep="\t")
    stored = stored[stored["arm"] == "no_treatment"].reset_index(drop=True)
    pd.testing.assert_frame_equal(arm, stored)
    assert arm["volume_ml"].iloc[-1] > arm["volume_ml"].iloc[0]       # untreated tumour grows


def test_no_identifiers_or_absolute_paths_in_hashed_outputs(demo_run):
    needles = [str(demo_run).encode(), str(REPO).encode(), b"ANONYMOUS"]
    for rel, data in tree_digests(demo_run / "out").items():
        if rel.endswith((".json", ".tsv", ".html", ".yaml")):
            assert not any(n in data for n in needles), rel


# ------------------------------------------------------------------------ determinism

def test_cores1_subset_run_is_byte_identical(demo_run, tmp_path):
    """A second run from scratch with --cores 1 on a sub-cohort gives byte-identical files
    for the patients it shares with the full --cores 2 run (patients are independent)."""
    keep = {"ONC002", "CAR001", "PREG002"}
    cohort.write_sheets(tmp_path / "demo")
    for name in ("patients.tsv", "imaging.tsv", "treatments.tsv", "pregnancies.tsv"):
        f = tmp_path / "demo" / name
        lines = f.read_text().splitlines(True)
        f.write_text("".join([lines[0]] + [x for x in lines[1:] if x.split("\t", 1)[0] in keep]))
    write_config(tmp_path)
    r = snakemake(tmp_path, "--cores", "1")
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    for pid in keep:
        a = tree_digests(demo_run / "out" / pid)
        b = tree_digests(tmp_path / "out" / pid)
        assert a.keys() == b.keys()
        diff = [k for k in a if a[k] != b[k]]
        assert diff == [], diff


# -------------------------------------------------------------------- incrementality

def test_nothing_to_do_on_rerun(demo_run):
    r = snakemake(demo_run, "-n")
    assert r.returncode == 0
    assert "Nothing to be done" in r.stdout + r.stderr


@contextlib.contextmanager
def edited_sheets(demo_run: Path, edit):
    """Edit the demo run's sheets in place (``edit(dict name -> lines)``), restore afterwards."""
    d = demo_run / "demo"
    saved = {n: (d / f"{n}.tsv").read_text() for n in ("patients", "imaging", "treatments")}
    sheets = {n: t.splitlines(True) for n, t in saved.items()}
    edit(sheets)
    try:
        for n, lines in sheets.items():
            (d / f"{n}.tsv").write_text("".join(lines))
        yield
    finally:
        for n, text in saved.items():
            (d / f"{n}.tsv").write_text(text)


def _dry(demo_run: Path, edit=lambda s: None, full: bool = False, **overrides):
    cfg = yaml.safe_load((demo_run / "config.yaml").read_text())
    cfg.update(overrides)
    alt = demo_run / "config_dry.yaml"
    alt.write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with edited_sheets(demo_run, edit):
        r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(demo_run),
                            "--configfile", str(alt), "--cores", "2", "-n"], cwd=demo_run, env=env,
                           capture_output=True, text=True)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return planned(r) if full else planned_jobs(r)


def test_rewriting_the_sheets_unchanged_reruns_no_patient(demo_run):
    jobs = _dry(demo_run)
    assert {j for j in jobs if j[1]} == set(), jobs


def test_new_patient_runs_only_its_jobs_and_the_cohort_summaries(demo_run):
    def add(s):
        for n in s:
            s[n] += [x.replace("ONC002", "NEW01", 1) for x in s[n][1:] if x.startswith("ONC002\t")]
    jobs = _dry(demo_run, add)
    patients = {p for _, p in jobs if p}
    assert patients == {"NEW01"}
    assert {r for r, p in jobs if p == "NEW01"} == PER_PATIENT_RULES
    assert {r for r, p in jobs if not p} <= COHORT_RULES
    assert "demo_cohort" not in {r for r, _ in jobs}


def test_moved_sheets_with_absolute_paths_rerun_only_the_new_patient(demo_run):
    """What triggers a re-run is what the data are, not how a row was spelled: the sheets
    copied to another folder with every file written as an absolute path, plus one new
    patient, plan that patient's jobs and the cohort-level ones only."""
    moved = demo_run / "elsewhere" / "sheets"
    moved.mkdir(parents=True, exist_ok=True)
    for name in ("patients", "imaging", "treatments", "pregnancies"):
        df = pd.read_csv(demo_run / "demo" / f"{name}.tsv", sep="\t", dtype=str, keep_default_na=False)
        for col in ("germline_vcf", "somatic_vcf", "labs", "path", "label_path"):
            if col in df:
                df[col] = [str((demo_run / "demo" / v).resolve()) if v else v for v in df[col]]
        new = df[df["patient_id"] == "ONC002"].assign(patient_id="NEW01")
        pd.concat([df, new]).to_csv(moved / f"{name}.tsv", sep="\t", index=False)
    jobs = _dry(demo_run, sheets={k: f"elsewhere/sheets/{k}.tsv" for k in ("patients", "imaging", "treatments", "pregnancies")})
    assert {p for _, p in jobs if p} == {"NEW01"}, sorted(jobs)
    assert {r for r, p in jobs if not p} <= COHORT_RULES


def test_new_visit_reruns_only_that_patient(demo_run):
    def add(s):
        v3 = [x for x in s["imaging"][1:] if x.startswith("ONC003\tV3\t")]
        s["imaging"] += [x.replace("\tV3\t", "\tV4\t").replace("2024-11-25", "2025-01-20") for x in v3]
    full = _dry(demo_run, add, full=True)
    jobs = {(rule, wc.get("patient", "")) for rule, wc in full}
    assert {p for _, p in jobs if p} == {"ONC003"}
    mine = {r for r, p in jobs if p == "ONC003"}
    assert {"ingest_image", "segment", "estimate", "simulate", "build_twin"} <= mine
    assert {wc["visit"] for rule, wc in full if rule == "ingest_image"} == {"V4"}   # old images are not re-ingested
    assert ("segment", "ONC003") in jobs


def test_changing_an_arm_reruns_simulation_not_calibration(demo_run):
    cfg = yaml.safe_load((demo_run / "config.yaml").read_text())
    models = cfg["models"]
    models["cardiac"]["simulate"]["arms"] = models["cardiac"]["simulate"]["arms"][:2] + [
        {"name": "metoprolol_25mg_bid", "dose_mg": 25, "interval_h": 12}]
    jobs = _dry(demo_run, models=models)
    assert {(r, p) for r, p in jobs if p} == {("simulate", "CAR001"), ("build_twin", "CAR001"), ("patient_report", "CAR001")}


def test_changing_one_module_reruns_only_the_rules_that_import_it(demo_run, tmp_path):
    """Edit twinflow/models/cardiac/arms.py in a copy of the pipeline: only the cardiac
    simulation and what consumes it re-run; no ingest, segmentation or calibration."""
    copy = tmp_path / "pipeline"
    copy.mkdir()
    for item in ("Snakefile", "rules", "scripts", "twinflow", "config", "envs", "report", "profiles"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, copy / item)
    arms = copy / "twinflow" / "models" / "cardiac" / "arms.py"
    arms.write_text(arms.read_text() + "\n# edited\n")
    r = snakemake(demo_run, "-n", snakefile=copy / "Snakefile")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    jobs = planned_jobs(r)
    assert {(x, p) for x, p in jobs if p} == {("simulate", "CAR001"), ("build_twin", "CAR001"), ("patient_report", "CAR001")}, jobs


# ---------------------------------------------------------------------- bad input

def test_bad_patients_fail_alone_with_one_clear_message(demo_run, tmp_path):
    """Missing file, malformed date, wrong genome build, unknown lab unit: each fails its own
    patient with a message naming patient, file and problem; the good patient finishes."""
    wd = tmp_path
    good = demo_run / "demo" / "data" / "ONC002" / "V1"
    (wd / "raw").mkdir()
    (wd / "raw" / "labs_bad.csv").write_text("date,code,value,unit\n2024-01-01,2160-0,1.0,furlongs\n")
    (wd / "raw" / "grch37.vcf").write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=1,length=249250621>\n##contig=<ID=2,length=243199373>\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n")
    pats = ("patient_id\ttwin_model\tsex\tage_years\theight_cm\tweight_kg\tgermline_vcf\tgermline_sample\tsomatic_vcf\tlabs\n"
            "GOOD\toncology\tF\t50\t165\t60\t\t\t\t\n"
            "MISSING\toncology\tF\t50\t165\t60\t\t\t\t\n"
            "BADDATE\toncology\tM\t60\t180\t80\t\t\t\t\n"
            "GRCH37\toncology\tM\t60\t180\t80\tgrch37.vcf\tS1\t\t\n"
            "BADUNIT\toncology\tF\t70\t160\t70\t\t\t\tlabs_bad.csv\n"
            "NANIMG\toncology\tF\t70\t160\t70\t\t\t\t\n")
    nib.save(nib.Nifti1Image(np.full((8, 8, 8), np.nan, np.float32), np.eye(4)), str(wd / "raw" / "nan.nii.gz"))
    img = ("patient_id\tvisit\tdate\tseries\tpath\tlabel_path\n"
           f"GOOD\tV1\t2024-01-01\tT1\t{good / 'T1.nrrd'}\t{good / 'label.nrrd'}\n"
           "MISSING\tV1\t2024-01-01\tT1\tnot_there.nii.gz\t\n"
           f"BADDATE\tV1\t2024-31-01\tT1\t{good / 'T1.nrrd'}\t\n"
           "NANIMG\tV1\t2024-01-01\tT1\tnan.nii.gz\t\n")
    (wd / "raw" / "patients.tsv").write_text(pats)
    (wd / "raw" / "imaging.tsv").write_text(img)
    (wd / "raw" / "treatments.tsv").write_text("patient_id\tdate\tkind\tagent\tdose\tunit\n")
    write_config(wd, sheets="raw", generate=False, twins=False)
    r = snakemake(wd, "--keep-going")
    assert r.returncode != 0
    err = r.stdout + r.stderr
    assert "patient MISSING: raw/not_there.nii.gz: " in err
    assert "patient BADDATE: raw/imaging.tsv: row 4: malformed date '2024-31-01'" in err
    assert "patient GRCH37: raw/grch37.vcf: " in err and "GRCh37" in err
    assert "patient BADUNIT: raw/labs_bad.csv: " in err and "furlongs" in err
    assert "patient NANIMG: raw/nan.nii.gz: the image holds no data: none of its 512 voxel values is finite" in err
    out = wd / "out"
    assert (out / "GOOD" / "ingest" / "qc.json").is_file()
    for bad in ("MISSING", "BADDATE", "GRCH37", "BADUNIT", "NANIMG"):
        assert not (out / bad / "ingest" / "qc.json").exists()
        leftovers = [f for f in (out / bad).rglob("*") if f.is_file() and f.name != "sheet.json"] \
            if (out / bad).exists() else []
        assert leftovers == [], leftovers           # sheet.json: the patient's rows, complete


def test_a_bad_value_in_a_row_fails_that_patient_and_the_cohort_qc_says_so(demo_run, tmp_path):
    """Value problems of one patient's rows (unknown model, impossible numbers, a negative dose,
    an unknown unit) fail that patient with one line each; the good patient finishes and the
    cohort QC lists every patient, the failed ones with their problem."""
    wd = tmp_path
    (wd / "raw").mkdir()
    t1 = demo_run / "demo" / "data" / "ONC002" / "V1" / "T1.nrrd"
    pats = {"GOOD": "oncology\tF\t50\t165\t60", "NOMODEL": "oncolgy\tF\t50\t165\t60",
            "NEGAGE": "oncology\tF\t-3\t165\t60", "TALL": "oncology\tM\t50\t1750\t80",
            "NEGDOSE": "oncology\tF\t50\t165\t60", "PERDAY": "oncology\tF\t50\t165\t60"}
    (wd / "raw" / "patients.tsv").write_text("patient_id\ttwin_model\tsex\tage_years\theight_cm\tweight_kg\n" +
                                           "".join(f"{p}\t{r}\n" for p, r in pats.items()))
    (wd / "raw" / "imaging.tsv").write_text("patient_id\tvisit\tdate\tseries\tpath\n" +
                                          "".join(f"{p}\tV1\t2024-01-01\tT1\t{t1}\n" for p in pats))
    (wd / "raw" / "treatments.tsv").write_text("patient_id\tdate\tkind\tagent\tdose\tunit\n"
                                             "NEGDOSE\t2024-01-02\tdrug\ttemozolomide\t-75\tmg/m2\n"
                                             "PERDAY\t2024-01-02\tdrug\ttemozolomide\t75\tmg/day\n")
    write_config(wd, sheets="raw", generate=False, twins=False)
    r = snakemake(wd, "--keep-going")
    assert r.returncode != 0
    err = r.stdout + r.stderr
    expected = {
        "NOMODEL": "patient NOMODEL: raw/patients.tsv: row 3, column twin_model: unknown twin model 'oncolgy' "
                   "(known: cardiac, oncology, pregnancy); did you mean 'oncology'?",
        "NEGAGE": "patient NEGAGE: raw/patients.tsv: row 4, column age_years: -3 is less than the minimum of 0",
        "TALL": "patient TALL: raw/patients.tsv: row 5, column height_cm: 1750 is greater than the maximum of 260",
        "NEGDOSE": "patient NEGDOSE: raw/treatments.tsv: row 2, column dose: -75 is less than or equal to the minimum of 0",
        "PERDAY": "patient PERDAY: raw/treatments.tsv: row 3, 'mg/day' is not one of",
    }
    for pid, msg in expected.items():
        assert msg in err, (pid, err[-3000:])
        assert not (wd / "out" / pid / "ingest" / "qc.json").exists()
    assert "Traceback" not in err
    assert (wd / "out" / "GOOD" / "ingest" / "qc.json").is_file()
    qc = pd.read_csv(wd / "out" / "cohort" / "ingest_qc.tsv", sep="\t").set_index("patient_id")
    assert qc.loc["GOOD", "status"] == "ok"
    for pid, msg in expected.items():
        assert qc.loc[pid, "status"] == "failed" and msg in qc.loc[pid, "problem"]


def test_images_that_cannot_support_the_model_stop_that_patients_twin(demo_run, tmp_path):
    """A 2D image and a blank (constant) image stop their patient's twin with a named reason;
    the good patient's twin is built beside them."""
    wd = tmp_path
    raw = wd / "raw"
    raw.mkdir()
    src = demo_run / "demo" / "data" / "ONC002"
    flat = np.zeros((64, 64, 1), np.float32)
    flat[20:30, 20:30, 0] = 100.0
    nib.save(nib.Nifti1Image(flat, np.eye(4)), str(raw / "flat.nii.gz"))
    nib.save(nib.Nifti1Image(np.zeros((32, 32, 16), np.float32), np.diag([2.0, 2.0, 2.0, 1.0])), str(raw / "blank.nii.gz"))
    pats = "".join(f"{p}\toncology\tF\t50\t165\t60\n" for p in ("GOOD", "FLAT", "BLANK"))
    (raw / "patients.tsv").write_text("patient_id\ttwin_model\tsex\tage_years\theight_cm\tweight_kg\n" + pats)
    rows = []
    for v, date in (("V1", "2024-01-01"), ("V2", "2024-02-12")):
        rows += [f"GOOD\t{v}\t{date}\t{s}\t{src / v / (s + '.nrrd')}\n" for s in ("T1post", "FLAIR", "brain_mask")]
        rows += [f"FLAT\t{v}\t{date}\tT1post\tflat.nii.gz\n", f"BLANK\t{v}\t{date}\tT1post\tblank.nii.gz\n"]
    (raw / "imaging.tsv").write_text("patient_id\tvisit\tdate\tseries\tpath\n" + "".join(rows))
    (raw / "treatments.tsv").write_text("patient_id\tdate\tkind\tagent\tdose\tunit\n")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["models"]
    cfg["oncology"]["simulate"] = {"horizon_days": 20, "arms": ["no_treatment"]}
    write_config(wd, sheets="raw", generate=False, models={"oncology": cfg["oncology"]})
    r = snakemake(wd, "--keep-going")
    assert r.returncode != 0
    err = r.stdout + r.stderr
    assert "patient FLAT: flat.nii.gz: is a 2D image (size 64x64x1): the oncology twin needs 3D images" in err, err[-3000:]
    assert "patient BLANK: blank.nii.gz: is empty (all 0): no contrast to segment a tumour from" in err
    assert "Traceback" not in err
    assert (wd / "out" / "GOOD" / "twin" / "twin.json").is_file()
    for bad in ("FLAT", "BLANK"):
        assert not (wd / "out" / bad / "twin").exists() and not (wd / "out" / bad / "segment").exists()


def test_an_empty_cohort_stops_with_a_message(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "patients.tsv").write_text("patient_id\ttwin_model\tsex\tage_years\theight_cm\tweight_kg\n")
    (tmp_path / "raw" / "imaging.tsv").write_text("patient_id\tvisit\tdate\tseries\tpath\n")
    (tmp_path / "raw" / "treatments.tsv").write_text("patient_id\tdate\tkind\tagent\tdose\tunit\n")
    write_config(tmp_path, sheets="raw", generate=False)
    r = snakemake(tmp_path, "-n")
    assert r.returncode != 0
    assert "raw/patients.tsv: no patients: the sheet has a header but no rows" in r.stderr
    assert 'File "' not in r.stdout + r.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.update(sheet=c.pop("sheets")), "sheet: unknown key; did you mean 'sheets'?"),
    (lambda c: c["models"]["oncology"]["simulate"].update(horizon_dayz=90),
     "models.oncology.simulate.horizon_dayz: unknown key; did you mean 'horizon_days'?"),
    (lambda c: c["models"].update(cardiak={}), "models.cardiak: unknown twin model; did you mean 'cardiac'?"),
    (lambda c: c["sheets"].update(pregnancie="p.tsv"), "sheets.pregnancie: no twin model reads a sheet of this name"),
])
def test_config_typos_are_refused_with_the_nearest_name(tmp_path, edit, message):
    """A user's config replaces the default one (it never falls back to the demo's sheets) and
    an unknown key anywhere, model sections included, stops the run with the key's path."""
    cfg_path = write_config(tmp_path)
    cfg = yaml.safe_load(cfg_path.read_text())
    edit(cfg)
    cfg_path.write_text(yaml.safe_dump(cfg))
    r = snakemake(tmp_path, "-n")
    assert r.returncode != 0
    assert message in r.stderr, r.stderr[-2000:]
    assert 'File "' not in r.stdout + r.stderr


@pytest.mark.parametrize("bad_id", ["../escape", "a b"])
def test_unsafe_id_stops_the_run_before_any_job(tmp_path, bad_id):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "patients.tsv").write_text(
        "patient_id\ttwin_model\tsex\tage_years\theight_cm\tweight_kg\n" f"{bad_id}\toncology\tF\t50\t165\t60\n")
    (tmp_path / "raw" / "imaging.tsv").write_text("patient_id\tvisit\tdate\tseries\tpath\n")
    (tmp_path / "raw" / "treatments.tsv").write_text("patient_id\tdate\tkind\tagent\tdose\tunit\n")
    write_config(tmp_path, sheets="raw", generate=False)
    r = snakemake(tmp_path, "-n")
    assert r.returncode != 0
    assert "patient_id" in r.stdout + r.stderr and "is not allowed" in r.stdout + r.stderr
    assert not (tmp_path / "out").exists()


def test_snakemake_html_report(demo_run):
    r = snakemake(demo_run, "--report", "out/pipeline_info/report.html")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    html = (demo_run / "out" / "pipeline_info" / "report.html").read_text(errors="replace")
    assert "Patients" in html and "Cohort" in html


def test_snakemake_lint_is_clean():
    """`snakemake --lint` in the checkout, as a reviewer runs it, finds nothing (the default
    config: every rule file, the hospital and trial rules included). It reads, never writes."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "snakemake", "--lint"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = r.stdout + r.stderr
    assert "Lints for" not in out, out[-4000:]
    assert r.returncode == 0, out[-4000:]
