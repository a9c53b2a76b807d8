# Hospital operations twins (twinflow.hospital): one site per entry of config["hospital"].
# Self-contained: it uses nothing from the patient-twin rules, so it can run alone
# (snakemake <targets>, or a Snakefile that includes only this file).
# Chain per site: [demo log] -> ingest -> fit -> simulate (scenario x replication, one job
# each, seeds recorded) -> validate, scenarios -> twin artefact -> report.
import sys

sys.path.insert(0, workflow.basedir)

from twinflow.errors import InputError as _HospitalInputError
from twinflow.hospital import workflow as tf_hospital

try:  # the section against its schema, then each site (a problem stops the run with its message alone)
    HOSPITAL = tf_hospital.sites(config)
except _HospitalInputError as exc:
    print(f"twinflow: {exc}", file=sys.stderr)
    sys.exit(1)
HOSP = tf_hospital.results_dir(config)
HOSP_LOGS = f"{config.get('results', 'results').rstrip('/')}/logs/hospital"
HOSP_BENCH = f"{config.get('results', 'results').rstrip('/')}/benchmarks/hospital"
HOSP_CODE = tf_hospital.code_digest()
HOSP_SITE = "[A-Za-z0-9_-]+"


if tf_hospital.demo_logs(config):

    rule hospital_demo_log:
        output:
            tf_hospital.demo_logs(config),
        log:
            f"{HOSP_LOGS}/demo_log.log",
        params:
            code=HOSP_CODE,
        conda:
            "../envs/hospital.yaml"
        script:
            "../scripts/hospital_demo_log.py"


rule hospital_ingest:
    input:
        log=lambda wildcards: HOSPITAL[wildcards.site]["log"],
    output:
        events=f"{HOSP}/{{site}}/events.tsv.gz",
        qc=f"{HOSP}/{{site}}/qc.json",
    log:
        f"{HOSP_LOGS}/{{site}}/ingest.log",
    benchmark:
        f"{HOSP_BENCH}/{{site}}/ingest.tsv"
    params:
        site=lambda wildcards: tf_hospital.stage_config(HOSPITAL[wildcards.site], "ingest"),
        code=HOSP_CODE,
    wildcard_constraints:
        site=HOSP_SITE,
    conda:
        "../envs/hospital.yaml"
    script:
        "../scripts/hospital_ingest.py"


rule hospital_fit:
    input:
        events=f"{HOSP}/{{site}}/events.tsv.gz",
    output:
        model=f"{HOSP}/{{site}}/model.json",
        fit=f"{HOSP}/{{site}}/fit.json",
    log:
        f"{HOSP_LOGS}/{{site}}/fit.log",
    benchmark:
        f"{HOSP_BENCH}/{{site}}/fit.tsv"
    params:
        site=lambda wildcards: tf_hospital.stage_config(HOSPITAL[wildcards.site], "fit"),
        code=HOSP_CODE,
    wildcard_constraints:
        site=HOSP_SITE,
    conda:
        "../envs/hospital.yaml"
    script:
        "../scripts/hospital_fit.py"


rule hospital_simulate:
    input:
        model=f"{HOSP}/{{site}}/model.json",
    output:
        summary=f"{HOSP}/{{site}}/sim/{{scenario}}/rep{{rep}}.json",
        cases=f"{HOSP}/{{site}}/sim/{{scenario}}/rep{{rep}}.cases.tsv.gz",
    log:
        f"{HOSP_LOGS}/{{site}}/sim/{{scenario}}/rep{{rep}}.log",
    benchmark:
        f"{HOSP_BENCH}/{{site}}/sim/{{scenario}}/rep{{rep}}.tsv"
    params:
        scenario=lambda wildcards: HOSPITAL[wildcards.site]["scenarios"].get(wildcards.scenario, {}),
        seed=lambda wildcards: HOSPITAL[wildcards.site]["seed"],
        code=HOSP_CODE,
    wildcard_constraints:
        site=HOSP_SITE,
        scenario="[A-Za-z0-9_-]+",
        rep=r"\d+",
    conda:
        "../envs/hospital.yaml"
    script:
        "../scripts/hospital_simulate.py"


