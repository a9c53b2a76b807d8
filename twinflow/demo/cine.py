"""Synthetic short-axis cine MRI of a left ventricle whose volume follows a given curve.

Used for the demo cardiac patient: the circulation model (with known parameters) gives the
LV cavity volume over one heart cycle; this module turns it into a DICOM cine series
(slices x phases single-frame files, like a scanner's export) with known geometry.

Geometry (in a local heart frame, mm): the LV cavity is a half prolate ellipsoid with its
base in the plane ``z = 0`` and apex at ``z = -L``: radius ``r(z) = R sqrt(1 - (z/L)^2)``,
volume ``2/3 pi R^2 L``.  Cavity shape is scaled isotropically with the volume
(``R, L ~ V^(1/3)``).  The myocardium is the shell between the cavity and a larger half
ellipsoid whose volume is the cavity volume plus a constant wall volume (incompressible
myocardium: LV mass / 1.05 g/ml).  A right-ventricular crescent, chest tissue and lungs give
a realistic background.  Images get partial-volume (4x supersampled in-plane), a smooth coil
sensitivity and Rician noise.

The slice stack is oblique (rotated about two axes) with 10 mm spacing between image
positions while the SliceLocation tag steps by a different amount, as real data can;
readers must sort by geometry.  Files are written under shuffled names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from twinflow.io.atomic import atomic_path


@dataclass(frozen=True)
class CineGeometry:
    n_rows: int = 160
    n_cols: int = 160
    pixel_mm: float = 1.5
    slice_gap_mm: float = 10.0
    n_slices: int = 10
    base_offset_mm: float = 4.0      # first slice this far above the base plane (outside the LV)
    wall_volume_ml: float = 130.0    # myocardial volume (mass / 1.05)
    aspect: float = 1.9              # L / R of the cavity at any volume
    rot_deg: tuple[float, float] = (25.0, -15.0)   # obliquity of the stack
    origin_mm: tuple[float, float, float] = (-110.0, -60.0, 150.0)


def _uid(*parts: str) -> str:
    h = hashlib.sha256("/".join(parts).encode()).digest()
    return "2.25." + str(int.from_bytes(h[:15], "big"))


def cavity_dims(volume_ml: float, aspect: float) -> tuple[float, float]:
    """(R, L) in mm of a half prolate ellipsoid of ``volume_ml`` with L = aspect R."""
    v = volume_ml * 1000.0
    r = (3 * v / (2 * np.pi * aspect)) ** (1 / 3)
    return r, aspect * r


def slice_masks(volume_ml: float, geom: CineGeometry, z_mm: float, xx: np.ndarray, yy: np.ndarray):
    """Cavity and myocardium fractions (0..1) of a slice at height ``z_mm`` (base plane z = 0)."""
    r, l = cavity_dims(volume_ml, geom.aspect)
    ro, lo = cavity_dims(volume_ml + geom.wall_volume_ml, geom.aspect)
    rr = np.hypot(xx, yy)
    cav = np.zeros_like(xx)
    outer = np.zeros_like(xx)
    if -l < z_mm <= 0:
        cav = (rr <= r * np.sqrt(1 - (z_mm / l) ** 2)).astype(float)
    if -lo < z_mm <= 0:
        outer = (rr <= ro * np.sqrt(1 - (z_mm / lo) ** 2)).astype(float)
    return cav, np.clip(outer - cav, 0, 1)


def truth_volumes(volume_ml: float, geom: CineGeometry) -> dict:
    """Disc-summation volumes of the noiseless masks on the slice grid (what an ideal
    segmentation would measure), next to the analytic ones."""
    ss = 8
    n = geom.n_rows * ss
    c = (np.arange(n) + 0.5) / ss * geom.pixel_mm - geom.n_rows * geom.pixel_mm / 2
    xx, yy = np.meshgrid(c, c, indexing="ij")
    cav_ml = myo_ml = 0.0
    px = (geom.pixel_mm / ss) ** 2
    for k in range(geom.n_slices):
        z = geom.base_offset_mm - k * geom.slice_gap_mm
        cav, myo = slice_masks(volume_ml, geom, z, xx, yy)
        cav_ml += cav.sum() * px * geom.slice_gap_mm / 1000
        myo_ml += myo.sum() * px * geom.slice_gap_mm / 1000
    return {"analytic_cavity_ml": volume_ml, "discs_cavity_ml": cav_ml, "discs_myocardium_ml": myo_ml}


def render(volumes_ml: np.ndarray, geom: CineGeometry, rng: np.random.Generator, noise_sigma: float = 0.03):
    """Array (slices, phases, rows, cols) of magnitude images, float in ~[0, 1.2]."""
    ss = 4
    n = geom.n_rows
    c = (np.arange(n * ss) + 0.5) / ss * geom.pixel_mm - n * geom.pixel_mm / 2
    xx, yy = np.meshgrid(c, c, indexing="ij")     # xx along rows, yy along columns
    # background: body ellipse with tissue, lungs either side, chest wall
    body = ((xx / 105) ** 2 + ((yy + 5) / 118) ** 2) <= 1
    lung_l = (((xx + 5) / 70) ** 2 + ((yy - 62) / 42) ** 2) <= 1
    lung_r = (((xx + 5) / 70) ** 2 + ((yy + 70) / 40) ** 2) <= 1
    texture = 0.05 * np.sin(xx / 7.0) * np.cos(yy / 9.0)
    base_img = np.where(body, 0.42 + texture, 0.02)
    base_img = np.where(lung_l | lung_r, 0.06, base_img)
    coil = 1.0 + 0.15 * (xx / 120) - 0.10 * (yy / 120)
    out = np.zeros((geom.n_slices, len(volumes_ml), n, n), np.float32)
    v_ed = float(np.max(volumes_ml))
    for k in range(geom.n_slices):
        z = geom.base_offset_mm - k * geom.slice_gap_mm
        for t, v in enumerate(volumes_ml):
            cav, myo = slice_masks(float(v), geom, z, xx, yy)
            # right ventricle: a crescent hugging the septum, cavity volume follows the LV
            r_o, _ = cavity_dims(v + geom.wall_volume_ml, geom.aspect)
            s = np.clip(1 + z / 80.0, 0, 1)
            rv = (((xx + 2) / (r_o + 16 * s * (v / v_ed) ** 0.5)) ** 2 + ((yy + r_o * 0.55) / (r_o * 1.25)) ** 2 <= s ** 2) \
                & ~(((xx / (r_o + 4)) ** 2 + (yy / (r_o + 4)) ** 2) <= 1)
            img = base_img.copy()
            img = np.where(rv & (s > 0), 0.95, img)
            img = img * (1 - cav - myo) + 1.05 * cav + 0.28 * myo
            img *= coil
            # partial volume: average the supersampled pixels
            img = img.reshape(n, ss, n, ss).mean(axis=(1, 3))
            if noise_sigma > 0:
                img = np.hypot(img + rng.normal(0, noise_sigma, img.shape), rng.normal(0, noise_sigma, img.shape))
            out[k, t] = img
    return out


def _frame(geom: CineGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row direction, column direction, slice normal (LPS) of the oblique stack."""
    a, b = np.deg2rad(geom.rot_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    m = ry @ rx
    return m[:, 0], m[:, 1], m[:, 2]


def write_dicom_cine(out_dir: str | Path, images: np.ndarray, geom: CineGeometry, hr_bpm: float,
                     study_key: str, study_date: str = "20000101") -> list[str]:
    """Write single-frame MR DICOM files (one per slice x phase) under shuffled names.

    Identifying attributes carry placeholders only (PatientName ``ANONYMOUS``); UIDs are
    derived deterministically from ``study_key``.  Returns the written file names.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_s, n_t = images.shape[:2]
    row_dir, col_dir, normal = _frame(geom)
    # DICOM: ImageOrientationPatient = direction of increasing column index (along a row),
    # then of increasing row index. Our arrays are [row, col].
    iop = list(col_dir) + list(row_dir)
    origin = np.asarray(geom.origin_mm)
    rr_ms = 60000.0 / hr_bpm
    scale = 1000.0
    study_uid = _uid(study_key, "study")
    series_uid = _uid(study_key, "series")
    frame_uid = _uid(study_key, "frame")
    order = np.random.default_rng(int.from_bytes(hashlib.sha256(study_key.encode()).digest()[:4], "big")).permutation(n_s * n_t)
    names = []
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for idx in range(n_s * n_t):
        k, t = divmod(idx, n_t)
        # slices go from base to apex: move against the normal
        ipp = origin - k * geom.slice_gap_mm * normal
        arr = np.clip(np.round(images[k, t] * scale), 0, 4095).astype(np.int16)
        img = sitk.GetImageFromArray(arr[None, :, :])
        img.SetSpacing((geom.pixel_mm, geom.pixel_mm, geom.slice_gap_mm))
        tags = {
            "0008|0060": "MR", "0008|0016": "1.2.840.10008.5.1.4.1.1.4",
            "0008|0018": _uid(study_key, "sop", str(idx)), "0020|000d": study_uid, "0020|000e": series_uid,
            "0020|0052": frame_uid, "0010|0010": "ANONYMOUS", "0010|0020": "ANONYMOUS",
            "0008|103e": "CINE_SAX demo", "0020|0011": "7", "0020|0013": str(int(order[idx]) + 1),
            "0020|0032": "\\".join(f"{x:.4f}" for x in ipp),
            "0020|0037": "\\".join(f"{x:.6f}" for x in iop),
            "0028|0030": f"{geom.pixel_mm:.4f}\\{geom.pixel_mm:.4f}",
            "0018|0050": "8.0", "0018|0088": f"{geom.slice_gap_mm:.1f}",
            "0020|1041": f"{-k * 6.5 + 20:.2f}",                      # deliberately not the geometry
            "0018|1060": f"{t * rr_ms / n_t:.2f}", "0018|1088": f"{hr_bpm:.0f}",
            "0028|1052": "0", "0028|1053": "1",
            # dates/times set explicitly: GDCM would stamp the current time (non-deterministic files)
            **{f"0008|00{d}": study_date for d in ("12", "20", "21", "23")},
            **{f"0008|00{t}": "000000" for t in ("13", "30", "31", "33")},
        }
        for key, val in tags.items():
            img.SetMetaData(key, val)
        name = f"IM{int(order[idx]):04d}.dcm"
        with atomic_path(out_dir / name) as tmp:
            writer.SetFileName(str(tmp))
            writer.Execute(img)
        names.append(name)
    return sorted(names)
