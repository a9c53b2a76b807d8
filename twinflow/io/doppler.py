"""Spectral Doppler from a DICOM ultrasound image: axes, maximum-velocity envelope, QC image.

The Sequence of Ultrasound Regions (0018,6011) describes the regions of an ultrasound image.
The spectral Doppler region is the one with Region Spatial Format (0018,6012) = 3 (spectral)
and Region Data Type (0018,6014) = 3 (PW) or 4 (CW spectral Doppler); its Physical Units X/Y
Direction (0018,6024/6026) must be 4 (seconds) and 7 (cm/s).  A pixel column ``x`` and row
``y`` of the image map to

    t = (x - (x0 + ref_x)) * dx + ref_value_x        (s)
    v = (y - (y0 + ref_y)) * dy + ref_value_y        (cm/s)

with the region's top-left corner ``(x0, y0)`` = Region Location Min X0/Y0 (0018,6018/601A),
the Reference Pixel X0/Y0 (0018,6020/6022, relative to the region's corner as the standard
defines it; ``ref_y`` is the zero-velocity baseline row), Physical Delta X/Y (0018,602C/602E;
``dy`` is negative on a display with flow towards the probe above the baseline) and the
Reference Pixel Physical Value X/Y (0018,6028/602A).

**Envelope.**  Inside the region only: the image (luminance for colour images, the last frame
of a multi-frame image) is median-filtered (3x3) and thresholded by Otsu's method (the level that best
separates the dark background from the spectrum on the flow side of the baseline, the half
with more signal).  In each column a row belongs to the spectrum
when at least 60 % of the :data:`SUSTAIN_PX` rows around it are bright (speckle holes are
bridged, isolated bright pixels do not count); the envelope is the outermost such row of a
column whose rows from the wall-filter band (:data:`WALL_FILTER_PX` rows next to the baseline,
left dark by the scanner's wall filter) up to it are mostly bright, refined to a sub-pixel
position where the intensity crosses the threshold.

**Privacy.**  Only the spectral region's pixels are read and drawn: burned-in text in the
header of the image (patient name, ID, date) never reaches an output, and no DICOM attribute
other than the geometry above, Modality, Rows/Columns and the pixel format is read.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twinflow.errors import InputError

WALL_FILTER_PX = 3
SUSTAIN_PX = 5
UNIT_SECONDS, UNIT_CM_S = 4, 7
SPECTRAL_FORMAT, PW_DOPPLER, CW_DOPPLER = 3, 3, 4


@dataclass
class SpectralRegion:
    x0: int
    y0: int
    x1: int
    y1: int
    ref_x: int          # relative to x0
    ref_y: int          # relative to y0: the baseline row
    dx_s: float
    dy_cm_s: float
    ref_value_x: float
    ref_value_y: float
    data_type: int

    @property
    def baseline_row(self) -> int:
        """Baseline row inside the region (0 = the region's top row)."""
        return self.ref_y

    def time_s(self, col: np.ndarray) -> np.ndarray:
        return (np.asarray(col, float) - self.ref_x) * self.dx_s + self.ref_value_x

    def velocity_cm_s(self, row: np.ndarray) -> np.ndarray:
        return (np.asarray(row, float) - self.ref_y) * self.dy_cm_s + self.ref_value_y

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _item_value(item, keyword: str, tag: int, err):
    if keyword not in item:
        raise err(f"the spectral Doppler region has no {keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})")
    return item[keyword].value


def spectral_region(ds, err) -> SpectralRegion:
    seq = ds.get("SequenceOfUltrasoundRegions")
    if not seq:
        raise err("no Sequence of Ultrasound Regions (0018,6011): cannot locate a spectral Doppler region")
    found = [it for it in seq if int(it.get("RegionSpatialFormat", -1)) == SPECTRAL_FORMAT
             and int(it.get("RegionDataType", -1)) in (PW_DOPPLER, CW_DOPPLER)]
    if not found:
        kinds = ", ".join(f"format {int(it.get('RegionSpatialFormat', -1))}/type {int(it.get('RegionDataType', -1))}"
                          for it in seq)
        raise err(f"no spectral Doppler region (spatial format 3, data type 3 or 4) among {len(seq)} region(s): "
                  f"{kinds}")
    it = found[0]
    ux, uy = int(_item_value(it, "PhysicalUnitsXDirection", 0x00186024, err)), \
        int(_item_value(it, "PhysicalUnitsYDirection", 0x00186026, err))
    if ux != UNIT_SECONDS or uy != UNIT_CM_S:
        raise err(f"spectral region units are X={ux}, Y={uy}; expected 4 (seconds) and 7 (cm/s)")
    reg = SpectralRegion(
        x0=int(_item_value(it, "RegionLocationMinX0", 0x00186018, err)),
        y0=int(_item_value(it, "RegionLocationMinY0", 0x0018601A, err)),
        x1=int(_item_value(it, "RegionLocationMaxX1", 0x0018601C, err)),
        y1=int(_item_value(it, "RegionLocationMaxY1", 0x0018601E, err)),
        ref_x=int(it.get("ReferencePixelX0", 0) or 0),
        ref_y=int(_item_value(it, "ReferencePixelY0", 0x00186022, err)),
        dx_s=float(_item_value(it, "PhysicalDeltaX", 0x0018602C, err)),
        dy_cm_s=float(_item_value(it, "PhysicalDeltaY", 0x0018602E, err)),
        ref_value_x=float(it.get("ReferencePixelPhysicalValueX", 0.0) or 0.0),
        ref_value_y=float(it.get("ReferencePixelPhysicalValueY", 0.0) or 0.0),
        data_type=int(it.get("RegionDataType")))
    rows, cols = int(ds.Rows), int(ds.Columns)
    if not (0 <= reg.x0 < reg.x1 < cols and 0 <= reg.y0 < reg.y1 < rows):
        raise err(f"spectral region ({reg.x0},{reg.y0})-({reg.x1},{reg.y1}) lies outside the {cols}x{rows} image")
    if not (0 < reg.ref_y < reg.y1 - reg.y0):
        raise err(f"the baseline row (Reference Pixel Y0 = {reg.ref_y}) is not inside the spectral region")
    if reg.dx_s <= 0 or reg.dy_cm_s == 0:
        raise err(f"physical deltas must be dx > 0 s and dy != 0 cm/s, got {reg.dx_s}, {reg.dy_cm_s}")
    return reg


def _luminance(arr: np.ndarray, ds) -> np.ndarray:
    a = np.asarray(arr, float)
    spp = int(getattr(ds, "SamplesPerPixel", 1))
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        a = a[-1]
    if spp == 3:
        a = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
    return a


def read_region(path: str | Path, *, patient: str | None = None, display_path: str | None = None):
    """(region geometry, region pixels as float) of a DICOM file; InputError for any problem."""
    import pydicom

    shown = display_path or str(path)

    def err(problem: str) -> InputError:
        return InputError(problem, patient=patient, path=shown)

    p = Path(path)
    if not p.is_file():
        raise err("file not found")
    try:
        ds = pydicom.dcmread(str(p))
    except Exception as exc:
        raise err(f"not a readable DICOM file ({type(exc).__name__})") from None
    if str(getattr(ds, "Modality", "")) != "US":
        raise err(f"modality is {getattr(ds, 'Modality', 'missing')!r}, not US (ultrasound)")
    reg = spectral_region(ds, err)
    try:                                 # pydicom converts YBR colour to RGB
        arr = ds.pixel_array
    except Exception as exc:
        raise err(f"cannot decode the pixel data ({type(exc).__name__}: compressed transfer syntaxes need "
                  "the matching pydicom pixel-data plug-in)") from None
    img = _luminance(arr, ds)
    return reg, img[reg.y0:reg.y1 + 1, reg.x0:reg.x1 + 1].copy()


@dataclass
class Envelope:
    t_s: np.ndarray
    v_cm_s: np.ndarray            # magnitude; NaN where a column has no signal
    rows: np.ndarray              # sub-pixel envelope row inside the region (NaN: none)
    side: str                     # "above" or "below" the baseline
    threshold: float


def otsu_threshold(x: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the level that maximises the between-class variance of ``x``."""
    hist, edges = np.histogram(np.asarray(x, float).ravel(), bins=bins)
    p = hist.astype(float) / max(hist.sum(), 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(p)
    m0 = np.cumsum(p * centres)
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m0) ** 2 / (w0 * (1.0 - w0))
    between[~np.isfinite(between)] = -1.0
    return float(edges[int(np.argmax(between)) + 1])


def trace_envelope(pix: np.ndarray, reg: SpectralRegion) -> Envelope:
    """Maximum-velocity envelope of a spectral region (see the module docstring)."""
    from scipy.ndimage import median_filter

    g = median_filter(np.asarray(pix, float), size=3, mode="nearest")
    b = reg.baseline_row
    above = g[:b][::-1]                  # row 0 = just above the baseline, going outward
    below = g[b + 1:]
    halves = {"above": above, "below": below}
    energy = {k: float(np.sum(np.clip(h - np.median(h), 0, None))) if h.size else 0.0 for k, h in halves.items()}
    side = max(sorted(energy), key=lambda k: energy[k])
    h = halves[side]
    if h.shape[0] <= WALL_FILTER_PX + 2:
        raise ValueError("the spectral region has no room for flow on the chosen side of the baseline")
    thr = otsu_threshold(h)
    bright = h > thr
    n_rows, n_cols = h.shape
    # a row belongs to the spectrum when most of the SUSTAIN_PX rows around it are bright
    # (speckle holes and isolated bright pixels do not count); the envelope is the outermost
    # such row of a spectrum that is mostly bright from the wall-filter band up to it
    from scipy.ndimage import uniform_filter1d

    sustained = uniform_filter1d(bright.astype(float), size=SUSTAIN_PX, axis=0, mode="constant") >= 0.6
    sustained[:WALL_FILTER_PX] = False
    rows = np.full(n_cols, np.nan)
    for c in range(n_cols):
        idx = np.nonzero(sustained[:, c])[0]
        if idx.size == 0:
            continue
        far = int(idx[-1])
        if bright[WALL_FILTER_PX:far + 1, c].mean() < 0.5:
            continue
        i = min(far + SUSTAIN_PX // 2, n_rows - 1)
        while i > WALL_FILTER_PX and not bright[i, c]:      # the last bright pixel of the run
            i -= 1
        edge = float(i)
        if i + 1 < n_rows:
            a, bb = h[i, c], h[i + 1, c]
            if a > thr >= bb and a != bb:
                edge = i + (a - thr) / (a - bb)
        rows[c] = edge
    dist = rows + 1.0                                   # rows from the baseline (above: row 0 = 1 px away)
    v = np.abs(dist * reg.dy_cm_s) + (reg.ref_value_y if side == "above" else -reg.ref_value_y)
    region_rows = np.where(np.isnan(rows), np.nan, (b - dist) if side == "above" else (b + dist))
    return Envelope(t_s=reg.time_s(np.arange(n_cols)), v_cm_s=v, rows=region_rows, side=side, threshold=thr)


def qc_png(pix: np.ndarray, reg: SpectralRegion, env: Envelope, analysis: Any | None = None,
           title: str = "") -> bytes:
    """The spectral region (only) with the traced envelope, cycle feet and systolic peaks."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = pix.shape
    fig, ax = plt.subplots(figsize=(8, 8 * h / w + 0.6), dpi=100)
    t0, t1 = float(reg.time_s(0)), float(reg.time_s(w - 1))
    v_top, v_bot = float(reg.velocity_cm_s(0)), float(reg.velocity_cm_s(h - 1))
    ax.imshow(pix, cmap="gray", aspect="auto", extent=(t0, t1, v_bot, v_top), interpolation="nearest")
    sign = 1.0 if env.side == ("above" if reg.dy_cm_s < 0 else "below") else -1.0
    ax.plot(env.t_s, sign * env.v_cm_s, color="red", lw=1.0, label="max-velocity envelope")
    if analysis is not None:
        for c in analysis.cycles:
            ax.axvline(c.start_s, color="cyan", lw=0.6)
            ax.plot([c.peak_s], [sign * c.psv_cm_s], "y^", ms=5)
        ax.plot([], [], color="cyan", lw=0.6, label="cycle feet")
        ax.set_title(title or f"PI {analysis.pi:.2f}  RI {analysis.ri:.2f}  HR {analysis.heart_rate_bpm:.0f}/min"
                     f"  notch {'yes' if analysis.notch else 'no'}", fontsize=9)
    ax.axhline(0.0, color="white", lw=0.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("velocity (cm/s)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def analyse_dicom(path: str | Path, *, patient: str | None = None, display_path: str | None = None) -> dict[str, Any]:
    """Read, trace and measure one spectral Doppler DICOM.

    Returns ``region`` (geometry), ``envelope`` (t_s, v_cm_s lists), ``indices``
    (:class:`twinflow.models.pregnancy.waveform.WaveformIndices`), ``qc_png`` (bytes), and the
    pixels' ``side`` of the baseline.  InputError when there is no measurable waveform.
    """
    from twinflow.models.pregnancy.waveform import WaveformError, analyse

    shown = display_path or str(path)
    reg, pix = read_region(path, patient=patient, display_path=shown)
    try:
        env = trace_envelope(pix, reg)
        ok = np.isfinite(env.v_cm_s)
        if ok.mean() < 0.5:
            raise WaveformError(f"only {100 * ok.mean():.0f} % of the sweep has a traceable spectrum")
        indices = analyse(env.t_s, env.v_cm_s)
    except (ValueError, WaveformError) as exc:
        raise InputError(f"spectral Doppler: {exc}", patient=patient, path=shown) from None
    return {"region": reg.to_dict(), "side": env.side, "threshold": env.threshold,
            "envelope": {"t_s": env.t_s.tolist(), "v_cm_s": [None if not math.isfinite(x) else float(x)
                                                              for x in env.v_cm_s]},
            "indices": indices, "qc_png": qc_png(pix, reg, env, indices)}
