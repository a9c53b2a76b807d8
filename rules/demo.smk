# The built-in demo cohort (twinflow.demo.cohort): generated, deterministic, with ground truth.

if config["demo"]["generate"]:

    rule demo_cohort:
        output:
            data=DEMO_FILES,
            truth=tf_demo.truth_files(config["demo"]["outdir"]),
        log:
            L.log("demo_cohort"),
        benchmark:
            L.benchmark("demo_cohort")
        params:
            # <outdir>/truth/<patient>/truth.json -> <outdir>
            outdir=lambda wildcards, output: os.path.dirname(os.path.dirname(os.path.dirname(output.truth[0]))),
            code=code_digest("twinflow.demo.cohort"),
        conda:
            "../envs/demo.yaml"
        script:
            "../scripts/demo_cohort.py"
