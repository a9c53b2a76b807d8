"""Scaling of the workflow layer: DAG building, no-op rerun and adding one patient, for a
large cohort, against a bare Snakemake workflow with the same jobs and the same DAG shape.

    python benchmarks/scale.py                      # 1000 patients
    python benchmarks/scale.py --patients 250
    python benchmarks/scale.py --profile            # + cProfile of the twinflow dry run
    python benchmarks/scale.py --out /tmp/scale --keep

Cohort: N patients cycling over the four demo patients (ONC001, ONC002, ONC003, CAR001) under
new ids P00001.., their sheet rows copied from ``twinflow.demo.cohort.sheets_text()`` with the
paths pointing at the demo data of the repository (``demo/data``, absolute paths, read only).
Config = config/config.yaml with ``demo.generate: false`` and the results in the temp folder.

Measured, for twinflow and for the bare workflow, each run in its own ``snakemake`` process
(wall time; peak RSS from ``/usr/bin/time -v`` or, without it, getrusage(RUSAGE_CHILDREN)),
``--repeat`` times (default 3) with the workflows in alternation, reporting the median: on a
shared 2-core VM one run of the same call varies by up to 30 %:

  dry run       ``snakemake -n`` with no outputs: full DAG build + job listing
  no-op -n      ``snakemake -n`` with every output present and up to date
  no-op run     ``snakemake --cores 1`` with every output present ("Nothing to be done")
  add 1 patient ``snakemake -n`` after appending one patient to the sheets

The "up to date" state is fabricated, not computed: the result tree of each demo patient in
the repository's results/ (names only, as empty files) is mirrored for four template patients
P00001..P00004, ``snakemake --touch --forceall`` marks them up to date (mtimes in DAG order,
directory outputs via .snakemake_timestamp) and writes Snakemake's metadata records; then the
tree, the mtimes and the metadata records are replicated to every other patient (ids
substituted; the param of twinflow's patient_sheet jobs, a digest of the patient's rows, is
computed for each patient with twinflow.sheets), and ``--touch --forcerun <cohort rules>`` records the cohort-level jobs at full
size. So the no-op rerun sees what it sees after a real run: every output, its mtime and its
metadata (params, input list, code, software stack) that Snakemake compares.

Nothing is written outside the temp folder (--out); the repository's results/ and demo/ are
only read.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import os
import platform
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from twinflow.demo import cohort as demo  # noqa: E402

DEMO_DATA = REPO / "demo" / "data"
DEMO_RESULTS = REPO / "results"
TEMPLATES = ("ONC001", "ONC002", "ONC003", "CAR001")
COHORT_RULES = ("cohort_qc", "cohort_summary", "cohort_index", "pipeline_info", "run_crate")
TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def pid_of(i: int) -> str:
    return f"P{i:05d}"


# ----------------------------------------------------------------------------- sheets

def demo_rows() -> dict[str, dict[str, list[dict]]]:
    """template id -> sheet -> rows (dicts), from the demo sheets with absolute data paths."""
    out: dict[str, dict[str, list[dict]]] = {t: {} for t in TEMPLATES}
    for name, text in demo.sheets_text(str(DEMO_DATA)).items():
        for row in csv.DictReader(io.StringIO(text), delimiter="\t"):
            if row["patient_id"] in out:           # the four templates (not the demo pregnancies)
                out[row["patient_id"]].setdefault(name, []).append(row)
    return out


def template_of(i: int) -> str:
    return TEMPLATES[(i - 1) % len(TEMPLATES)]


def write_twinflow_sheets(sheet_dir: Path, n: int, rows=None) -> None:
    rows = rows or demo_rows()
    sheet_dir.mkdir(parents=True, exist_ok=True)
    for name in ("patients.tsv", "imaging.tsv", "treatments.tsv"):
        cols = list(rows[TEMPLATES[0]][name][0])
        lines = ["\t".join(cols)]
        for i in range(1, n + 1):
            for r in rows[template_of(i)].get(name, []):
                lines.append("\t".join(pid_of(i) if c == "patient_id" else r[c] for c in cols))
        (sheet_dir / name).write_text("\n".join(lines) + "\n")


def bare_structure() -> dict[str, dict]:
    """Per template: what the bare workflow needs to reproduce twinflow's DAG shape."""
    from twinflow import sheets as tf_sheets
    from twinflow.layout import Layout
    from twinflow.models import registry
    from twinflow.models.base import PatientContext

    with tempfile.TemporaryDirectory() as d:
        write_twinflow_sheets(Path(d), len(TEMPLATES))
        c = tf_sheets.load_cohort(*(Path(d) / f"{k}.tsv" for k in ("patients", "imaging", "treatments")),
                                  workdir=d)
    out = {}
    for i, t in enumerate(TEMPLATES, 1):
        pid = pid_of(i)
        p = c.patients[pid]
        model = registry.get(p["twin_model"])
        ctx = PatientContext.from_record(c.record(pid), Layout("results"))
        out[t] = {
            "model": p["twin_model"],
            "germline": p.get("germline_vcf") or "", "somatic": p.get("somatic_vcf") or "",
            "labs": p.get("labs") or "", "segvisits": ",".join(model.segment_visits(ctx)),
            "chain": "1" if model.uses_previous_segmentation else "",
            "visits": ",".join(v for v, _ in ctx.visits()),
            "images": [(r.visit, r.series, r.path, r.label_path or "") for r in c.images.get(pid, [])],
        }
    return out


