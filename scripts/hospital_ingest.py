"""Read a site's event log, pseudonymise case ids, apply the QC rules."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.hospital import workflow as hw

hw.run_script(snakemake, lambda sm: hw.step_ingest(  # noqa: F821
    sm.params.site, sm.config["hospital"][sm.wildcards.site], sm.input.log, sm.output.events, sm.output.qc))
