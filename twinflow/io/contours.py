"""Expert contours drawn as polygons in pixel coordinates, one file per DICOM image.

Format (e.g. the Sunnybrook Cardiac Data ``IM-0001-0048-icontour-manual.txt``): one vertex
per line, ``x y``, where ``x`` is the column and ``y`` the row of the DICOM pixel array,
as sub-pixel floats.  The image a file belongs to is the number in its name (``0048`` ->
image 48); :func:`dicom_slice_phase_index` maps image numbers to ``(slice, phase)`` of the
4D image that :func:`twinflow.io.imaging.read_image_with_info` builds, through the DICOM
geometry and TriggerTime, never through file order.

Pixel convention
----------------
``rasterise_polygon`` marks a pixel when its *centre* lies inside the polygon.  With the
default ``pixel_centre=0.0`` the centre of pixel ``(row r, column c)`` is at ``(x, y) =
(c, r)`` (ITK / DICOM: the pixel centre is the image position).  The Sunnybrook contours
are taken to follow this convention: the image gradient along the expert *epicardial*
contours peaks at zero shift, not at the -0.5 px the corner convention
(``pixel_centre=0.5``) implies; Dice cannot separate the two (0.877 vs 0.878).  See
docs/cardiac-segmentation.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from twinflow.errors import InputError
from twinflow.io.imaging import dicom_slots

__all__ = [
    "read_pixel_polygon",
    "read_polygons_per_image",
    "rasterise_polygon",
    "polygon_area",
    "DicomFrame",
    "dicom_slice_phase_index",
    "image_number_from_name",
]

#: default file-name pattern: the image number is the last group of digits before "-<kind>contour"
#: (Sunnybrook: IM-0001-0048-icontour-manual.txt -> 48); otherwise the last number in the name
_SUNNYBROOK_NAME = re.compile(r"-(\d+)-[a-z]*contour", re.IGNORECASE)
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def image_number_from_name(name: str) -> int | None:
    """The image number a contour or DICOM file name refers to (None if there is none)."""
    m = _SUNNYBROOK_NAME.search(name) or _LAST_NUMBER.search(name)
    return None if m is None else int(m.group(1))


def read_pixel_polygon(path: str | Path, *, patient: str | None = None) -> np.ndarray:
    """Vertices ``(n, 2)`` as float ``(x = column, y = row)`` from a text file of ``x y`` lines."""
    path = Path(path)
    pts = []
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("contour file cannot be read", patient=patient, path=path) from exc
    for i, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.replace(",", " ").split()
        try:
            xy = [float(p) for p in parts]
        except ValueError:
            xy = []
        if len(xy) != 2 or not all(np.isfinite(xy)):
            raise InputError(f"line {i} is not an 'x y' pixel coordinate pair", patient=patient, path=path)
        pts.append(xy)
    if len(pts) < 3:
        raise InputError(f"contour has {len(pts)} vertices; a polygon needs at least 3", patient=patient, path=path)
    return np.asarray(pts, dtype=float)


def read_polygons_per_image(
    folder: str | Path, *, pattern: str = "*.txt", patient: str | None = None
) -> dict[int, np.ndarray]:
    """All polygon files in ``folder`` keyed by image number (sorted by number)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("contour folder not found", patient=patient, path=folder)
    out: dict[int, np.ndarray] = {}
    for f in sorted(folder.glob(pattern)):
        n = image_number_from_name(f.name)
        if n is None:
            raise InputError(f"contour file {f.name!r} names no image number", patient=patient, path=folder)
        if n in out:
            raise InputError(f"two contour files for image {n}", patient=patient, path=folder)
        out[n] = read_pixel_polygon(f, patient=patient)
    return dict(sorted(out.items()))


def polygon_area(points: np.ndarray) -> float:
    """Area (pixel units) of a closed polygon by the shoelace formula."""
    x, y = np.asarray(points, dtype=float).T
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def rasterise_polygon(points: np.ndarray, shape: tuple[int, int], *, pixel_centre: float = 0.0) -> np.ndarray:
    """Boolean mask ``shape = (rows, columns)``: pixels whose centre is inside the polygon.

    ``points`` are ``(x = column, y = row)``.  The centre of pixel ``(r, c)`` is taken at
    ``(c + pixel_centre, r + pixel_centre)``: 0.0 when vertex coordinates are pixel
    indices (DICOM/ITK), 0.5 when they are measured from the outer corner of the first
    pixel.  Even-odd rule, so self-intersecting input still gives a defined mask.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        raise ValueError("points must be an (n >= 3, 2) array of (x, y)")
    nr, nc = int(shape[0]), int(shape[1])
    mask = np.zeros((nr, nc), dtype=bool)
    # restrict to the bounding box
    x0 = max(int(np.floor(pts[:, 0].min() - pixel_centre)), 0)
    x1 = min(int(np.ceil(pts[:, 0].max() - pixel_centre)) + 1, nc)
    y0 = max(int(np.floor(pts[:, 1].min() - pixel_centre)), 0)
    y1 = min(int(np.ceil(pts[:, 1].max() - pixel_centre)) + 1, nr)
    if x1 <= x0 or y1 <= y0:
        return mask
    ys = np.arange(y0, y1, dtype=float) + pixel_centre
    xs = np.arange(x0, x1, dtype=float) + pixel_centre
    xa, ya = pts[:, 0], pts[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    inside = np.zeros((len(ys), len(xs)), dtype=bool)
    for e in range(len(pts)):
        if ya[e] == yb[e]:
            continue  # horizontal edges never cross a scan line in the half-open rule
        # rows whose centre is in [min y, max y) cross this edge
        crosses = (ys >= min(ya[e], yb[e])) & (ys < max(ya[e], yb[e]))
        if not np.any(crosses):
            continue
        xcross = xa[e] + (ys[crosses] - ya[e]) * (xb[e] - xa[e]) / (yb[e] - ya[e])
        inside[crosses] ^= xs[None, :] < xcross[:, None]
    mask[y0:y1, x0:x1] = inside
    return mask


# ------------------------------------------------------------------ DICOM image -> (slice, phase)


@dataclass(frozen=True)
class DicomFrame:
    """Where one DICOM file sits in the 4D image: slice index along the normal, phase index."""

    file_name: str
    image_number: int | None  # from the file name (Sunnybrook: N.dcm is image N)
    instance_number: int | None  # InstanceNumber (0020|0013), for cross-checking only
    slice: int
    phase: int
    position_mm: float  # ImagePositionPatient projected on the slice normal
    trigger_time_ms: float | None


def dicom_slice_phase_index(directory: str | Path, *, patient: str | None = None) -> list[DicomFrame]:
    """``(slice, phase)`` of every file in a single-series DICOM cine directory.

    Delegates to :func:`twinflow.io.imaging.dicom_slots`, the very ordering the image reader
    uses (so expert contours can never be mapped differently from the volume): slices are
    ordered by ImagePositionPatient projected on the normal ``row x col`` of
    ImageOrientationPatient (ascending), phases by TriggerTime (ties by file name).  The
    result is sorted by (slice, phase).  File names, InstanceNumber and SliceLocation are
    not used for ordering.
    """
    out = []
    for slot in dicom_slots(directory, patient=patient):
        stem = slot.file_name[:-4] if slot.file_name.lower().endswith(".dcm") else slot.file_name
        out.append(DicomFrame(slot.file_name, int(stem) if stem.isdigit() else None, slot.instance_number,
                              slot.slice, slot.phase, slot.position_mm, slot.trigger_time_ms))
    return out
