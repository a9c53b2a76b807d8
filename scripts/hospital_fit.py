"""Fit the site's model on the training period."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.hospital import workflow as hw

hw.run_script(snakemake, lambda sm: hw.step_fit(sm.params.site, sm.input.events, sm.output.model, sm.output.fit))  # noqa: F821
