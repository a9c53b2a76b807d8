# Configuration and sheet checks, the results layout and the input functions. The logic lives
# in twinflow (twinflow.workflow, twinflow.sheets, twinflow.config, twinflow.layout; unit-tested);
# this file only wires it into Snakemake.
import os
import sys

from snakemake.utils import min_version

sys.path.insert(0, workflow.basedir)  # this checkout's twinflow, also where another one is installed

from twinflow import workflow as tf_workflow
from twinflow.errors import InputError
from twinflow.layout import Layout
from twinflow.provenance import code_digest, data_digest

min_version("9.0")

# A problem of the configuration or of a sheet as a whole stops the run here, with its message
# alone; a problem of one patient's rows fails that patient's jobs only (config/README.md).
SCHEMAS = os.path.join(workflow.basedir, "config", "schemas")
try:
    _checked, COHORT = tf_workflow.load(config, schema_dir=SCHEMAS, workdir=os.getcwd())
except InputError as exc:
    print(f"twinflow: {exc}", file=sys.stderr)
    sys.exit(1)
config.update(_checked)

L = Layout(config["results"])
PATIENTS = COHORT.patient_ids
VALID_PATIENTS = COHORT.valid_ids

# Files that a rule of this workflow produces (the demo generator) count as present.
if config["demo"]["generate"]:
    from twinflow.demo import cohort as tf_demo

    DEMO_FILES = tf_demo.data_files(config["demo"]["outdir"])
else:
    DEMO_FILES = []

PLAN = tf_workflow.Plan(COHORT, L, config, produced=DEMO_FILES)
MODELS_USED = PLAN.models_used()


wildcard_constraints:
    patient="[A-Za-z0-9_-]+",
    visit="[A-Za-z0-9_-]+",
    series="[A-Za-z0-9_-]+",
    kind="germline|somatic",
    model="[A-Za-z0-9_-]+",


# Cohort-level bookkeeping runs on the submit host, never as a cluster job.
localrules:
    all,
    patient_sheet,
    cohort_qc,
    cohort_summary,
    cohort_index,
    pipeline_info,
    run_crate,


def all_targets():
    twins = config["twins"]
    out = [f for pid in PATIENTS for f in PLAN.patient_targets(pid, twins=twins)]
    out.append(L.cohort("ingest_qc.tsv"))
    if twins and VALID_PATIENTS:
        out += [L.cohort("summary.tsv"), L.cohort("index.html"), f"{L.root}/ro-crate-metadata.json"]
    out += [L.pipeline_info(f) for f in ("software_versions.yaml", "config.yaml", "sheets.tsv")]
    return out


# ------------------------------------------------------------------ params of per-patient jobs
# A per-patient stage job re-runs when what it reads changes: the patient's rows (its
# sheet.json input), its model's config section for the stage (param `config`) and the code
# the stage runs (param `code`, a digest of the modules it imports).


def stage_config(stage):
    return lambda wildcards: PLAN.stage_config(wildcards.patient, stage)


def stage_code(stage):
    return lambda wildcards: PLAN.stage_code(wildcards.patient, stage)


onstart:
    from twinflow.twin.runinfo import write_run_log

    write_run_log(L.pipeline_info("run_log.jsonl"), sys.argv[1:], "start")


onsuccess:
    from twinflow.twin.runinfo import write_run_log

    write_run_log(L.pipeline_info("run_log.jsonl"), sys.argv[1:], "success")


onerror:
    from twinflow.twin.runinfo import write_run_log

    write_run_log(L.pipeline_info("run_log.jsonl"), sys.argv[1:], "error")


# ------------------------------------------------------------------ input functions
def raw_image(wildcards):
    return PLAN.available(PLAN.image_params(wildcards.patient, wildcards.visit, wildcards.series)["path"])


def raw_label(wildcards):
    return PLAN.available(PLAN.image_params(wildcards.patient, wildcards.visit, wildcards.series)["label_path"])


def raw_file(key):
    """A patient's germline/somatic VCF or labs file ({kind}_vcf when key is None)."""
    return lambda wildcards: PLAN.available(PLAN.file_params(wildcards.patient, key or f"{wildcards.kind}_vcf")["path"])
