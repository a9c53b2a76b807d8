"""Segmentation: tumour sub-regions in the brain or any organ (:mod:`twinflow.segment.oncology`,
built from :mod:`~twinflow.segment.glioma`, :mod:`~twinflow.segment.enhancing`,
:mod:`~twinflow.segment.lesion` and :mod:`~twinflow.segment.tumour_inputs`) and the left
ventricle in cine MRI (:mod:`twinflow.segment.cardiac`).  Import the submodules directly: the
package itself imports nothing (see :mod:`twinflow.provenance`)."""
