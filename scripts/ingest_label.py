"""Ingest an expert label onto the grid of its (already ingested) image."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.io.imaging import ingest_label
from twinflow.workflow import run_script


def main(sm):
    row = sm.params.row
    ingest_label(row.label_path, sm.input.image, sm.output.nifti, sm.output.qc, patient=row.patient_id,
                 visit=row.visit, series=row.series, display_path=row.label_display)


run_script(snakemake, main)  # noqa: F821
