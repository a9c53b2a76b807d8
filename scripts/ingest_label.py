"""Ingest an expert label onto the grid of its (already ingested) image."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.io.imaging import ingest_label
from twinflow.workflow import run_script


def main(sm):
    wc = sm.wildcards
    ingest_label(sm.params.image["label_path"], sm.input.image, sm.output.nifti, sm.output.qc, patient=wc.patient,
                 visit=wc.visit, series=wc.series)


run_script(snakemake, main)  # noqa: F821
