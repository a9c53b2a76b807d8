"""Deterministic PNG encoding of uint8 grey or RGB arrays (SimpleITK's PNG writer, which
stamps no time), shared by the ingest QC images and the segmentation overlays."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from twinflow.io.atomic import write_bytes


def encode_png(arr: np.ndarray) -> bytes:
    """PNG bytes of a [rows, cols] (grey) or [rows, cols, 3] (RGB) uint8 array."""
    a = np.ascontiguousarray(arr, dtype=np.uint8)
    img = sitk.GetImageFromArray(a, isVector=a.ndim == 3)
    with tempfile.TemporaryDirectory(prefix="twinflow-png-") as tmpdir:
        tmp = Path(tmpdir) / "image.png"
        sitk.WriteImage(img, str(tmp))
        return tmp.read_bytes()


def write_png(path: str | Path, arr: np.ndarray) -> None:
    write_bytes(path, encode_png(arr))
