"""Ingest one image (NIfTI/NRRD/DICOM) to canonical NIfTI + QC record + mid-slice PNG."""
import sys; sys.path.insert(0, snakemake.scriptdir + "/..")  # noqa: E702,F821
from twinflow.io.imaging import ingest_image
from twinflow.workflow import run_script


def main(sm):
    img, wc = sm.params.image, sm.wildcards
    ingest_image(img["path"], sm.output.nifti, sm.output.qc, sm.output.png, patient=wc.patient, visit=wc.visit,
                 series=wc.series, date=img["date"], dicom_series=img["dicom_series"])


run_script(snakemake, main)  # noqa: F821
