# Generic twin stages: segment -> (pgx) -> estimate -> simulate -> twin -> report.
# Every patient's model (patients.tsv: twin_model) implements twinflow.models.base.TwinModel;
# a new kind of twin is a new module in twinflow/models, not a new rule.


rule segment:
    input:
        segment_inputs,
    output:
        directory(f"{R}/{{patient}}/segment/{{visit}}"),
    log:
        f"{LOGS}/segment/{{patient}}/{{visit}}.log",
    params:
        **patient_stage("segment.py", "segment"),
    conda:
        "../envs/model.yaml"
    shell:
        run_job("segment.py")


rule pgx_record:
    input:
        pgx_inputs,
    output:
        json=f"{R}/{{patient}}/pgx/record.json",
        tsv=f"{R}/{{patient}}/pgx/record.tsv",
    log:
        f"{LOGS}/pgx_record/{{patient}}.log",
    params:
        **patient_stage("pgx_record.py", None, outputs=("json", "tsv"), code=code_digest("twinflow.pgx.record")),
    conda:
        "../envs/pgx.yaml"
    shell:
        run_job("pgx_record.py")


rule estimate:
    input:
        estimate_inputs,
    output:
        directory(f"{R}/{{patient}}/estimate"),
    log:
        f"{LOGS}/estimate/{{patient}}.log",
    params:
        **patient_stage("estimate.py", "estimate"),
    threads: 2
    conda:
        "../envs/model.yaml"
    shell:
        run_job("estimate.py")


rule simulate:
    input:
        estimate=f"{R}/{{patient}}/estimate",
        pgx=f"{R}/{{patient}}/pgx/record.json",
    output:
        directory(f"{R}/{{patient}}/simulate"),
    log:
        f"{LOGS}/simulate/{{patient}}.log",
    params:
        **patient_stage("simulate.py", "simulate"),
    threads: 2
    conda:
        "../envs/model.yaml"
    shell:
        run_job("simulate.py", inputs=("estimate", "pgx"))


rule twin:
    input:
        twin_inputs,
    output:
        f"{R}/{{patient}}/twin/twin.json",
    log:
        f"{LOGS}/twin/{{patient}}.log",
    params:
        **patient_stage("twin.py", "twin"),
    conda:
        "../envs/model.yaml"
    shell:
        run_job("twin.py")


rule patient_report:
    input:
        twin=f"{R}/{{patient}}/twin/twin.json",
        qc=f"{R}/{{patient}}/ingest/qc.json",
    output:
        report(
            f"{R}/{{patient}}/report.html",
            caption="../report/patient.rst",
            category="Patients",
            labels={"patient": "{patient}"},
        ),
    log:
        f"{LOGS}/patient_report/{{patient}}.log",
    params:
        **job_params("patient_report.py", lambda wc: COHORT.patients[wc.patient]["twin_model"],
                     lambda name: {"code": tf_jobs.dumps(_stage_digest(name, "report"))}),
    conda:
        "../envs/model.yaml"
    shell:
        run_job("patient_report.py", inputs=("twin", "qc"))
