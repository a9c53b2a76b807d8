# The twin artefact: a self-contained, hashed, re-simulable folder per patient
# (twinflow.twin, docs/twin-artefact.md), assembled from the stage outputs.


rule build_twin:
    input:
        sheet=L.sheet("{patient}"),
        stages=lambda wildcards: PLAN.twin_inputs(wildcards.patient),
    output:
        L.twin_json("{patient}"),
    log:
        L.log("build_twin", "{patient}"),
    benchmark:
        L.benchmark("build_twin", "{patient}")
    params:
        resolved_config=lambda wildcards: PLAN.resolved_config(wildcards.patient),
        code=stage_code("twin"),
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/build_twin.py"
