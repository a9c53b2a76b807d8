# Sheets, validation and input functions. Logic lives in twinflow.sheets (unit-tested);
# this file only wires it into Snakemake.
import os
import sys

sys.path.insert(0, workflow.basedir)

from snakemake.utils import validate, min_version

from twinflow.errors import InputError
from twinflow import provenance as tf_provenance
from twinflow.provenance import code_digest
from twinflow import schema as tf_schema
from twinflow import sheets as tf_sheets

min_version("9.0")

# Module import lists for the code digests, kept between Snakemake calls (twinflow/provenance.py).
tf_provenance.use_import_cache(os.path.join(".snakemake", "twinflow", "imports.json"))

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
    """Read the three sheets once and validate every row against its JSON schema.

    Rows are validated by twinflow.schema.validate_frame: the same verdict as
    snakemake.utils.validate, in time proportional to the distinct values rather than the
    rows (~0.3 s instead of ~15 s for 1000 patients, on every Snakemake call)."""
    sh = config["sheets"]
    try:
        cohort = tf_sheets.load_cohort(sh["patients"], sh["imaging"], sh["treatments"], workdir=os.getcwd())
        for name, frame in cohort.frames.items():
            tf_schema.validate_sheet(frame, os.path.join(workflow.basedir, "config", "schemas", f"{name}.schema.yaml"),
                                     sheet=os.path.basename(sh[name]))
    except InputError as exc:
        raise WorkflowError(str(exc)) from None
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
_PRODUCED_DIRS = {}
for _f in DEMO_FILES:
    _PRODUCED_DIRS.setdefault(os.path.dirname(_f), []).append(_f)


# Snakemake asks inspect.signature() twice per call of an input or param function (~30 us
# each); a function marked with its parameters once is asked nothing more.  The mark is the
# one snakemake.ioutils uses for its own helpers; without it (other Snakemake versions) the
# functions are left as they are.
try:
    from snakemake.common import overwrite_function_params as _mark_params
except ImportError:
    _mark_params = None


def wc_fn(func):
    """An input or param function (of the job's wildcards) with its signature worked out once."""
    if _mark_params is not None:
        import inspect

        _mark_params(func, inspect.signature(func).parameters)
    return func


def available(path):
    """A raw input as a Snakemake input if it exists (or a rule makes it); otherwise nothing,
    and the job's script reports the missing file for that patient alone.  A DICOM directory
    that a rule of this workflow makes is represented by the files it will hold."""
    if not path:
        return []
    if path in _PRODUCED:
        return [path]
    if path in _PRODUCED_DIRS:
        return sorted(_PRODUCED_DIRS[path])
    if os.path.exists(path):
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


VALID_PATIENTS = [pid for pid in PATIENTS if pid not in COHORT.invalid]

# Cohort-level bookkeeping runs on the submit host, never as a cluster job.
localrules:
    all,
    cohort_qc,
    cohort_summary,
    cohort_index,
    pipeline_info,
    run_crate,


def all_targets():
    out = [f"{R}/{pid}/ingest/qc.json" for pid in PATIENTS] + [f"{R}/cohort/ingest_qc.tsv"]
    if config.get("twins", True):
        for pid in PATIENTS:
            out += twin_targets(pid)
        out += [f"{R}/cohort/summary.tsv", f"{R}/cohort/index.html", f"{R}/ro-crate-metadata.json"]
    out += [f"{R}/pipeline_info/software_versions.yaml", f"{R}/pipeline_info/config.yaml",
            f"{R}/pipeline_info/sheets.tsv"]
    return out


onstart:
    from twinflow.twin.runinfo import write_run_log

    write_run_log(f"{R}/pipeline_info/run_log.jsonl", sys.argv[1:], "start")


onsuccess:
    from twinflow.twin.runinfo import write_run_log

    write_run_log(f"{R}/pipeline_info/run_log.jsonl", sys.argv[1:], "success")


onerror:
    from twinflow.twin.runinfo import write_run_log

    write_run_log(f"{R}/pipeline_info/run_log.jsonl", sys.argv[1:], "error")


# ---------------------------------------------------------------- twin stages
from twinflow.models import registry as tf_registry

_MODELS = {}


def model_of(pid):
    name = COHORT.patients[pid]["twin_model"]
    if name not in _MODELS:
        _MODELS[name] = tf_registry.get(name)
    return _MODELS[name]


def module_of_patient(wc):
    return tf_registry.module_of(COHORT.patients[wc.patient]["twin_model"])


_STAGE_DIGESTS = {}


def _stage_digest(name, stage):
    if (name, stage) not in _STAGE_DIGESTS:
        _STAGE_DIGESTS[(name, stage)] = tf_registry.stage_digest(name, stage)
    return _STAGE_DIGESTS[(name, stage)]


MODEL_STAGES = ("segment", "estimate", "simulate", "twin")

