"""Software versions, resolved config and sheet digests of this run."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.twin.runinfo import write_resolved_config, write_sheet_digests, write_software_versions
from twinflow.workflow import run_script


def main(sm):
    write_software_versions(sm.output.software)
    write_resolved_config(dict(sm.params.config), sm.output.config)
    write_sheet_digests(dict(sm.params.sheets), sm.output.sheets)


run_script(snakemake, main)  # noqa: F821
