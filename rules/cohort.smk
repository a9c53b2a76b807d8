# Cohort-level outputs and run provenance. None of these recomputes a twin.


rule cohort_summary:
    input:
        expand(f"{R}/{{patient}}/twin/twin.json", patient=VALID_PATIENTS),
    output:
        tsv=report(f"{R}/cohort/summary.tsv", caption="../report/cohort.rst", category="Cohort"),
    log:
        f"{LOGS}/cohort_summary.log",
    params:
        code=code_digest("twinflow.cohort.summary"),
    conda:
        "../envs/qc.yaml"
    script:
        "../scripts/cohort_summary.py"


rule cohort_index:
    input:
        summary=f"{R}/cohort/summary.tsv",
        reports=expand(f"{R}/{{patient}}/report.html", patient=VALID_PATIENTS),
    output:
        f"{R}/cohort/index.html",
    log:
        f"{LOGS}/cohort_index.log",
    params:
        code=code_digest("twinflow.report.html"),
    conda:
        "../envs/qc.yaml"
    script:
        "../scripts/cohort_index.py"


rule pipeline_info:
    input:
        list(config["sheets"].values()),
    output:
        software=f"{R}/pipeline_info/software_versions.yaml",
        config=f"{R}/pipeline_info/config.yaml",
        sheets=f"{R}/pipeline_info/sheets.tsv",
    log:
        f"{LOGS}/pipeline_info.log",
    params:
        config=config,
        sheets=config["sheets"],
        code=code_digest("twinflow.twin.runinfo"),
    conda:
        "../envs/qc.yaml"
    script:
        "../scripts/pipeline_info.py"


rule run_crate:
    input:
        twins=expand(f"{R}/{{patient}}/twin/twin.json", patient=VALID_PATIENTS),
        summary=f"{R}/cohort/summary.tsv",
        info=rules.pipeline_info.output,
    output:
        f"{R}/ro-crate-metadata.json",
    log:
        f"{LOGS}/run_crate.log",
    params:
        sheets=config["sheets"],
        snakefile=os.path.basename(workflow.main_snakefile),
        run_log=f"{R}/pipeline_info/run_log.jsonl",
        code=code_digest("twinflow.twin.runinfo"),
    conda:
        "../envs/qc.yaml"
    script:
        "../scripts/run_crate.py"
