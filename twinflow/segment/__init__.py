"""Segmentation: brain tumour sub-regions (:mod:`twinflow.segment.oncology`) and the
left ventricle in cine MRI (:mod:`twinflow.segment.cardiac`).  Import the submodules
directly: the package itself imports nothing (see :mod:`twinflow.provenance`)."""
