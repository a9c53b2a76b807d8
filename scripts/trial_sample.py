"""Draw, screen and randomise a trial's virtual patients from the cohort's twins."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821

from twinflow.trials import stages
from twinflow.workflow import run_script


def main(sm):
    sources = stages.load_sources(sm.input.twins, sm.input.sheets)
    stages.sample(sm.params.trial, sources, sm.output.population, sm.output.summary)


run_script(snakemake, main)  # noqa: F821
