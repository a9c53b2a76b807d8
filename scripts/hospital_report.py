"""The site's offline HTML report."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.hospital import workflow as hw

hw.run_script(snakemake, lambda sm: hw.step_report(  # noqa: F821
    sm.wildcards.site, sm.input.qc, sm.input.fit, sm.input.validation, sm.input.hourly, sm.input.scenarios,
    list(sm.input.baseline), sm.output[0]))