def write_bare_sheets(sheet_dir: Path, n: int, struct: dict) -> None:
    sheet_dir.mkdir(parents=True, exist_ok=True)
    pl = ["patient\tmodel\tgermline\tsomatic\tlabs\tsegvisits\tchain\tvisits"]
    il = ["patient\tvisit\tseries\tpath\tlabel"]
    for i in range(1, n + 1):
        s = struct[template_of(i)]
        pl.append("\t".join([pid_of(i), s["model"], s["germline"], s["somatic"], s["labs"], s["segvisits"],
                             s["chain"], s["visits"]]))
        il += ["\t".join((pid_of(i),) + img) for img in s["images"]]
    (sheet_dir / "patients.tsv").write_text("\n".join(pl) + "\n")
    (sheet_dir / "images.tsv").write_text("\n".join(il) + "\n")


BARE_SNAKEFILE = r'''
# Bare Snakemake baseline: one trivial rule per twinflow rule, the same jobs, the same
# output paths and the same fan-in; two small sheets read once with pandas; shell: touch.
import pandas as pd

R = "results"
_p = pd.read_csv("sheets/patients.tsv", sep="\t", dtype=str, keep_default_na=False)
_i = pd.read_csv("sheets/images.tsv", sep="\t", dtype=str, keep_default_na=False)
PAT = {r["patient"]: r for r in _p.to_dict("records")}
PATIENTS = sorted(PAT)
IMG, ROW = {}, {}
for r in _i.to_dict("records"):
    IMG.setdefault(r["patient"], []).append(r)
    ROW[(r["patient"], r["visit"], r["series"])] = r
SEGV = {p: [v for v in r["segvisits"].split(",") if v] for p, r in PAT.items()}
VISITS = {p: [v for v in r["visits"].split(",") if v] for p, r in PAT.items()}
MODELS = sorted({r["model"] for r in PAT.values()})

wildcard_constraints:
    patient="[A-Za-z0-9_-]+",
    visit="[A-Za-z0-9_-]+",
    series="[A-Za-z0-9_-]+",
    kind="germline|somatic",
    model="[A-Za-z0-9_-]+",


def ingest_outputs(wc):
    pid, p, out = wc.patient, PAT[wc.patient], []
    for r in IMG.get(pid, []):
        b = f"{R}/{pid}/ingest/imaging/{r['visit']}/{r['series']}"
        out += [f"{b}.nii.gz", f"{b}.qc.json", f"{b}.png"]
        if r["label"]:
            out += [f"{b}.label.nii.gz", f"{b}.label.qc.json"]
    for k in ("germline", "somatic", "labs"):
        if p[k]:
            out += [f"{R}/{pid}/ingest/{k}.tsv", f"{R}/{pid}/ingest/{k}.qc.json"]
    return out


def visit_images(pid, visit):
    out = []
    for r in IMG.get(pid, []):
        if r["visit"] == visit:
            b = f"{R}/{pid}/ingest/imaging/{visit}/{r['series']}"
            out.append(f"{b}.nii.gz")
            if r["label"]:
                out.append(f"{b}.label.nii.gz")
    return out


def seg_inputs(wc):
    out = visit_images(wc.patient, wc.visit) + [f"{R}/{wc.patient}/sheet.json"]
    v = SEGV[wc.patient]
    i = v.index(wc.visit)
    if PAT[wc.patient]["chain"] and i > 0:
        out.append(f"{R}/{wc.patient}/segment/{v[i - 1]}")
    return out


def pgx_inputs(wc):
    p = PAT[wc.patient]
    return [f"{R}/{wc.patient}/sheet.json", f"{R}/{wc.patient}/ingest/qc.json"] + [
        f"{R}/{wc.patient}/ingest/{k}.tsv" for k in ("germline", "somatic", "labs") if p[k]]


def estimate_inputs(wc):
    pid = wc.patient
    out = [f"{R}/{pid}/segment/{v}" for v in SEGV[pid]]
    out += [f for v in VISITS[pid] for f in visit_images(pid, v)]
    out += [f"{R}/{pid}/pgx/record.json", f"{R}/{pid}/sheet.json"]
    if PAT[pid]["labs"]:
        out.append(f"{R}/{pid}/ingest/labs.tsv")
    return sorted(set(out))


def twin_inputs(wc):
    pid = wc.patient
    out = [f"{R}/{pid}/{x}" for x in ("sheet.json", "estimate", "simulate", "pgx/record.json", "ingest/qc.json")]
    return out + [f"{R}/{pid}/segment/{v}" for v in SEGV[pid]]


rule all:
    input:
        [f"{R}/{p}/ingest/qc.json" for p in PATIENTS],
        f"{R}/cohort/ingest_qc.tsv",
        [f"{R}/{p}/{f}" for p in PATIENTS for f in ("twin/twin.json", "report.html")],
        f"{R}/cohort/summary.tsv", f"{R}/cohort/index.html", f"{R}/ro-crate-metadata.json",
        [f"{R}/pipeline_info/{f}" for f in ("software_versions.yaml", "config.yaml", "sheets.tsv")],
    default_target: True



rule patient_sheet:
    output:
        f"{R}/{{patient}}/sheet.json",
    shell:
        "touch {output}"


rule ingest_image:
    input:
        lambda wc: ROW[(wc.patient, wc.visit, wc.series)]["path"],
    output:
        nifti=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.nii.gz",
        qc=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.qc.json",
        png=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.png",
    shell:
        "touch {output}"


rule ingest_label:
    input:
        label=lambda wc: ROW[(wc.patient, wc.visit, wc.series)]["label"],
        image=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.nii.gz",
    output:
        f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.label.nii.gz",
        f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.label.qc.json",
    shell:
        "touch {output}"


rule ingest_variants:
    input:
        lambda wc: PAT[wc.patient][wc.kind],
    output:
        f"{R}/{{patient}}/ingest/{{kind}}.tsv",
        f"{R}/{{patient}}/ingest/{{kind}}.qc.json",
    shell:
        "touch {output}"


rule ingest_labs:
    input:
        lambda wc: PAT[wc.patient]["labs"],
    output:
        f"{R}/{{patient}}/ingest/labs.tsv",
        f"{R}/{{patient}}/ingest/labs.qc.json",
    shell:
        "touch {output}"


rule patient_qc:
    input:
        f"{R}/{{patient}}/sheet.json",
        ingest_outputs,
    output:
        f"{R}/{{patient}}/ingest/qc.json",
    shell:
        "touch {output}"


rule cohort_qc:
    input:
        expand(f"{R}/{{patient}}/ingest/qc.json", patient=PATIENTS),
    output:
        f"{R}/cohort/ingest_qc.tsv",
    shell:
        "touch {output}"


rule segment:
    input:
        seg_inputs,
    output:
        directory(f"{R}/{{patient}}/segment/{{visit}}"),
    shell:
        "mkdir -p {output}"


rule pgx_record:
    input:
        pgx_inputs,
    output:
        f"{R}/{{patient}}/pgx/record.json",
        f"{R}/{{patient}}/pgx/record.tsv",
    shell:
        "touch {output}"


rule estimate:
    input:
        estimate_inputs,
    output:
        directory(f"{R}/{{patient}}/estimate"),
    shell:
        "mkdir -p {output}"


rule simulate:
    input:
        f"{R}/{{patient}}/sheet.json",
        f"{R}/{{patient}}/estimate",
        f"{R}/{{patient}}/pgx/record.json",
    output:
        directory(f"{R}/{{patient}}/simulate"),
    shell:
        "mkdir -p {output}"


rule build_twin:
    input:
        twin_inputs,
    output:
        f"{R}/{{patient}}/twin/twin.json",
    shell:
        "touch {output}"


rule patient_report:
    input:
        f"{R}/{{patient}}/twin/twin.json",
        f"{R}/{{patient}}/ingest/qc.json",
    output:
        f"{R}/{{patient}}/report.html",
    shell:
        "touch {output}"


rule cohort_summary:
    input:
        expand(f"{R}/{{patient}}/twin/twin.json", patient=PATIENTS),
    output:
        f"{R}/cohort/summary.tsv",
        expand(f"{R}/cohort/summary/{{model}}.tsv", model=MODELS),
    shell:
        "touch {output}"


rule cohort_index:
    input:
        f"{R}/cohort/summary.tsv",
        expand(f"{R}/cohort/summary/{{model}}.tsv", model=MODELS),
        expand(f"{R}/{{patient}}/report.html", patient=PATIENTS),
    output:
        f"{R}/cohort/index.html",
    shell:
        "touch {output}"


rule pipeline_info:
    input:
        "sheets/patients.tsv",
        "sheets/images.tsv",
    output:
        f"{R}/pipeline_info/software_versions.yaml",
        f"{R}/pipeline_info/config.yaml",
        f"{R}/pipeline_info/sheets.tsv",
    shell:
        "touch {output}"


rule run_crate:
    input:
        expand(f"{R}/{{patient}}/twin/twin.json", patient=PATIENTS),
        f"{R}/cohort/summary.tsv",
        rules.pipeline_info.output,
    output:
        f"{R}/ro-crate-metadata.json",
    shell:
        "touch {output}"
'''


