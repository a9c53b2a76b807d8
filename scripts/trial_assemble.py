"""Gather a trial's chunks, analyse, write the trial artefact and its report."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
import os

from twinflow.trials import stages
from twinflow.workflow import run_script


def main(sm):
    sources = stages.load_sources(sm.input.twins, sm.input.sheets)
    stages.assemble(sm.wildcards.trial, sm.params.trial, sm.input.population, sm.input.chunks, sources,
                    os.path.dirname(sm.output.trial), sm.output.report)


run_script(snakemake, main)  # noqa: F821
