"""Simulate one chunk of one arm of a trial."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821

from twinflow.trials import stages
from twinflow.workflow import run_script


def main(sm):
    sources = stages.load_sources(sm.input.twins, sm.input.sheets)
    stages.simulate(sm.params.trial, sm.input.population, sources, sm.wildcards.arm, int(sm.wildcards.chunk), sm.output[0])


run_script(snakemake, main)  # noqa: F821