# ---------------------------------------------------------------- shell: job runner
# The per-patient rules are shell: rules that run their script in scripts/ through
# scripts/run_job.py (twinflow/jobs.py); the job's data (sheet rows, model config, code
# digests) is in a content-addressed spec file under .snakemake/twinflow/jobspecs and the
# job's one param is that file's SHA-256.  Snakemake's script: directive opens the script for
# every job while it builds the DAG and checks its mtime on every no-op run, and a large
# param is repr'd into every metadata record: together most of the overhead over bare
# Snakemake at 1000 patients (docs/scale.md).
# Snakemake re-runs a shell: job when its rule's command template changes; the template names
# the interpreter and the scripts folder by variables that the shell prefix exports (Snakemake's
# default prefix for bash, "set -euo pipefail; ", is kept), so that printed commands stay short
# and free of local paths.  The interpreter is Snakemake's own, or the conda environment's
# python with --sdm conda.
import hashlib
import shlex

from snakemake_interface_executor_plugins.settings import DeploymentMethod as _DM

from twinflow import jobs as tf_jobs

_JOB_PYTHON = "python" if _DM.CONDA in workflow.deployment_settings.deployment_method else sys.executable
_JOB_SCRIPTS = os.path.join(workflow.basedir, "scripts")
# The runner writes each job's benchmark table (the path of its log, LOGS -> BENCH, .tsv) in
# the format of Snakemake's benchmark: files, which these rules therefore do not declare.
_JOB_ENV = "export " + " ".join(f"TWINFLOW_{k}={shlex.quote(v)}" for k, v in (
    ("PYTHON", _JOB_PYTHON), ("SCRIPTS", _JOB_SCRIPTS), ("LOGS", LOGS), ("BENCHMARKS", BENCH)))
shell.prefix(f"set -euo pipefail; {_JOB_ENV}; ".replace("{", "{{").replace("}", "}}"))
SPECS = tf_jobs.SpecStore()


def run_job(script, inputs=()):
    """shell: command of a per-patient rule (see twinflow/jobs.py); ``inputs`` are the named
    inputs the script reads.  The job's wildcards are in its spec: every field of the command
    costs Snakemake a format per printed or run job."""
    i = " ".join(f"{k}={{input.{k}:q}}" for k in inputs)
    return (f'"$TWINFLOW_PYTHON" "$TWINFLOW_SCRIPTS/run_job.py" "$TWINFLOW_SCRIPTS/{script}" {{params.job}}'
            f" --log {{log:q}} --outputs {{output:q}} --inputs {i}").rstrip()


def job_params(script, by, build, outputs=(), **static):
    """The one param of a per-patient shell: rule: the key of its job spec.

    ``by`` maps the job's wildcards to what its data depends on (the patient, or the patient
    and the image); ``build`` maps that to the script's params as canonical JSON text (values
    already serialised, so a patient's context is serialised once for all its jobs).
    ``static`` params are the same for every job of the rule; the script's SHA-256 is one of
    them, so editing a script re-runs its jobs as script: did.  ``outputs`` names the rule's
    outputs in order.  The spec also holds the job's wildcards.  The key is a function of the
    wildcards only, so Snakemake's params trigger sees it."""
    with open(os.path.join(_JOB_SCRIPTS, script), "rb") as fh:
        fixed = {k: tf_jobs.dumps(v) for k, v in static.items()}
        fixed["script_sha256"] = tf_jobs.dumps(hashlib.sha256(fh.read()).hexdigest())
    head = tf_jobs.dumps({"output_names": list(outputs)})[:-1]
    keys, names = {}, {}

    def text(k, wc):
        params = {**fixed, **build(k)}
        if len(names) != len(params):
            names.update((n, tf_jobs.dumps(n)) for n in params)
        body = ",".join(f"{names[n]}:{params[n]}" for n in sorted(params))
        return f'{head},"params":{{{body}}},"wildcards":{tf_jobs.dumps(wc)}}}'

    def job(wildcards):
        wc = dict(wildcards.items())
        wk = tuple(wc.values())
        if wk not in keys:
            k = by(wildcards)
            # the spec file is written when a job that runs formats its command (twinflow/jobs.py)
            keys[wk] = tf_jobs.SpecKey(lambda: text(k, wc), SPECS, write=not (workflow.dryrun or workflow.touch))
        return keys[wk]

    return dict(job=wc_fn(job))


_PATIENT_JSON = {}
_STAGE_JSON = {}


def patient_json(pid):
    """The patient's sheet rows and results folder as canonical JSON (once per patient)."""
    if pid not in _PATIENT_JSON:
        _PATIENT_JSON[pid] = tf_jobs.dumps({
            "row": COHORT.patients[pid],
            "images": COHORT.images.get(pid, []),
            "treatments": [{k: v for k, v in t.items() if k != "row"} for t in COHORT.treatments.get(pid, [])],
            "results_dir": os.path.join(R, pid),
        })
    return _PATIENT_JSON[pid]


