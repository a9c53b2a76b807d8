# Cohort-level outputs and run provenance. None of these recomputes a twin.


rule cohort_summary:
    input:
        expand(L.twin_json("{patient}"), patient=VALID_PATIENTS),
    output:
        tsv=report(L.cohort("summary.tsv"), caption="../report/cohort.rst", category="Cohort"),
        models=expand(L.cohort("summary/{model}.tsv"), model=MODELS_USED),
    log:
        L.log("cohort_summary"),
    benchmark:
        L.benchmark("cohort_summary")
    params:
        models=MODELS_USED,
        code=code_digest("twinflow.cohort.summary"),
    conda:
        "../envs/qc.yaml"
    script:
        "../scripts/cohort_summary.py"


rule cohort_index:
    input:
        summary=L.cohort("summary.tsv"),
        models=expand(L.cohort("summary/{model}.tsv"), model=MODELS_USED),
        reports=expand(L.report("{patient}"), patient=VALID_PATIENTS),
        trials=list(TRIALS.reports().values()),
    output:
        L.cohort("index.html"),
    log:
        L.log("cohort_index"),
    benchmark:
        L.benchmark("cohort_index")
    params:
        models=MODELS_USED,
        trials=TRIALS.names(),
        code=code_digest("twinflow.report.html"),
    conda:
        "../envs/qc.yaml"
    script:
        "../scripts/cohort_index.py"


rule pipeline_info:
    input:
        list(config["sheets"].values()),
    output:
        software=L.pipeline_info("software_versions.yaml"),
        config=L.pipeline_info("config.yaml"),
        sheets=L.pipeline_info("sheets.tsv"),
    log:
        L.log("pipeline_info"),
    benchmark:
        L.benchmark("pipeline_info")
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
        twins=expand(L.twin_json("{patient}"), patient=VALID_PATIENTS),
        summary=L.cohort("summary.tsv"),
        info=rules.pipeline_info.output,
    output:
        f"{L.root}/ro-crate-metadata.json",
    log:
        L.log("run_crate"),
    benchmark:
        L.benchmark("run_crate")
    params:
        sheets=config["sheets"],
        snakefile=os.path.basename(workflow.main_snakefile),
        run_log=L.pipeline_info("run_log.jsonl"),
        code=code_digest("twinflow.twin.runinfo"),
    conda:
        "../envs/qc.yaml"
    script:
        "../scripts/run_crate.py"