rule hospital_validate:
    input:
        events=f"{HOSP}/{{site}}/events.tsv.gz",
        model=f"{HOSP}/{{site}}/model.json",
        summaries=lambda wildcards: tf_hospital.replications(HOSP, wildcards.site, HOSPITAL[wildcards.site], "json", ["baseline"]),
        cases=lambda wildcards: tf_hospital.replications(HOSP, wildcards.site, HOSPITAL[wildcards.site], "cases.tsv.gz", ["baseline"]),
    output:
        figures=f"{HOSP}/{{site}}/validation.json",
        hourly=f"{HOSP}/{{site}}/validation_hourly.tsv",
    log:
        f"{HOSP_LOGS}/{{site}}/validate.log",
    benchmark:
        f"{HOSP_BENCH}/{{site}}/validate.tsv"
    params:
        code=HOSP_CODE,
    wildcard_constraints:
        site=HOSP_SITE,
    conda:
        "../envs/hospital.yaml"
    script:
        "../scripts/hospital_validate.py"


rule hospital_scenarios:
    input:
        lambda wildcards: tf_hospital.replications(HOSP, wildcards.site, HOSPITAL[wildcards.site], "json"),
    output:
        f"{HOSP}/{{site}}/scenarios.tsv",
    log:
        f"{HOSP_LOGS}/{{site}}/scenarios.log",
    params:
        code=HOSP_CODE,
    wildcard_constraints:
        site=HOSP_SITE,
    conda:
        "../envs/hospital.yaml"
    script:
        "../scripts/hospital_scenarios.py"


rule hospital_twin:
    input:
        log=lambda wildcards: HOSPITAL[wildcards.site]["log"],
        model=f"{HOSP}/{{site}}/model.json",
        fit=f"{HOSP}/{{site}}/fit.json",
        qc=f"{HOSP}/{{site}}/qc.json",
        validation=f"{HOSP}/{{site}}/validation.json",
        hourly=f"{HOSP}/{{site}}/validation_hourly.tsv",
        scenarios=f"{HOSP}/{{site}}/scenarios.tsv",
        reps=lambda wildcards: tf_hospital.replications(HOSP, wildcards.site, HOSPITAL[wildcards.site], "json")
        + tf_hospital.replications(HOSP, wildcards.site, HOSPITAL[wildcards.site], "cases.tsv.gz"),
    output:
        f"{HOSP}/{{site}}/twin/hospital_twin.json",
    log:
        f"{HOSP_LOGS}/{{site}}/twin.log",
    params:
        site=lambda wildcards: HOSPITAL[wildcards.site],
        files={"model.json": "model", "fit.json": "fit", "qc.json": "qc", "validation.json": "validation",
               "validation_hourly.tsv": "hourly", "scenarios.tsv": "scenarios"},
        code=HOSP_CODE,
    wildcard_constraints:
        site=HOSP_SITE,
    conda:
        "../envs/hospital.yaml"
    script:
        "../scripts/hospital_twin.py"


rule hospital_report:
    input:
        qc=f"{HOSP}/{{site}}/qc.json",
        fit=f"{HOSP}/{{site}}/fit.json",
        validation=f"{HOSP}/{{site}}/validation.json",
        hourly=f"{HOSP}/{{site}}/validation_hourly.tsv",
        scenarios=f"{HOSP}/{{site}}/scenarios.tsv",
        baseline=lambda wildcards: tf_hospital.replications(HOSP, wildcards.site, HOSPITAL[wildcards.site], "json", ["baseline"]),
    output:
        f"{HOSP}/{{site}}/report.html",
    log:
        f"{HOSP_LOGS}/{{site}}/report.log",
    params:
        code=HOSP_CODE,
    wildcard_constraints:
        site=HOSP_SITE,
    conda:
        "../envs/hospital.yaml"
    script:
        "../scripts/hospital_report.py"
