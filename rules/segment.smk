# Segmentation, per patient and visit, by the patient's twin model (patients.tsv: twin_model;
# twinflow.models.base.TwinModel.segment). The visits are the model's segment_visits.


rule segment:
    input:
        sheet=L.sheet("{patient}"),
        images=lambda wildcards: PLAN.segment_inputs(wildcards.patient, wildcards.visit),
    output:
        directory(L.segment("{patient}", "{visit}")),
    log:
        L.log("segment", "{patient}/{visit}"),
    benchmark:
        L.benchmark("segment", "{patient}/{visit}")
    params:
        config=stage_config("segment"),
        code=stage_code("segment"),
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/segment.py"
