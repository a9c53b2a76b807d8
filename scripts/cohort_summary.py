"""Cohort summary tables from the twins: every twin, and one table per kind of twin."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.cohort.summary import cohort_summary
from twinflow.workflow import run_script


def main(sm):
    cohort_summary(list(sm.input), sm.output.tsv, dict(zip(sm.params.models, sm.output.models)))


run_script(snakemake, main)  # noqa: F821
