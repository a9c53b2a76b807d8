# Ingest and QC, per patient and modality. Each raw input is read once and written as a
# canonical file plus a QC record; bad input fails that patient's job with one message.


rule ingest_image:
    input:
        lambda wc: available(image_row(wc).path),
    output:
        nifti=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.nii.gz",
        qc=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.qc.json",
        png=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.png",
    log:
        f"{LOGS}/ingest_image/{{patient}}/{{visit}}_{{series}}.log",
    benchmark:
        f"{BENCH}/ingest_image/{{patient}}/{{visit}}_{{series}}.tsv"
    params:
        row=image_row,
        code=code_digest("twinflow.io.imaging"),
    conda:
        "../envs/ingest.yaml"
    script:
        "../scripts/ingest_image.py"


rule ingest_label:
    input:
        label=lambda wc: available(image_row(wc).label_path),
        image=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.nii.gz",
    output:
        nifti=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.label.nii.gz",
        qc=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.label.qc.json",
    log:
        f"{LOGS}/ingest_label/{{patient}}/{{visit}}_{{series}}.log",
    benchmark:
        f"{BENCH}/ingest_label/{{patient}}/{{visit}}_{{series}}.tsv"
    params:
        row=image_row,
        code=code_digest("twinflow.io.imaging"),
    conda:
        "../envs/ingest.yaml"
    script:
        "../scripts/ingest_label.py"


rule ingest_variants:
    input:
        lambda wc: available(patient(wc)[f"{wc.kind}_vcf"]),
    output:
        table=f"{R}/{{patient}}/ingest/{{kind}}.tsv",
        qc=f"{R}/{{patient}}/ingest/{{kind}}.qc.json",
    log:
        f"{LOGS}/ingest_variants/{{patient}}_{{kind}}.log",
    benchmark:
        f"{BENCH}/ingest_variants/{{patient}}_{{kind}}.tsv"
    params:
        ctx=lambda wc: {"path": patient(wc)[f"{wc.kind}_vcf"], "display": patient(wc)[f"{wc.kind}_vcf_display"],
                        "sample": patient(wc).get("germline_sample") if wc.kind == "germline" else None},
        code=code_digest("twinflow.io.variants"),
    conda:
        "../envs/ingest.yaml"
    script:
        "../scripts/ingest_variants.py"


rule ingest_labs:
    input:
        lambda wc: available(patient(wc)["labs"]),
    output:
        table=f"{R}/{{patient}}/ingest/labs.tsv",
        qc=f"{R}/{{patient}}/ingest/labs.qc.json",
    log:
        f"{LOGS}/ingest_labs/{{patient}}.log",
    benchmark:
        f"{BENCH}/ingest_labs/{{patient}}.tsv"
    params:
        ctx=lambda wc: {"path": patient(wc)["labs"], "display": patient(wc)["labs_display"],
                        "subject": patient(wc).get("labs_subject")},
        implausible=config["ingest"]["implausible_labs"],
        code=code_digest("twinflow.io.labs"),
    conda:
        "../envs/ingest.yaml"
    script:
        "../scripts/ingest_labs.py"


rule patient_qc:
    input:
        lambda wc: patient_ingest_outputs(wc.patient),
    output:
        f"{R}/{{patient}}/ingest/qc.json",
    log:
        f"{LOGS}/patient_qc/{{patient}}.log",
    benchmark:
        f"{BENCH}/patient_qc/{{patient}}.tsv"
    params:
        ctx=lambda wc: {"error": COHORT.invalid.get(wc.patient), **_ctx_value(wc.patient, None)},
        code=code_digest("twinflow.qc"),
    conda:
        "../envs/qc.yaml"
    script:
        "../scripts/patient_qc.py"


rule cohort_qc:
    input:
        expand(f"{R}/{{patient}}/ingest/qc.json", patient=PATIENTS),
    output:
        f"{R}/cohort/ingest_qc.tsv",
    log:
        f"{LOGS}/cohort_qc.log",
    benchmark:
        f"{BENCH}/cohort_qc.tsv"
    params:
        code=code_digest("twinflow.qc"),
    conda:
        "../envs/qc.yaml"
    script:
        "../scripts/cohort_qc.py"
