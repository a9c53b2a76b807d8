# The offline HTML report of each patient's twin (twinflow.report.html).


rule patient_report:
    input:
        twin=L.twin_json("{patient}"),
        qc=L.ingest_qc("{patient}"),
    output:
        report(
            L.report("{patient}"),
            caption="../report/patient.rst",
            category="Patients",
            labels={"patient": "{patient}"},
        ),
    log:
        L.log("patient_report", "{patient}"),
    benchmark:
        L.benchmark("patient_report", "{patient}")
    params:
        code=stage_code("report"),
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/patient_report.py"
