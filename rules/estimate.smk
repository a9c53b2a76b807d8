# Calibration of the patient's twin model, with uncertainty (TwinModel.estimate).


rule estimate:
    input:
        sheet=L.sheet("{patient}"),
        data=lambda wildcards: PLAN.estimate_inputs(wildcards.patient),
    output:
        directory(L.estimate("{patient}")),
    log:
        L.log("estimate", "{patient}"),
    benchmark:
        L.benchmark("estimate", "{patient}")
    params:
        config=stage_config("estimate"),
        code=stage_code("estimate"),
    threads: 2
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/estimate.py"
