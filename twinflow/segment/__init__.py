"""Segmentation: tumour sub-regions from brain MRI (:mod:`twinflow.segment.oncology`)."""

from twinflow.segment.oncology import (
    LABEL_CONVENTIONS,
    LABEL_ENHANCING,
    LABEL_NECROSIS,
    LABEL_NONENHANCING,
    SegmentationResult,
    convert_label_image,
    convert_labels,
    estimate_brain_mask,
    overlay_png,
    parse_roi,
    roi_from_mask,
    roi_mask,
    score,
    segment_tumour,
)

__all__ = [
    "LABEL_CONVENTIONS",
    "LABEL_ENHANCING",
    "LABEL_NECROSIS",
    "LABEL_NONENHANCING",
    "SegmentationResult",
    "convert_label_image",
    "convert_labels",
    "estimate_brain_mask",
    "overlay_png",
    "parse_roi",
    "roi_from_mask",
    "roi_mask",
    "score",
    "segment_tumour",
]
