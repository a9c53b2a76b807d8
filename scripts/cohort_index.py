"""Cohort index page linking every patient report, one section per kind of twin."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
import os

from twinflow.report.html import cohort_index
from twinflow.workflow import run_script


def main(sm):
    here = os.path.dirname(sm.output[0])
    links = {os.path.basename(os.path.dirname(r)): os.path.relpath(r, here) for r in sm.input.reports}
    trials = {name: os.path.relpath(r, here) for name, r in zip(sm.params.trials, sm.input.trials)}
    cohort_index(sm.output[0], sm.input.summary, dict(zip(sm.params.models, sm.input.models)), links, trials=trials)


run_script(snakemake, main)  # noqa: F821
