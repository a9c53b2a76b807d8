# Pharmacogenomics and physiology, per patient: star alleles and phenotypes from the germline
# variants, somatic hotspots, eGFR/BSA/hepatic status from the labs (twinflow.pgx.record).


rule pgx_record:
    input:
        sheet=L.sheet("{patient}"),
        ingested=lambda wildcards: PLAN.pgx_inputs(wildcards.patient),
    output:
        json=L.pgx("{patient}"),
        tsv=L.pgx("{patient}", ".tsv"),
    log:
        L.log("pgx_record", "{patient}"),
    benchmark:
        L.benchmark("pgx_record", "{patient}")
    params:
        code=code_digest("twinflow.pgx.record"),
        tables=data_digest("pgx/data"),   # allele definitions and phenotype tables
    conda:
        "../envs/pgx.yaml"
    script:
        "../scripts/pgx_record.py"
