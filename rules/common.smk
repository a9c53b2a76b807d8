# Sheets, validation and input functions. Logic lives in twinflow.sheets (unit-tested);
# this file only wires it into Snakemake.
import os
import sys

sys.path.insert(0, workflow.basedir)

from snakemake.utils import validate, min_version

from twinflow.errors import InputError
from twinflow.provenance import code_digest
from twinflow import sheets as tf_sheets

min_version("9.0")

validate(config, "../config/schemas/config.schema.yaml")

R = config["results"].rstrip("/")
LOGS = f"{R}/logs"
BENCH = f"{R}/benchmarks"

wildcard_constraints:
    patient="[A-Za-z0-9_-]+",
    visit="[A-Za-z0-9_-]+",
    series="[A-Za-z0-9_-]+",
    kind="germline|somatic",


def _load():
    sh = config["sheets"]
    try:
        cohort = tf_sheets.load_cohort(sh["patients"], sh["imaging"], sh["treatments"], workdir=os.getcwd())
    except InputError as exc:
        raise WorkflowError(str(exc)) from None
    for name, frame in cohort.frames.items():
        validate(frame, f"../config/schemas/{name}.schema.yaml", set_default=False)
    return cohort


COHORT = _load()
PATIENTS = COHORT.patient_ids

# Files that a rule of this workflow produces (the demo generator) count as present.
if config["demo"]["generate"]:
    from twinflow.demo import cohort as tf_demo

    DEMO_FILES = [os.path.normpath(p) for p in tf_demo.data_files(config["demo"]["outdir"])]
else:
    DEMO_FILES = []
_PRODUCED = set(DEMO_FILES)


def available(path):
    """A raw input as a Snakemake input if it exists (or a rule makes it); otherwise nothing,
    and the job's script reports the missing file for that patient alone."""
    if path and (path in _PRODUCED or os.path.exists(path)):
        return [path]
    return []


def patient(wc):
    return COHORT.patients[wc.patient]


def image_row(wc):
    return COHORT.image(wc.patient, wc.visit, wc.series)


def patient_ingest_outputs(pid):
    """Every ingest output of one patient (inputs of its QC summary)."""
    if pid in COHORT.invalid:
        return []
    p = COHORT.patients[pid]
    out = []
    for row in COHORT.images.get(pid, []):
        base = f"{R}/{pid}/ingest/imaging/{row.visit}/{row.series}"
        out += [f"{base}.nii.gz", f"{base}.qc.json", f"{base}.png"]
        if row.label_path:
            out += [f"{base}.label.nii.gz", f"{base}.label.qc.json"]
    if p.get("germline_vcf"):
        out += [f"{R}/{pid}/ingest/germline.tsv", f"{R}/{pid}/ingest/germline.qc.json"]
    if p.get("somatic_vcf"):
        out += [f"{R}/{pid}/ingest/somatic.tsv", f"{R}/{pid}/ingest/somatic.qc.json"]
    if p.get("labs"):
        out += [f"{R}/{pid}/ingest/labs.tsv", f"{R}/{pid}/ingest/labs.qc.json"]
    return out


def all_targets():
    return [f"{R}/{pid}/ingest/qc.json" for pid in PATIENTS] + [f"{R}/cohort/ingest_qc.tsv"]
