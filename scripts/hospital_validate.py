"""Held-out period: observed vs the baseline replications, beside the naive baseline."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.hospital import workflow as hw

hw.run_script(snakemake, lambda sm: hw.step_validate(  # noqa: F821
    sm.input.events, sm.input.model, list(sm.input.summaries), list(sm.input.cases), sm.output.figures, sm.output.hourly))
