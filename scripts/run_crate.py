"""Workflow Run RO-Crate (Provenance Run Crate) of this run, rooted at the results folder."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
import os

from twinflow.twin.runinfo import write_run_crate
from twinflow.workflow import run_script


def main(sm):
    results = os.path.dirname(sm.output[0])
    rel = lambda p: os.path.relpath(p, results)  # noqa: E731
    write_run_crate(results, twins=[rel(p) for p in sm.input.twins], cohort_files=[rel(sm.input.summary)],
                    sheets=dict(sm.params.sheets), snakefile=sm.params.snakefile, run_log=sm.params.run_log)


run_script(snakemake, main)  # noqa: F821
