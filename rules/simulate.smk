# Treatment arms and forecasts of the calibrated twin (TwinModel.simulate).


rule simulate:
    input:
        sheet=L.sheet("{patient}"),
        estimate=L.estimate("{patient}"),
        pgx=L.pgx("{patient}"),
    output:
        directory(L.simulate("{patient}")),
    log:
        L.log("simulate", "{patient}"),
    benchmark:
        L.benchmark("simulate", "{patient}")
    params:
        config=stage_config("simulate"),
        code=stage_code("simulate"),
    threads: 2
    conda:
        "../envs/model.yaml"
    script:
        "../scripts/simulate.py"