def ctx_json(pid, stage):
    """``ctx`` of a patient's job: its sheet rows and results folder, the model's config for
    the stage and, for model stages, the stage's code digest (so that editing the code re-runs
    the stage) and, for the twin, the resolved config it records."""
    name = COHORT.patients[pid]["twin_model"]
    if (name, stage) not in _STAGE_JSON:
        models = config.get("models", {})
        part = {"model_config": ((models.get(name) or {}).get(stage) or {}) if stage else {}}
        if stage in MODEL_STAGES:
            part["code"] = _stage_digest(name, stage)
        if stage == "twin":
            part["resolved_config"] = {"models": {name: models.get(name) or {}}, "ingest": config.get("ingest", {})}
        _STAGE_JSON[(name, stage)] = tf_jobs.dumps(part)
    return patient_json(pid)[:-1] + "," + _STAGE_JSON[(name, stage)][1:]


def patient_stage(script, stage, **kw):
    """job_params of a rule whose script gets the patient's ``ctx`` for ``stage``."""
    return job_params(script, lambda wc: wc.patient, lambda pid: {"ctx": ctx_json(pid, stage)}, **kw)


def image_key(wc):
    return (wc.patient, wc.visit, wc.series)


def image_params(key):
    """An image job's data: its image row only, so a new visit leaves the others' jobs alone."""
    return {"row": tf_jobs.dumps(COHORT.image(*key))}


def variants_params(key):
    pid, kind = key
    p = COHORT.patients[pid]
    return {"ctx": tf_jobs.dumps({"path": p[f"{kind}_vcf"], "display": p[f"{kind}_vcf_display"],
                                  "sample": p.get("germline_sample") if kind == "germline" else None})}


def labs_params(pid):
    p = COHORT.patients[pid]
    return {"ctx": tf_jobs.dumps({"path": p["labs"], "display": p["labs_display"], "subject": p.get("labs_subject")})}


def patient_qc_params(pid):
    return {"ctx": ctx_json(pid, None), "error": tf_jobs.dumps(COHORT.invalid.get(pid))}


def _ctx(pid):
    from twinflow.models.base import PatientContext

    return PatientContext(patient_id=pid, row=COHORT.patients[pid], images=COHORT.images.get(pid, []),
                          treatments=COHORT.treatments.get(pid, []), results=__import__("pathlib").Path(R) / pid)


_SEGMENT_VISITS = {}


def segment_visits(pid):
    """The visits the patient's model segments (asked once per patient; 5+ input functions use it)."""
    if pid not in _SEGMENT_VISITS:
        _SEGMENT_VISITS[pid] = list(model_of(pid).segment_visits(_ctx(pid)))
    return _SEGMENT_VISITS[pid]


def _visit_images(pid, visit):
    out = []
    for row in COHORT.images.get(pid, []):
        if row.visit == visit:
            base = f"{R}/{pid}/ingest/imaging/{visit}/{row.series}"
            out.append(f"{base}.nii.gz")
            if row.label_path:
                if os.path.isdir(row.label_path):
                    out += [row.path, row.label_path]   # raw DICOM + contour folder (cardiac experts)
                else:
                    out.append(f"{base}.label.nii.gz")
    return out


@wc_fn
def segment_inputs(wc):
    pid = wc.patient
    out = _visit_images(pid, wc.visit)
    m = model_of(pid)
    if m.uses_previous_segmentation:
        visits = segment_visits(pid)
        i = visits.index(wc.visit)
        if i > 0:
            out.append(f"{R}/{pid}/segment/{visits[i - 1]}")
    return out


@wc_fn
def pgx_inputs(wc):
    p = COHORT.patients[wc.patient]
    out = [f"{R}/{wc.patient}/ingest/qc.json"]
    for kind, key in (("germline", "germline_vcf"), ("somatic", "somatic_vcf")):
        if p.get(key):
            out.append(f"{R}/{wc.patient}/ingest/{kind}.tsv")
    if p.get("labs"):
        out.append(f"{R}/{wc.patient}/ingest/labs.tsv")
    return out


@wc_fn
def estimate_inputs(wc):
    pid = wc.patient
    out = [f"{R}/{pid}/segment/{v}" for v in segment_visits(pid)]
    out += [f for v, _ in _ctx(pid).visits() for f in _visit_images(pid, v)]
    out.append(f"{R}/{pid}/pgx/record.json")
    if COHORT.patients[pid].get("labs"):
        out.append(f"{R}/{pid}/ingest/labs.tsv")
    return sorted(set(out))


@wc_fn
def twin_inputs(wc):
    pid = wc.patient
    out = [f"{R}/{pid}/estimate", f"{R}/{pid}/simulate", f"{R}/{pid}/pgx/record.json", f"{R}/{pid}/ingest/qc.json"]
    out += [f"{R}/{pid}/segment/{v}" for v in segment_visits(pid)]
    return out


def twin_targets(pid):
    if pid in COHORT.invalid:
        return [f"{R}/{pid}/ingest/qc.json"]
    return [f"{R}/{pid}/twin/twin.json", f"{R}/{pid}/report.html"]
