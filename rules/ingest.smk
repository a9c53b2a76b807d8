# Ingest and QC, per patient and modality. Each raw input is read once and written as a
# canonical file plus a QC record; bad input fails that patient's job with one message.


rule ingest_image:
    input:
        wc_fn(lambda wc: available(image_row(wc).path)),
    output:
        nifti=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.nii.gz",
        qc=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.qc.json",
        png=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.png",
    log:
        f"{LOGS}/ingest_image/{{patient}}/{{visit}}_{{series}}.log",
    params:
        **job_params("ingest_image.py", image_key, image_params, outputs=("nifti", "qc", "png"),
                     code=code_digest("twinflow.io.imaging")),
    conda:
        "../envs/ingest.yaml"
    shell:
        run_job("ingest_image.py")


rule ingest_label:
    input:
        image=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.nii.gz",
        label=wc_fn(lambda wc: available(image_row(wc).label_path)),
    output:
        nifti=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.label.nii.gz",
        qc=f"{R}/{{patient}}/ingest/imaging/{{visit}}/{{series}}.label.qc.json",
    log:
        f"{LOGS}/ingest_label/{{patient}}/{{visit}}_{{series}}.log",
    params:
        **job_params("ingest_label.py", image_key, image_params, outputs=("nifti", "qc"),
                     code=code_digest("twinflow.io.imaging")),
    conda:
        "../envs/ingest.yaml"
    shell:
        run_job("ingest_label.py", inputs=("image",))


rule ingest_variants:
    input:
        wc_fn(lambda wc: available(patient(wc)[f"{wc.kind}_vcf"])),
    output:
        table=f"{R}/{{patient}}/ingest/{{kind}}.tsv",
        qc=f"{R}/{{patient}}/ingest/{{kind}}.qc.json",
    log:
        f"{LOGS}/ingest_variants/{{patient}}_{{kind}}.log",
    params:
        **job_params("ingest_variants.py", lambda wc: (wc.patient, wc.kind), variants_params,
                     outputs=("table", "qc"), code=code_digest("twinflow.io.variants")),
    conda:
        "../envs/ingest.yaml"
    shell:
        run_job("ingest_variants.py")


rule ingest_labs:
    input:
        wc_fn(lambda wc: available(patient(wc)["labs"])),
    output:
        table=f"{R}/{{patient}}/ingest/labs.tsv",
        qc=f"{R}/{{patient}}/ingest/labs.qc.json",
    log:
        f"{LOGS}/ingest_labs/{{patient}}.log",
    params:
        **job_params("ingest_labs.py", lambda wc: wc.patient, labs_params, outputs=("table", "qc"),
                     implausible=config["ingest"]["implausible_labs"], code=code_digest("twinflow.io.labs")),
    conda:
        "../envs/ingest.yaml"
    shell:
        run_job("ingest_labs.py")


rule patient_qc:
    input:
        wc_fn(lambda wc: patient_ingest_outputs(wc.patient)),
    output:
        f"{R}/{{patient}}/ingest/qc.json",
    log:
        f"{LOGS}/patient_qc/{{patient}}.log",
    params:
        **job_params("patient_qc.py", lambda wc: wc.patient, patient_qc_params, code=code_digest("twinflow.qc")),
    conda:
        "../envs/qc.yaml"
    shell:
        run_job("patient_qc.py")


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
