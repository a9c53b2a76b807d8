# Ingest and QC, per patient and modality. Each raw input is read once and written as a
# canonical file plus a QC record; bad input fails that patient's job with one message.


rule patient_sheet:
    output:
        L.sheet("{patient}"),
    params:
        rows=lambda wildcards: COHORT.digest(wildcards.patient),
    log:
        L.log("patient_sheet", "{patient}"),
    run:
        tf_workflow.write_patient_sheet(COHORT, wildcards.patient, output[0], log=log[0])


rule ingest_image:
    input:
        raw_image,
    output:
        nifti=L.image("{patient}", "{visit}", "{series}"),
        qc=L.image("{patient}", "{visit}", "{series}", ".qc.json"),
        png=L.image("{patient}", "{visit}", "{series}", ".png"),
    log:
        L.log("ingest_image", "{patient}/{visit}_{series}"),
    benchmark:
        L.benchmark("ingest_image", "{patient}/{visit}_{series}")
    params:
        image=lambda wildcards: PLAN.image_params(wildcards.patient, wildcards.visit, wildcards.series),
        code=code_digest("twinflow.io.imaging"),
    conda:
        "../envs/ingest.yaml"
    script:
        "../scripts/ingest_image.py"


rule ingest_label:
    input:
        image=L.image("{patient}", "{visit}", "{series}"),
        label=raw_label,
    output:
        nifti=L.image("{patient}", "{visit}", "{series}", ".label.nii.gz"),
        qc=L.image("{patient}", "{visit}", "{series}", ".label.qc.json"),
    log:
        L.log("ingest_label", "{patient}/{visit}_{series}"),
    benchmark:
        L.benchmark("ingest_label", "{patient}/{visit}_{series}")
    params:
        image=lambda wildcards: PLAN.image_params(wildcards.patient, wildcards.visit, wildcards.series),
        code=code_digest("twinflow.io.imaging"),
    conda:
        "../envs/ingest.yaml"
    script:
        "../scripts/ingest_label.py"


rule ingest_variants:
    input:
        raw_file(None),
    output:
        table=L.variants("{patient}", "{kind}"),
        qc=L.variants("{patient}", "{kind}", ".qc.json"),
    log:
        L.log("ingest_variants", "{patient}_{kind}"),
    benchmark:
        L.benchmark("ingest_variants", "{patient}_{kind}")
    params:
        vcf=lambda wildcards: PLAN.file_params(wildcards.patient, f"{wildcards.kind}_vcf"),
        code=code_digest("twinflow.io.variants"),
    conda:
        "../envs/ingest.yaml"
    script:
        "../scripts/ingest_variants.py"


rule ingest_labs:
    input:
        raw_file("labs"),
    output:
        table=L.labs("{patient}"),
        qc=L.labs("{patient}", ".qc.json"),
    log:
        L.log("ingest_labs", "{patient}"),
    benchmark:
        L.benchmark("ingest_labs", "{patient}")
    params:
        labs=lambda wildcards: PLAN.file_params(wildcards.patient, "labs"),
        implausible=config["ingest"]["implausible_labs"],
        code=code_digest("twinflow.io.labs"),
    conda:
        "../envs/ingest.yaml"
    script:
        "../scripts/ingest_labs.py"


rule patient_qc:
    input:
        sheet=L.sheet("{patient}"),
        ingested=lambda wildcards: PLAN.ingest_outputs(wildcards.patient),
    output:
        L.ingest_qc("{patient}"),
    log:
        L.log("patient_qc", "{patient}"),
    benchmark:
        L.benchmark("patient_qc", "{patient}")
    params:
        code=code_digest("twinflow.qc"),
    conda:
        "../envs/qc.yaml"
    script:
        "../scripts/patient_qc.py"


rule cohort_qc:
    input:
        expand(L.ingest_qc("{patient}"), patient=VALID_PATIENTS),
    output:
        L.cohort("ingest_qc.tsv"),
    log:
        L.log("cohort_qc"),
    benchmark:
        L.benchmark("cohort_qc")
    params:
        problems=COHORT.invalid,   # patients whose sheet rows cannot be used: listed as failed
        code=code_digest("twinflow.qc"),
    conda:
        "../envs/qc.yaml"
    script:
        "../scripts/cohort_qc.py"
