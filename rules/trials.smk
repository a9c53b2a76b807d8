# In-silico trials from the cohort's calibrated twins (twinflow.trials, docs/trials.md): one
# sampling job per trial, the arms simulated in chunks (scatter), one job that gathers,
# analyses and writes the verifiable trial artefact and its report. Only when `trials:` is set.
from twinflow.trials.workflow import TrialPlan

TRIALS = TrialPlan(config["trials"], COHORT, L, twins=config["twins"])
for _name in TRIALS.skipped():
    print(f"twinflow: trial {_name}: no twin of model {config['trials'][_name]['model']!r} to draw from; skipped",
          file=sys.stderr)


wildcard_constraints:
    trial="[A-Za-z0-9_-]+",
    arm="[A-Za-z0-9_-]+",
    chunk="[0-9]+",


rule trial_sample:
    input:
        unpack(lambda wildcards: TRIALS.sources(wildcards.trial)),
    output:
        population=L.trial("{trial}", "population.parquet"),
        summary=L.trial("{trial}", "sample.json"),
    log:
        L.log("trial_sample", "{trial}"),
    benchmark:
        L.benchmark("trial_sample", "{trial}")
    params:
        trial=lambda wildcards: TRIALS.config(wildcards.trial),
        code=lambda wildcards: TRIALS.code(wildcards.trial),
    conda:
        "../envs/trials.yaml"
    script:
        "../scripts/trial_sample.py"


rule trial_simulate:
    input:
        unpack(lambda wildcards: TRIALS.sources(wildcards.trial)),
        population=L.trial("{trial}", "population.parquet"),
    output:
        L.trial_chunk("{trial}", "{arm}", "{chunk}"),
    log:
        L.log("trial_simulate", "{trial}/{arm}_{chunk}"),
    benchmark:
        L.benchmark("trial_simulate", "{trial}/{arm}_{chunk}")
    params:
        trial=lambda wildcards: TRIALS.config(wildcards.trial),
        code=lambda wildcards: TRIALS.code(wildcards.trial),
    conda:
        "../envs/trials.yaml"
    script:
        "../scripts/trial_simulate.py"


rule trial_assemble:
    input:
        unpack(lambda wildcards: TRIALS.sources(wildcards.trial)),
        population=L.trial("{trial}", "population.parquet"),
        chunks=lambda wildcards: TRIALS.chunk_files(wildcards.trial),
    output:
        trial=L.trial("{trial}", "trial/trial.json"),
        report=report(L.trial("{trial}", "report.html"), caption="../report/trial.rst", category="Trials",
                      labels={"trial": "{trial}"}),
    log:
        L.log("trial_assemble", "{trial}"),
    benchmark:
        L.benchmark("trial_assemble", "{trial}")
    params:
        trial=lambda wildcards: TRIALS.config(wildcards.trial),
        code=lambda wildcards: TRIALS.code(wildcards.trial),
    conda:
        "../envs/trials.yaml"
    script:
        "../scripts/trial_assemble.py"