# ----------------------------------------------------------------------------- workflows

def with_directives(text: str) -> str:
    """The bare Snakefile with, on every rule but ``all``, the directives every per-patient
    twinflow rule has: ``log:`` and ``benchmark:`` (paths made from the rule's first output),
    two callable ``params`` (the patient's sheet row, precomputed, and a code digest),
    ``conda:`` and ``script:`` instead of ``shell:``.  Measured beside bare and twinflow, it
    splits the gap into what these Snakemake directives cost per job and what twinflow's own
    code (sheets, validation, input functions) costs."""
    out, pos = [], 0
    rule_re = re.compile(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", re.S | re.M)
    for m in rule_re.finditer(text):
        name, body = m.group(1), m.group(2)
        out.append(text[pos:m.start()])
        pos = m.end()
        first = re.search(r'output:\n\s+(?:\w+=)?(?:directory\()?f"([^"]+)"', body)
        if name == "all" or not first:
            out.append(m.group(0))
            continue
        stem = first.group(1).replace("{R}/", "", 1)
        extra = (f'    log:\n        f"{{R}}/logs/{name}/{stem}.log",\n'
                 f'    benchmark:\n        f"{{R}}/benchmarks/{name}/{stem}.tsv"\n'
                 '    params:\n        config=lambda wc: PAT.get(wc.get("patient")),\n'
                 '        code=lambda wc: CODE,\n'
                 '    conda:\n        "env.yaml"\n')
        body = re.sub(r"    shell:\n.*", extra + '    script:\n        "touch_outputs.py"\n\n\n', body, count=1, flags=re.S)
        out.append(f"rule {name}:\n" + body)
    out.append(text[pos:])
    return "".join(out).replace("\nPAT = ", '\nCODE = "0123456789abcdef"  # a code digest param\nPAT = ', 1)



class Flow:
    """One workflow (twinflow or bare) in one folder, with its sheet writer."""

    def __init__(self, kind: str, wd: Path, rows, struct):
        self.kind, self.wd, self.rows, self.struct = kind, wd, rows, struct
        wd.mkdir(parents=True, exist_ok=True)
        if kind == "twinflow":
            self.snakefile = REPO / "Snakefile"
            cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
            cfg["sheets"] = {k: f"sheets/{k}.tsv" for k in ("patients", "imaging", "treatments")}
            cfg["results"] = "results"
            cfg["demo"] = {"generate": False, "outdir": str(DEMO_DATA)}
            for site_level in ("hospital", "trials"):      # the patient-twin DAG only
                cfg.pop(site_level, None)
            (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
            self.extra = ["--configfile", str(wd / "config.yaml")]
        else:
            self.snakefile = wd / "Snakefile"
            text = BARE_SNAKEFILE
            if kind == "bare+directives":
                text = with_directives(text)
                (wd / "env.yaml").write_text("channels: [conda-forge]\ndependencies: [python=3.11]\n")
                (wd / "touch_outputs.py").write_text("from pathlib import Path\n"
                                                     "for f in snakemake.output:\n    Path(f).touch()\n")
            self.snakefile.write_text(text)
            self.extra = []

    def write_sheets(self, n: int) -> None:
        if self.kind == "twinflow":
            write_twinflow_sheets(self.wd / "sheets", n, self.rows)
        else:
            write_bare_sheets(self.wd / "sheets", n, self.struct)

    def cmd(self, *args: str, python: list[str] | None = None) -> list[str]:
        return [*(python or [sys.executable, "-m", "snakemake"]), "-s", str(self.snakefile), "-d", str(self.wd),
                *self.extra, "--cores", "1", *args]


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                PYTHONDONTWRITEBYTECODE="1")


def run(cmd: list[str], cwd: Path, log: Path, check: bool = True) -> dict:
    """Run one snakemake process; wall time, peak RSS (MiB), output."""
    tf = log.with_suffix(".time")
    full = [TIME, "-v", "-o", str(tf), *cmd] if TIME else cmd
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        r = subprocess.run(full, cwd=cwd, env=env(), stdout=fh, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    out = log.read_text()
    if TIME:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", tf.read_text())
        rss = int(m.group(1)) / 1024 if m else float("nan")
    else:  # max over all children so far: exact only if this child is the largest yet
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        rss = after / 1024 if after > before else float("nan")
    if check and r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{out[-4000:]}")
    return {"wall": wall, "rss": rss, "out": out, "rc": r.returncode}


def job_stats(out: str) -> dict[str, int]:
    """Per-rule job counts from a dry run's 'Job stats' table ({} when nothing to do)."""
    m = re.search(r"Job stats:\n(.*?)\n\n", out, re.S)
    stats = {}
    if m:
        for line in m.group(1).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                stats[parts[0]] = int(parts[1])
    return stats


NOTHING = "Nothing to be done"


# ----------------------------------------------------------------------------- up-to-date state

def mirror_tree(src: Path, dst: Path, mtimes_from: Path | None = None) -> None:
    """Mirror a result tree as empty files (names only); with mtimes_from, copy mtimes from the
    corresponding paths there (deepest first, so directory mtimes survive)."""
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for f in files:
            (dst / rel / f).touch()
    if mtimes_from is not None:
        for root, dirs, files in os.walk(dst, topdown=False):
            rel = Path(root).relative_to(dst)
            for name in files + dirs:
                s = mtimes_from / rel / name
                if s.exists():
                    st = s.stat()
                    os.utime(dst / rel / name, ns=(st.st_atime_ns, st.st_mtime_ns))


def key_path(key: str) -> str:
    return base64.urlsafe_b64decode(key.encode()).decode()


def path_key(path: str) -> str:
    return base64.urlsafe_b64encode(path.encode()).decode()


def make_up_to_date(flow: Flow, n: int, logdir: Path) -> None:
    """Fabricate the state after a complete run of n patients (see the module docstring)."""
    tmpl = flow.wd.parent / f"{flow.kind}_template"
    tflow = Flow(flow.kind, tmpl, flow.rows, flow.struct)
    tflow.write_sheets(len(TEMPLATES))
    old = time.time() - 3600
    for s in (tmpl / "sheets").iterdir():
        os.utime(s, (old, old))
    for i, t in enumerate(TEMPLATES, 1):
        mirror_tree(DEMO_RESULTS / t, tmpl / "results" / pid_of(i))
    for d in ("cohort", "pipeline_info"):
        mirror_tree(DEMO_RESULTS / d, tmpl / "results" / d)
    (tmpl / "results" / "ro-crate-metadata.json").touch()
    r = run(tflow.cmd("--touch", "--forceall"), tmpl, logdir / f"{flow.kind}_template_touch.log")
    assert "Output files not touched" not in r["out"], r["out"][-3000:]
    r = run(tflow.cmd("-n"), tmpl, logdir / f"{flow.kind}_template_noop.log")
    assert NOTHING in r["out"], f"template not up to date:\n{r['out'][-3000:]}"

    # replicate tree + mtimes + metadata records to all n patients
    flow.write_sheets(n)
    for s in (flow.wd / "sheets").iterdir():
        os.utime(s, (old, old))
    for i in range(1, n + 1):
        t = pid_of((i - 1) % len(TEMPLATES) + 1)
        mirror_tree(tmpl / "results" / t, flow.wd / "results" / pid_of(i), mtimes_from=tmpl / "results" / t)
    for d in ("cohort", "pipeline_info"):
        mirror_tree(tmpl / "results" / d, flow.wd / "results" / d, mtimes_from=tmpl / "results" / d)
    shutil.copy2(tmpl / "results" / "ro-crate-metadata.json", flow.wd / "results" / "ro-crate-metadata.json")
    src_meta, dst_meta = tmpl / ".snakemake" / "metadata", flow.wd / ".snakemake" / "metadata"
    dst_meta.mkdir(parents=True, exist_ok=True)
    pat = re.compile(r"^results/(P\d{5})/")
    # a param that carries a sheet row number ("'row': k") would differ per patient: shift it
    # to where patient i's rows are in the n-patient sheet (twinflow's params no longer carry
    # row numbers, so this is a no-op for it; kept for workflows that do)
    ntrt = {t: len(flow.rows[t].get("treatments.tsv", [])) for t in TEMPLATES}
    start_tmpl = {pid_of(k): 2 + sum(ntrt[TEMPLATES[j]] for j in range(k - 1)) for k in range(1, 5)}
    start, acc = {}, 2
    for i in range(1, n + 1):
        start[i] = acc
        acc += ntrt[template_of(i)]
    row_re = re.compile(r"'row': (\d+)")
    digests = sheet_digests(flow) if flow.kind == "twinflow" else {}
    for rec in src_meta.iterdir():
        path = key_path(rec.name)
        m = pat.match(path)
        text = rec.read_text()
        if not m:
            continue        # cohort-level records are re-made at full size below
        t = m.group(1)
        for i in range(int(t[1:]), n + 1, len(TEMPLATES)):
            new, off = pid_of(i), start[i] - start_tmpl[t]
            out = text.replace(t, new)
            if off:
                out = row_re.sub(lambda m: f"'row': {int(m.group(1)) + off}", out)
            dst = path.replace(t, new)
            if dst in digests:      # patient_sheet's param is a digest of the patient's rows, not substitutable text
                d = json.loads(out)
                d["params"] = [repr(digests[dst])]
                out = json.dumps(d)
            (dst_meta / path_key(dst)).write_text(out)
    # cohort-level jobs: touch (and record) them at full size
    r = run(flow.cmd("--touch", "--forcerun", *COHORT_RULES), flow.wd, logdir / f"{flow.kind}_cohort_touch.log")
    stats = job_stats(r["out"])
    extra = set(stats) - set(COHORT_RULES) - {"all", "total"}
    assert not extra, f"cohort touch also ran {extra}:\n{r['out'][-3000:]}"
    shutil.rmtree(tmpl)


def sheet_digests(flow: "Flow") -> dict[str, str]:
    """results/<patient>/sheet.json -> the param of its patient_sheet job (twinflow.sheets.Cohort.digest)."""
    from twinflow import sheets as tf_sheets

    c = tf_sheets.load_cohort(*(flow.wd / "sheets" / f"{k}.tsv" for k in ("patients", "imaging", "treatments")),
                              workdir=flow.wd)
    return {f"results/{pid}/sheet.json": c.digest(pid) for pid in c.patient_ids}


# ----------------------------------------------------------------------------- benchmark

def measure(flows: list["Flow"], key: str, args: tuple[str, ...], repeat: int, logdir: Path,
            res: dict, nothing: bool = False) -> None:
    """Run the same snakemake call ``repeat`` times for every flow, the flows in alternation (so a
    noisy neighbour on the machine hits all of them alike); keep the median wall time, every
    wall time, the largest peak RSS and the last output."""
    for i in range(repeat):
        for flow in flows:
            r = run(flow.cmd(*args), flow.wd, logdir / f"{flow.kind}_{key}_{i + 1}.log")
            if nothing:
                assert NOTHING in r["out"], f"{flow.kind} {key}: not a no-op:\n{r['out'][-5000:]}"
            m = res[flow.kind].setdefault(key, {"walls": [], "rss": 0.0})
            m["walls"].append(r["wall"])
            m["rss"] = max(m["rss"], r["rss"])
            m["out"] = r["out"]
    for flow in flows:
        m = res[flow.kind][key]
        m["wall"] = statistics.median(m["walls"])
        print(f"  {flow.kind}: {key} {' '.join(f'{w:.1f}' for w in m['walls'])} s", flush=True)


def bench(flows: list["Flow"], n: int, logdir: Path, repeat: int) -> dict:
    res: dict = {flow.kind: {} for flow in flows}
    for flow in flows:
        flow.write_sheets(n)
    measure(flows, "dry", ("-n",), repeat, logdir, res)
    for flow in flows:
        res[flow.kind]["jobs"] = job_stats(res[flow.kind]["dry"]["out"])
        print(f"  {flow.kind}: {res[flow.kind]['jobs'].get('total')} jobs", flush=True)
        t0 = time.perf_counter()
        make_up_to_date(flow, n, logdir)
        res[flow.kind]["fabricate_s"] = time.perf_counter() - t0
    measure(flows, "noop_dry", ("-n",), repeat, logdir, res, nothing=True)
    measure(flows, "noop_run", (), repeat, logdir, res, nothing=True)
    for flow in flows:
        flow.write_sheets(n + 1)
    measure(flows, "add1", ("-n",), repeat, logdir, res)
    for flow in flows:
        res[flow.kind]["add1_jobs"] = job_stats(res[flow.kind]["add1"]["out"])
        flow.write_sheets(n)
    return res


def per_patient_jobs(stats: dict[str, int]) -> int:
    return sum(v for k, v in stats.items() if k not in COHORT_RULES + ("all", "total"))


def profile(flow: Flow, n: int, logdir: Path, top: int = 25) -> str:
    """cProfile of the twinflow dry run (no outputs); functions of rules/*.smk and twinflow/."""
    import shutil as _sh

    flow.write_sheets(n)
    keep = flow.wd / "results.keep"
    if (flow.wd / "results").exists():
        (flow.wd / "results").rename(keep)
    meta = flow.wd / ".snakemake"
    if meta.exists():
        meta.rename(flow.wd / ".snakemake.keep")
    prof = logdir / "twinflow_dryrun.prof"
    r = run(flow.cmd("-n", python=[sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "snakemake"]),
            flow.wd, logdir / "twinflow_dryrun_profile.log")
    st = pstats.Stats(str(prof))
    total = st.total_tt
    ours = []
    for (fn, line, name), (cc, nc, tt, ct, callers) in st.stats.items():
        if fn.startswith(str(REPO / "twinflow")) or fn.startswith(str(REPO / "rules")) or fn == str(REPO / "Snakefile"):
            ours.append((ct, nc, tt, f"{Path(fn).relative_to(REPO)}:{line}({name})"))
    ours.sort(reverse=True)
    lines = [f"cProfile of the twinflow dry run, {n} patients: {r['wall']:.1f} s wall under the profiler, "
             f"{total:.1f} s profiled; top {top} functions of rules/*.smk, twinflow/ by cumulative time:", "",
             "| cumulative s | own s | calls | calls / patient | function |", "|---:|---:|---:|---:|---|"]
    for ct, nc, tt, name in ours[:top]:
        lines.append(f"| {ct:.2f} | {tt:.2f} | {nc} | {nc / n:.2f} | `{name}` |")
    # where Snakemake itself spends it (top-level phases)
    buf = io.StringIO()
    pstats.Stats(str(prof), stream=buf).sort_stats("cumulative").print_stats(40)
    (logdir / "twinflow_dryrun_profile_top40.txt").write_text(buf.getvalue())
    if keep.exists():
        _sh.rmtree(flow.wd / "results", ignore_errors=True)
        keep.rename(flow.wd / "results")
    if (flow.wd / ".snakemake.keep").exists():
        _sh.rmtree(meta, ignore_errors=True)
        (flow.wd / ".snakemake.keep").rename(meta)
    return "\n".join(lines)


def machine() -> str:
    import snakemake

    la = os.getloadavg()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    return (f"{os.cpu_count()} cores ({cpu}), load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}, "
            f"Python {platform.python_version()}, Snakemake {snakemake.__version__}, {platform.platform()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a new temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--repeat", type=int, default=3,
                    help="measure each step this many times per workflow, in alternation; report the median")
    ap.add_argument("--profile", action="store_true", help="also profile the twinflow dry run (cProfile)")
    ap.add_argument("--directives-baseline", action="store_true",
                    help="also measure the bare workflow with log:, benchmark:, two callable params, "
                         "conda: and script: on every rule, as twinflow's per-patient rules have")
    a = ap.parse_args()
    n = a.patients
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="twinflow-scale-", dir=a.out))
    logdir = base / "logs"
    logdir.mkdir()
    for p in (DEMO_RESULTS, DEMO_DATA):
        if not p.is_dir():
            sys.exit(f"{p} missing: run the demo first (snakemake --cores 2 in the repository)")
    before = machine()
    print(f"# {n} patients in {base}\nat start: {before}", flush=True)
    rows, struct = demo_rows(), bare_structure()
    t0 = time.perf_counter()
    kinds = ("twinflow", "bare") + (("bare+directives",) if a.directives_baseline else ())
    results = bench([Flow(kind, base / kind, rows, struct) for kind in kinds], n, logdir, a.repeat)
    elapsed = time.perf_counter() - t0
    after = machine()
    tf, bare = results["twinflow"], results["bare"]
    if tf["jobs"] != bare["jobs"]:
        print(f"WARNING: job counts differ: twinflow {tf['jobs']} bare {bare['jobs']}")

    def spread(m):
        return f"{m['wall']:.2f} s ({min(m['walls']):.1f}-{max(m['walls']):.1f})"

    def row(label, key):
        a_, b_ = tf[key]["wall"], bare[key]["wall"]
        return f"| {label} | {spread(tf[key])} | {spread(bare[key])} | {a_ / b_:.2f} |"

    def rss(key):
        return f"| peak RSS, {key} | {tf[key]['rss']:.0f} MiB | {bare[key]['rss']:.0f} MiB | " \
               f"{tf[key]['rss'] / bare[key]['rss']:.2f} |"

    ppj = per_patient_jobs(tf["jobs"]) / n
    print(f"\n## {n} patients\n")
    print(f"Wall time: median of {a.repeat} runs (range); the ratio is of the medians.\n")
    print("| metric | twinflow | bare | ratio |\n|---|---:|---:|---:|")
    print(row("dry run, no outputs (`-n`)", "dry"))
    print(row("no-op rerun, dry (`-n`)", "noop_dry"))
    print(row("no-op rerun, real (`--cores 1`)", "noop_run"))
    print(row("add one patient (`-n`)", "add1"))
    for k in ("dry", "noop_dry", "noop_run", "add1"):
        print(rss(k))
    if "bare+directives" in results:
        bd = results["bare+directives"]
        print("\nThe bare workflow with twinflow's per-rule directives (log, benchmark, two callable params, conda, script), "
              "same run:\n")
        print("| metric | twinflow | bare + directives | ratio | bare | directives / bare |\n"
              "|---|---:|---:|---:|---:|---:|")
        for label, key in (("dry run", "dry"), ("no-op -n", "noop_dry"), ("no-op run", "noop_run"),
                           ("add one patient", "add1")):
            print(f"| {label} | {tf[key]['wall']:.2f} s | {bd[key]['wall']:.2f} s | "
                  f"{tf[key]['wall'] / bd[key]['wall']:.2f} | {bare[key]['wall']:.2f} s | "
                  f"{bd[key]['wall'] / bare[key]['wall']:.2f} |")
        print(f"| peak RSS, dry | {tf['dry']['rss']:.0f} MiB | {bd['dry']['rss']:.0f} MiB | "
              f"{tf['dry']['rss'] / bd['dry']['rss']:.2f} | {bare['dry']['rss']:.0f} MiB | "
              f"{bd['dry']['rss'] / bare['dry']['rss']:.2f} |")
        if bd["jobs"] != bare["jobs"]:
            print(f"WARNING: bare+directives planned {bd['jobs']}")
        print()
    print(f"| jobs planned, dry run | {tf['jobs'].get('total')} | {bare['jobs'].get('total')} | |")
    print(f"| jobs planned, add one patient | {tf['add1_jobs'].get('total')} | "
          f"{bare['add1_jobs'].get('total')} | |")
    print()
    print(f"Per-rule jobs (dry run): {', '.join(f'{k} {v}' for k, v in tf['jobs'].items() if k != 'total')}")
    print(f"Per-patient jobs: {ppj:.2f} on average; the added patient ({template_of(n + 1)} copy): "
          f"{per_patient_jobs(tf['add1_jobs'])} per-patient jobs + "
          f"{sum(v for k, v in tf['add1_jobs'].items() if k in COHORT_RULES + ('all',))} cohort-level "
          f"({', '.join(k for k in tf['add1_jobs'] if k in COHORT_RULES + ('all',))})")
    print(f"Fabricating the up-to-date state (not timed above): twinflow {tf['fabricate_s']:.0f} s, "
          f"bare {bare['fabricate_s']:.0f} s")
    print(f"\nMachine at start: {before}")
    print(f"Machine after the {elapsed:.0f} s of measurements: {after}")
    print(f"Peak RSS via {'/usr/bin/time -v' if TIME else 'getrusage(RUSAGE_CHILDREN)'}; wall via perf_counter "
          "around each snakemake process (includes interpreter start-up and imports).")
    if a.profile:
        print()
        print(profile(Flow("twinflow", base / "twinflow", rows, struct), n, logdir))
    print(f"\nlogs: {logdir}" if a.keep else "")
    if not a.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
