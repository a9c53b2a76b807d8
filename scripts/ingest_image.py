"""Ingest one image (NIfTI/NRRD/DICOM) to canonical NIfTI + QC record + mid-slice PNG."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.io.imaging import ingest_image
from twinflow.workflow import run_script


def main(sm):
    row = sm.params.row
    ingest_image(row.path, sm.output.nifti, sm.output.qc, sm.output.png, patient=row.patient_id,
                 visit=row.visit, series=row.series, date=row.date, dicom_series=row.dicom_series,
                 display_path=row.path_display)


run_script(snakemake, main)  # noqa: F821
