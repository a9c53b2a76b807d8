"""Image ingest: read NIfTI / NRRD / DICOM, write canonical NIfTI + QC JSON + PNG.

Reading
-------
:func:`read_image` accepts ``.nii``, ``.nii.gz``, ``.nrrd``, ``.nhdr`` files and DICOM
directories (a single ``.dcm`` file is read as a one-file series).  Any failure raises
:class:`twinflow.errors.InputError` naming the patient, the file (``display_path`` if
given) and the problem.

DICOM directories are grouped by SeriesInstanceUID (0020|000e); with several series the
caller must choose one (``dicom_series`` = SeriesInstanceUID or SeriesNumber).  Within a
series files are sorted by *geometry only*: ImagePositionPatient (0020|0032) projected on
the slice normal ``row x col`` of ImageOrientationPatient (0020|0037).  File names,
InstanceNumber and SliceLocation are never used for ordering (SliceLocation is only
compared with the geometry and a disagreement is reported).  Several files at one position
make a cine / multi-phase series: each position is sorted by TriggerTime (0018|1060), all
positions must have the same number of phases, and the result is a 4D image
(x, y, z, t) whose z spacing is the true distance between positions and whose t spacing
is the median TriggerTime step in milliseconds.

Canonical orientation (verified with nibabel)
---------------------------------------------
Images are stored in ITK/DICOM physical space, which is LPS+ (x to the patient's Left,
y Posterior, z Superior).  NIfTI world space is RAS+; ITK's NIfTI writer converts by
negating x and y.  ``sitk.DICOMOrient(img, "RAS")`` permutes/flips the voxel axes (no
resampling) so that voxel axis 0 runs towards Right, axis 1 towards Anterior and axis 2
towards Superior (ITK direction matrix ``diag(-1, -1, 1)`` for an axial image); the
written NIfTI then has ``nibabel.aff2axcodes(affine) == ('R', 'A', 'S')``.  (The code
``"LPS"`` gives the identity direction and ``('L', 'P', 'S')`` in nibabel.)  For oblique
acquisitions the codes name the closest axis.  4D images are reoriented frame by frame
and re-joined.  :func:`canonicalise` checks the result and fails loudly if a SimpleITK
version ever changed this convention.

Outputs
-------
* NIfTI: intensity images float32, labels uint8 (int16 / int32 if values need it); the
  metadata dictionary is emptied before writing, so ``descrip``, ``intent_name`` and
  ``aux_file`` are empty and there are no header extensions.  For 4D images the time
  unit is set to milliseconds (``xyzt_units`` = mm + ms; ITK would claim seconds).
  ``.nii.gz`` is gzipped with :func:`twinflow.io.atomic.gzip_bytes` (mtime 0, no name).
  (SimpleITK's own gzip stream was checked to carry mtime 0 as well; we compress
  ourselves because the header is patched before compression.)
* QC JSON (sorted keys, fixed float format): no names, IDs, DICOM dates, UIDs or paths.
* PNG: mid slice (first frame for 4D) windowed at p01..p99 to uint8, shown in
  radiological convention (anterior/superior up, patient's right on the viewer's left).
  The cut is axial (across canonical S) unless another canonical axis is clearly the
  acquisition's slice axis (see :func:`slice_axis`); QC ``png`` records which.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from twinflow.errors import InputError
from twinflow.io.atomic import gzip_bytes, write_bytes, write_json

__all__ = [
    "read_image",
    "canonicalise",
    "write_nifti",
    "ingest_image",
    "ingest_label",
    "ras_affine",
    "SUPPORTED_SUFFIXES",
]

SUPPORTED_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr")

# DICOM tags (group|element, as SimpleITK/GDCM spell them)
TAG_SERIES_UID = "0020|000e"
TAG_SERIES_NUMBER = "0020|0011"
TAG_SERIES_DESCRIPTION = "0008|103e"
TAG_IPP = "0020|0032"
TAG_IOP = "0020|0037"
TAG_SLICE_LOCATION = "0020|1041"
TAG_TRIGGER_TIME = "0018|1060"
TAG_SLICE_THICKNESS = "0018|0050"
TAG_INSTANCE_NUMBER = "0020|0013"

#: two files whose positions along the normal differ by less than this are one slice
POSITION_TOLERANCE_MM = 0.01
#: a slice position further than this fraction of the step from a uniform grid -> InputError
IRREGULAR_SPACING_ERROR = 0.05
#: ... further than this fraction (and > POSITION_TOLERANCE_MM) -> QC flag only
IRREGULAR_SPACING_FLAG = 0.005
#: IOP cosines that differ by more than this between files -> InputError
ORIENTATION_TOLERANCE = 1e-4
#: anisotropy ratio (largest / smallest spacing) above which QC flags the image
ANISOTROPY_FLAG_RATIO = 3.0
#: a per-position TriggerTime step deviating from the overall median by more than this fraction
FRAME_INTERVAL_VARIATION_FLAG = 0.05

_NIFTI_UNITS_MM = 2
_NIFTI_UNITS_MSEC = 16
_NIFTI_XYZT_UNITS_OFFSET = 123  # byte offset of xyzt_units in the NIfTI-1 header

# ITK direction (LPS) -> NIfTI world (RAS)
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


# ----------------------------------------------------------------------------- reading


@dataclass
class ReadInfo:
    """What the reader learnt about the source, for QC (nothing identifying)."""

    source_format: str
    frame_interval_ms: float | None = None
    dicom: dict[str, Any] | None = None
    flags: list[str] = field(default_factory=list)


def _err(problem: str, patient: str | None, shown: str | Path) -> InputError:
    return InputError(problem, patient=patient, path=shown)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suf in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".dcm"):
        if name.endswith(suf):
            return suf
    return path.suffix.lower()


def read_image(
    path: str | Path,
    *,
    patient: str | None = None,
    dicom_series: str | int | None = None,
    display_path: str | Path | None = None,
) -> sitk.Image:
    """Read a NIfTI / NRRD file or a DICOM directory into a 3D or 4D SimpleITK image.

    The image is returned in its native voxel order (not yet canonical).  Every failure
    raises :class:`InputError` naming ``patient`` and ``display_path or path``.
    """
    img, _ = read_image_with_info(path, patient=patient, dicom_series=dicom_series, display_path=display_path)
    return img


def read_image_with_info(
    path: str | Path,
    *,
    patient: str | None = None,
    dicom_series: str | int | None = None,
    display_path: str | Path | None = None,
) -> tuple[sitk.Image, ReadInfo]:
    """Like :func:`read_image`, also returning a :class:`ReadInfo` for QC."""
    path = Path(path)
    shown = display_path if display_path is not None else path
    if not path.exists():
        raise _err("file or directory not found", patient, shown)
    if path.is_dir():
        img, info = _read_dicom_dir(path, patient, shown, dicom_series)
    else:
        suf = _suffix(path)
        if suf == ".dcm":
            img, info = _read_dicom_files([path], patient, shown, dicom_series)
        elif suf in SUPPORTED_SUFFIXES:
            img, info = _read_file(path, suf, patient, shown)
        else:
            raise _err(
                f"unsupported image format {suf or '(no extension)'!r}; expected "
                ".nii, .nii.gz, .nrrd, .nhdr or a DICOM directory",
                patient,
                shown,
            )
    return img, info


def _read_file(path: Path, suf: str, patient: str | None, shown: str | Path) -> tuple[sitk.Image, ReadInfo]:
    fmt = "nifti" if suf.startswith(".nii") else "nrrd"
    not_readable = f"cannot be read as {fmt.upper()} (corrupt, truncated or not a {fmt.upper()} file)"
    reader = sitk.ImageFileReader()
    reader.SetImageIO("NiftiImageIO" if fmt == "nifti" else "NrrdImageIO")
    reader.SetFileName(str(path))
    try:
        if fmt == "nifti":
            reader.ReadImageInformation()
            img = _nifti_voxels_with_itk_geometry(path, reader, patient, shown)
        else:
            img = reader.Execute()
    except RuntimeError as exc:
        raise _err(not_readable, patient, shown) from exc
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise _err(
            f"has {img.GetNumberOfComponentsPerPixel()} components per voxel; only scalar images are supported",
            patient,
            shown,
        )
    info = ReadInfo(source_format=fmt)
    dim = img.GetDimension()
    if dim == 2:
        img = sitk.JoinSeries([img])
    elif dim == 4:
        if img.GetSize()[3] == 1:
            img = img[:, :, :, 0]
        else:
            info.frame_interval_ms = _time_step_ms(path, fmt, img.GetSpacing()[3])
            if info.frame_interval_ms is not None:  # store the 4th spacing in ms
                img.SetSpacing(tuple(img.GetSpacing()[:3]) + (info.frame_interval_ms,))
    elif dim != 3:
        raise _err(f"has {dim} dimensions; only 2D, 3D and 4D images are supported", patient, shown)
    if any(s < 1 for s in img.GetSize()):
        raise _err("image is empty", patient, shown)
    _check_geometry(img, patient, shown)
    return img, info


def _nifti_voxels_with_itk_geometry(
    path: Path, reader: sitk.ImageFileReader, patient: str | None, shown: str | Path
) -> sitk.Image:
    """NIfTI voxels read by nibabel, geometry (qform/sform -> LPS) by ITK.

    ITK 5.4's NIfTI reader silently returns 0 for NaN/inf voxels and zero-fills a
    truncated uncompressed file; nibabel keeps non-finite values and fails on truncation.
    """
    import nibabel as nib

    if reader.GetNumberOfComponents() != 1:
        raise _err(
            f"has {reader.GetNumberOfComponents()} components per voxel; only scalar images are supported",
            patient,
            shown,
        )
    try:
        nimg = nib.load(str(path))
        data = np.asanyarray(nimg.dataobj)
    except Exception as exc:  # nibabel raises many types (EOFError, ValueError, OSError, ...)
        raise _err("image data cannot be read (truncated or corrupt file)", patient, shown) from exc
    size = tuple(int(x) for x in reader.GetSize())

    def trim(shape: tuple[int, ...]) -> tuple[int, ...]:
        shape = tuple(shape)
        while len(shape) > 1 and shape[-1] == 1:
            shape = shape[:-1]
        return shape

    if trim(data.shape) != trim(size):
        raise _err(f"NIfTI data shape {tuple(data.shape)} does not match its header {size}", patient, shown)
    if data.dtype.kind not in "biuf" or data.dtype.fields is not None:
        raise _err(f"unsupported NIfTI voxel type {data.dtype}", patient, shown)
    if data.dtype.kind == "b":
        data = data.astype(np.uint8)
    elif data.dtype.kind == "f" and data.dtype.itemsize < 4:
        data = data.astype(np.float32)
    data = data.reshape(size)
    img = sitk.GetImageFromArray(np.ascontiguousarray(data.T), isVector=False)
    img.SetSpacing(reader.GetSpacing())
    img.SetOrigin(reader.GetOrigin())
    img.SetDirection(reader.GetDirection())
    return img


def _time_step_ms(path: Path, fmt: str, spacing_t: float) -> float | None:
    """The 4th-axis spacing in ms when the file states a time unit (NIfTI), else None."""
    if fmt != "nifti":
        return None
    import nibabel as nib

    try:
        _, t_unit = nib.load(str(path)).header.get_xyzt_units()
    except Exception:  # header already read by ITK; unit is best effort
        return None
    scale = {"sec": 1000.0, "msec": 1.0, "usec": 1e-3}.get(t_unit)
    return None if scale is None else float(spacing_t) * scale


def _check_geometry(img: sitk.Image, patient: str | None, shown: str | Path) -> None:
    sp = np.asarray(img.GetSpacing()[:3], dtype=float)
    if not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise _err(f"invalid voxel spacing {tuple(float(x) for x in sp)}", patient, shown)
    d = direction3(img)
    if not np.all(np.isfinite(d)) or not np.allclose(d.T @ d, np.eye(3), atol=1e-4):
        raise _err("direction cosines are not orthonormal", patient, shown)
    if not np.all(np.isfinite(img.GetOrigin())):
        raise _err("origin is not finite", patient, shown)


# ------------------------------------------------------------------------------ DICOM


@dataclass
class _DicomFile:
    path: Path
    series_uid: str
    series_number: str
    description: str
    size: tuple[int, ...]
    spacing_xy: tuple[float, float]
    ipp: np.ndarray
    iop: np.ndarray
    slice_location: float | None
    trigger_time: float | None
    slice_thickness: float | None
    instance_number: int | None = None


def _tag(reader: sitk.ImageFileReader, key: str) -> str | None:
    if not reader.HasMetaDataKey(key):
        return None
    value = reader.GetMetaData(key).strip().strip("\x00").strip()
    return value or None


def _floats(text: str | None) -> np.ndarray | None:
    if text is None:
        return None
    try:
        return np.array([float(x) for x in text.split("\\")], dtype=float)
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    v = _floats(text)
    return None if v is None or v.size != 1 or not np.isfinite(v[0]) else float(v[0])


def _list_dicom_dir(path: Path, patient: str | None, shown: str | Path) -> list[Path]:
    files = sorted(
        p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and p.name.upper() != "DICOMDIR"
    )
    if not files:
        raise _err("DICOM directory contains no files", patient, shown)
    return files


def _read_dicom_dir(path: Path, patient: str | None, shown: str | Path, dicom_series: str | int | None):
    return _read_dicom_files(_list_dicom_dir(path, patient, shown), patient, shown, dicom_series)


def _read_header(f: Path, patient: str | None, shown: str | Path, label: str) -> _DicomFile:
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(str(f))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise _err(f"{label} is not a readable DICOM file", patient, shown) from exc
    size = tuple(int(s) for s in reader.GetSize())
    if len(size) == 3 and size[2] != 1:
        raise _err(f"{label} is a multi-frame DICOM file ({size[2]} frames); not supported", patient, shown)
    ipp = _floats(_tag(reader, TAG_IPP))
    iop = _floats(_tag(reader, TAG_IOP))
    if ipp is None or ipp.size != 3 or not np.all(np.isfinite(ipp)):
        raise _err(f"{label} has no valid ImagePositionPatient (0020|0032)", patient, shown)
    if iop is None or iop.size != 6 or not np.all(np.isfinite(iop)):
        raise _err(f"{label} has no valid ImageOrientationPatient (0020|0037)", patient, shown)
    sp = reader.GetSpacing()
    return _DicomFile(
        path=f,
        series_uid=_tag(reader, TAG_SERIES_UID) or "",
        series_number=_tag(reader, TAG_SERIES_NUMBER) or "",
        description=_tag(reader, TAG_SERIES_DESCRIPTION) or "",
        size=size[:2],
        spacing_xy=(float(sp[0]), float(sp[1])),
        ipp=ipp,
        iop=iop,
        slice_location=_float(_tag(reader, TAG_SLICE_LOCATION)),
        trigger_time=_float(_tag(reader, TAG_TRIGGER_TIME)),
        slice_thickness=_float(_tag(reader, TAG_SLICE_THICKNESS)),
        instance_number=_int(_tag(reader, TAG_INSTANCE_NUMBER)),
    )


def _int(text: str | None) -> int | None:
    f = _float(text)
    return int(f) if f is not None and f.is_integer() else None


def _series_number_text(n: str) -> str:
    try:
        return str(int(float(n)))
    except ValueError:
        return n


def _select_series(
    headers: list[_DicomFile], patient: str | None, shown: str | Path, dicom_series: str | int | None
) -> list[_DicomFile]:
    groups: dict[str, list[_DicomFile]] = {}
    for h in headers:
        groups.setdefault(h.series_uid, []).append(h)

    def describe() -> str:
        rows = []
        for uid, hs in groups.items():
            num = _series_number_text(hs[0].series_number) or "?"
            desc = hs[0].description or "no description"
            rows.append((num, f"series number {num} ({desc!r}, {len(hs)} files)"))
        return "; ".join(r for _, r in sorted(rows, key=lambda r: (len(r[0]), r[0])))

    if dicom_series is None:
        if len(groups) > 1:
            raise _err(
                f"DICOM directory holds {len(groups)} series: {describe()}; choose one with dicom_series "
                "(SeriesNumber or SeriesInstanceUID)",
                patient,
                shown,
            )
        return next(iter(groups.values()))
    wanted = str(dicom_series).strip()
    if wanted in groups:
        return groups[wanted]
    matches = [hs for hs in groups.values() if _series_number_text(hs[0].series_number) == _series_number_text(wanted)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise _err(
            f"dicom_series {wanted!r} matches {len(matches)} series with that SeriesNumber; "
            "select by SeriesInstanceUID instead",
            patient,
            shown,
        )
    raise _err(f"dicom_series {wanted!r} not found; the directory holds: {describe()}", patient, shown)


def _orthonormal_frame(iop: np.ndarray, patient, shown) -> np.ndarray:
    row, col = iop[:3], iop[3:]
    nr, nc = np.linalg.norm(row), np.linalg.norm(col)
    if abs(nr - 1) > 1e-3 or abs(nc - 1) > 1e-3 or abs(row @ col) > 1e-3:
        raise _err("ImageOrientationPatient vectors are not orthonormal", patient, shown)
    row = row / nr
    col = col - (col @ row) * row
    col = col / np.linalg.norm(col)
    return np.column_stack([row, col, np.cross(row, col)])


def _geometry_order(series: list[_DicomFile], patient: str | None,
                    shown: str | Path) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """The one ordering rule for a DICOM series: files grouped by ImagePositionPatient projected
    on the slice normal (ascending), each group of several files (cine phases) sorted by
    TriggerTime (ties by file name).  Returns (direction frame, projections, groups of indices
    into ``series``); raises InputError for geometry that cannot be ordered."""
    ref = series[0]
    frame = _orthonormal_frame(ref.iop, patient, shown)
    normal = frame[:, 2]

    # group by position along the normal (geometry only)
    proj = np.array([h.ipp @ normal for h in series])
    order = np.argsort(proj, kind="stable")
    positions: list[list[int]] = []
    for i in order:
        if positions and proj[i] - proj[positions[-1][0]] <= POSITION_TOLERANCE_MM:
            positions[-1].append(int(i))
        else:
            positions.append([int(i)])
    for grp in positions:
        p0 = series[grp[0]].ipp
        for i in grp[1:]:
            if np.linalg.norm(series[i].ipp - p0) > POSITION_TOLERANCE_MM * 10:
                raise _err(
                    f"files {series[grp[0]].path.name!r} and {series[i].path.name!r} lie in the same plane "
                    "but have different in-plane origins",
                    patient,
                    shown,
                )

    n_phases_per = [len(g) for g in positions]
    n_phases = n_phases_per[0]
    if any(n != n_phases for n in n_phases_per):
        raise _err(
            f"multi-phase series with unequal phases per slice position (from {min(n_phases_per)} to "
            f"{max(n_phases_per)} files per position over {len(positions)} positions)",
            patient,
            shown,
        )

    if n_phases > 1:
        for grp in positions:
            tts = [series[i].trigger_time for i in grp]
            if any(t is None for t in tts):
                missing = next(series[i].path.name for i in grp if series[i].trigger_time is None)
                raise _err(
                    f"several files share one slice position but {missing!r} has no TriggerTime (0018|1060); "
                    "cannot order the phases",
                    patient,
                    shown,
                )
            grp.sort(key=lambda i: (series[i].trigger_time, series[i].path.name))
            steps = np.diff(np.array([series[i].trigger_time for i in grp], dtype=float))
            if np.any(steps <= 0):
                raise _err(
                    "files at one slice position share the same TriggerTime (duplicate images?)", patient, shown
                )

    return frame, proj, positions


@dataclass(frozen=True)
class DicomSlot:
    """Where one DICOM file of a series sits in the image the reader builds."""

    file_name: str
    slice: int                    # index along the slice normal (ascending position)
    phase: int                    # index in TriggerTime order (0 for a single-phase series)
    position_mm: float            # ImagePositionPatient projected on the normal
    trigger_time_ms: float | None
    instance_number: int | None   # InstanceNumber, never used for ordering


def dicom_slots(path: str | Path, *, patient: str | None = None, dicom_series: str | int | None = None,
                display_path: str | Path | None = None) -> list[DicomSlot]:
    """(slice, phase) of every file of a DICOM series directory, by exactly the rule
    :func:`read_image` uses (:func:`_geometry_order`); sorted by (slice, phase)."""
    path = Path(path)
    shown = display_path or path
    if not path.is_dir():
        raise _err("DICOM directory not found", patient, shown)
    files = _list_dicom_dir(path, patient, shown)
    headers = [_read_header(f, patient, shown, f"file {f.name!r}") for f in files]
    series = _select_series(headers, patient, shown, dicom_series)
    _, proj, positions = _geometry_order(series, patient, shown)
    return [DicomSlot(series[i].path.name, k, t, float(proj[i]), series[i].trigger_time, series[i].instance_number)
            for k, grp in enumerate(positions) for t, i in enumerate(grp)]


def _read_dicom_files(
    files: list[Path], patient: str | None, shown: str | Path, dicom_series: str | int | None
) -> tuple[sitk.Image, ReadInfo]:
    # ``label`` for a file never includes its absolute path; only the name inside the folder
    headers = [_read_header(f, patient, shown, f"file {f.name!r}") for f in files]
    series = _select_series(headers, patient, shown, dicom_series)

    ref = series[0]
    for h in series[1:]:
        if h.size != ref.size:
            raise _err(
                f"inconsistent image size in the series: {ref.size} in {ref.path.name!r}, {h.size} in {h.path.name!r}",
                patient,
                shown,
            )
        if np.max(np.abs(h.iop - ref.iop)) > ORIENTATION_TOLERANCE:
            raise _err(
                f"inconsistent ImageOrientationPatient in the series ({ref.path.name!r} vs {h.path.name!r})",
                patient,
                shown,
            )
        if not np.allclose(h.spacing_xy, ref.spacing_xy, rtol=1e-4, atol=1e-6):
            raise _err(
                f"inconsistent PixelSpacing in the series ({ref.path.name!r} vs {h.path.name!r})", patient, shown
            )
    frame, proj, positions = _geometry_order(series, patient, shown)
    n_phases = len(positions[0])

    flags: list[str] = []
    trigger_steps: list[float] = []
    per_position_step: list[float] = []
    if n_phases > 1:
        for grp in positions:
            steps = np.diff(np.array([series[i].trigger_time for i in grp], dtype=float))
            trigger_steps.extend(steps.tolist())
            per_position_step.append(float(np.median(steps)))

    pos = np.array([proj[g[0]] for g in positions])
    n_slices = len(positions)
    residual_mm = 0.0
    if n_slices > 1:
        dz = float((pos[-1] - pos[0]) / (n_slices - 1))
        residual = pos - (pos[0] + dz * np.arange(n_slices))
        residual_mm = float(np.max(np.abs(residual)))
        steps = np.diff(pos)
        if residual_mm > IRREGULAR_SPACING_ERROR * dz:
            raise _err(
                f"irregular slice positions: steps between {steps.min():.3f} and {steps.max():.3f} mm "
                "(missing slices or mixed stacks?)",
                patient,
                shown,
            )
        if residual_mm > max(IRREGULAR_SPACING_FLAG * dz, POSITION_TOLERANCE_MM):
            flags.append("irregular_dicom_spacing")
    else:
        dz = ref.slice_thickness if ref.slice_thickness and ref.slice_thickness > 0 else 1.0

    # SliceLocation is only compared with the geometry, never used
    sl = [series[g[0]].slice_location for g in positions]
    sl_step = None
    sl_disagrees = False
    if n_slices > 1 and all(s is not None for s in sl):
        sl_arr = np.array(sl, dtype=float)
        sl_steps = np.diff(sl_arr)
        sl_step = float(np.median(sl_steps))
        monotonic = bool(np.all(sl_steps > 0) or np.all(sl_steps < 0))
        tol = max(POSITION_TOLERANCE_MM * 10, 0.01 * dz)
        sl_disagrees = (not monotonic) or abs(abs(sl_step) - dz) > tol
        if sl_disagrees:
            flags.append("dicom_slice_location_disagrees")

    frame_interval_ms = None
    if n_phases > 1:
        frame_interval_ms = float(np.median(trigger_steps))
        if frame_interval_ms > 0 and (
            max(abs(s - frame_interval_ms) for s in per_position_step) > FRAME_INTERVAL_VARIATION_FLAG * frame_interval_ms
        ):
            flags.append("variable_frame_interval")

    # pixel data (rescale slope/intercept applied by GDCM), one 2D plane per file
    nx, ny = ref.size
    data = np.empty((n_phases, n_slices, ny, nx), dtype=np.float32)
    for k, grp in enumerate(positions):
        for t, i in enumerate(grp):
            h = series[i]
            reader = sitk.ImageFileReader()
            reader.SetImageIO("GDCMImageIO")
            reader.SetFileName(str(h.path))
            reader.SetOutputPixelType(sitk.sitkFloat32)
            try:
                plane = sitk.GetArrayFromImage(reader.Execute())
            except RuntimeError as exc:
                raise _err(f"pixel data of file {h.path.name!r} cannot be read", patient, shown) from exc
            data[t, k] = plane.reshape(ny, nx)

    spacing3 = (ref.spacing_xy[0], ref.spacing_xy[1], float(dz))
    origin3 = tuple(float(x) for x in series[positions[0][0]].ipp)
    direction3 = tuple(float(x) for x in frame.flatten())
    if n_phases == 1:
        img = sitk.GetImageFromArray(data[0], isVector=False)
        img.SetSpacing(spacing3)
        img.SetOrigin(origin3)
        img.SetDirection(direction3)
    else:
        frames = []
        for t in range(n_phases):
            f3 = sitk.GetImageFromArray(data[t], isVector=False)
            f3.SetSpacing(spacing3)
            f3.SetOrigin(origin3)
            f3.SetDirection(direction3)
            frames.append(f3)
        img = sitk.JoinSeries(frames, 0.0, frame_interval_ms)

    info = ReadInfo(
        source_format="dicom",
        frame_interval_ms=frame_interval_ms,
        dicom={
            "n_files": len(series),
            "n_slices": n_slices,
            "n_phases": n_phases,
            "series_number": _series_number_text(ref.series_number) or None,
            "slice_position_step_mm": float(dz) if n_slices > 1 else None,
            "slice_position_max_residual_mm": residual_mm,
            "slice_location_step_mm": sl_step,
            "slice_location_disagrees": bool(sl_disagrees),
            "frame_interval_ms": frame_interval_ms,
        },
        flags=flags,
    )
    return img, info


# ------------------------------------------------------------------------- canonical


def direction3(img: sitk.Image) -> np.ndarray:
    """The 3x3 direction matrix of the first three axes (of a 3D or 4D image)."""
    dim = img.GetDimension()
    d = np.asarray(img.GetDirection(), dtype=float).reshape(dim, dim)
    return d[:3, :3]


def ras_affine(img: sitk.Image) -> np.ndarray:
    """4x4 voxel -> RAS+ world (mm) affine of the first three axes, as NIfTI stores it."""
    d = direction3(img)
    sp = np.asarray(img.GetSpacing()[:3], dtype=float)
    o = np.asarray(img.GetOrigin()[:3], dtype=float)
    aff = np.eye(4)
    aff[:3, :3] = _LPS_TO_RAS @ d @ np.diag(sp)
    aff[:3, 3] = _LPS_TO_RAS @ o
    return aff


def _axcodes(img: sitk.Image) -> tuple[str, ...]:
    """nibabel's axis codes of the voxel axes (RAS world; resolves oblique ties like nibabel)."""
    import nibabel as nib

    return tuple(str(c) for c in nib.aff2axcodes(ras_affine(img)))


def _orient3(img: sitk.Image) -> sitk.Image:
    out = sitk.DICOMOrient(img, "RAS")
    if _axcodes(out) != ("R", "A", "S"):  # guard against a change of convention in SimpleITK
        raise RuntimeError(f"DICOMOrient(.., 'RAS') produced axis codes {_axcodes(out)}")
    return out


def canonicalise(img: sitk.Image) -> sitk.Image:
    """Permute/flip voxel axes (no resampling) so the NIfTI affine is RAS+; 4D frame-wise."""
    if img.GetDimension() == 3:
        return _orient3(img)
    if img.GetDimension() != 4:
        raise ValueError(f"expected a 3D or 4D image, got {img.GetDimension()}D")
    n_t = img.GetSize()[3]
    frames = [_orient3(img[:, :, :, t]) for t in range(n_t)]
    return sitk.JoinSeries(frames, float(img.GetOrigin()[3]), float(img.GetSpacing()[3]))


def _cast(img: sitk.Image, pixel_type: int) -> sitk.Image:
    """sitk.Cast that also works for 4D images and same-type casts."""
    if img.GetPixelID() == pixel_type:
        return img
    if img.GetDimension() == 4:
        frames = [sitk.Cast(img[:, :, :, t], pixel_type) for t in range(img.GetSize()[3])]
        return sitk.JoinSeries(frames, float(img.GetOrigin()[3]), float(img.GetSpacing()[3]))
    return sitk.Cast(img, pixel_type)


def _strip_metadata(img: sitk.Image) -> sitk.Image:
    out = sitk.Image(img)
    for key in out.GetMetaDataKeys():
        out.EraseMetaData(key)
    return out


def write_nifti(img: sitk.Image, out_path: str | Path, *, time_unit_ms: bool = True) -> None:
    """Write ``img`` as NIfTI with no metadata, atomically and byte-deterministically.

    For 4D images the header's time unit is set to ms when ``time_unit_ms`` is true (the
    4th spacing is then in ms), otherwise to 'unknown'.
    """
    out_path = Path(out_path)
    name = out_path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        raise ValueError(f"NIfTI output must end with .nii or .nii.gz: {out_path.name}")
    clean = _strip_metadata(img)
    with tempfile.TemporaryDirectory(prefix="twinflow-nii-") as tmpdir:
        tmp = Path(tmpdir) / "image.nii"
        sitk.WriteImage(clean, str(tmp), useCompression=False)
        raw = bytearray(tmp.read_bytes())
    if int.from_bytes(raw[0:4], "little") != 348 and int.from_bytes(raw[0:4], "big") != 348:
        raise RuntimeError("SimpleITK did not write a NIfTI-1 header")
    if img.GetDimension() == 4:
        raw[_NIFTI_XYZT_UNITS_OFFSET] = _NIFTI_UNITS_MM | (_NIFTI_UNITS_MSEC if time_unit_ms else 0)
    else:
        raw[_NIFTI_XYZT_UNITS_OFFSET] = _NIFTI_UNITS_MM
    data = bytes(raw)
    write_bytes(out_path, gzip_bytes(data) if name.endswith(".gz") else data)


# ------------------------------------------------------------------------------- QC


def _intensity_stats(arr: np.ndarray) -> tuple[dict[str, float | None], int, int]:
    nan_count = int(np.count_nonzero(np.isnan(arr)))
    inf_count = int(np.count_nonzero(np.isinf(arr)))
    finite = arr[np.isfinite(arr)] if (nan_count or inf_count) else arr.ravel()
    if finite.size == 0:
        stats = {k: None for k in ("min", "max", "mean", "std", "p01", "p50", "p99")}
    else:
        f64 = finite.astype(np.float64)
        p01, p50, p99 = np.percentile(f64, [1, 50, 99])
        stats = {
            "min": float(f64.min()),
            "max": float(f64.max()),
            "mean": float(f64.mean()),
            "std": float(f64.std()),
            "p01": float(p01),
            "p50": float(p50),
            "p99": float(p99),
        }
    return stats, nan_count, inf_count


def _geometry_qc(img: sitk.Image) -> dict[str, Any]:
    dim = img.GetDimension()
    return {
        "shape": [int(s) for s in img.GetSize()],
        "spacing_mm": [float(s) for s in img.GetSpacing()[:3]],
        "orientation": "".join(_axcodes(img)),
        "affine": ras_affine(img).tolist(),
        "n_frames": int(img.GetSize()[3]) if dim == 4 else 1,
    }


def slice_axis(spacing_mm: tuple[float, ...] | list[float]) -> int:
    """Axis (0..2, ITK order) of the acquired slices of a canonical image.

    Axis 2 (S, axial) unless another axis is clearly the acquisition's slice axis (its
    spacing > 1.5 x both others, e.g. an oblique cardiac short-axis stack that DICOMOrient
    maps onto A).  The QC PNG is cut across it (an axial cut through 12 slices would be a
    12-pixel strip), and the cardiac segmentation stacks its slices along it.
    """
    sp = [float(x) for x in spacing_mm[:3]]
    coarse = int(np.argmax(sp))
    others = [sp[i] for i in range(3) if i != coarse]
    if coarse != 2 and sp[coarse] > 1.5 * max(others):
        return coarse
    return 2


def _png_bytes(arr3: np.ndarray, axis: int, lo: float | None, hi: float | None) -> tuple[bytes, int]:
    """Mid slice across canonical ``axis`` of a RAS [z, y, x] array -> deterministic uint8 PNG bytes."""
    index = arr3.shape[2 - axis] // 2
    sl = np.asarray(np.take(arr3, index, axis=2 - axis), dtype=np.float64)
    # rows = higher canonical axis, columns = lower one; flip both so that the positive
    # direction (A or S) is up and the patient's right / anterior is on the viewer's left
    sl = sl[::-1, ::-1]
    if lo is None or hi is None or not hi > lo:
        u8 = np.zeros(sl.shape, dtype=np.uint8)
    else:
        scaled = np.clip((sl - lo) / (hi - lo), 0.0, 1.0)
        u8 = np.rint(np.nan_to_num(scaled, nan=0.0) * 255.0).astype(np.uint8)
    from twinflow.io.png import encode_png

    return encode_png(u8), index


def ingest_image(
    path: str | Path,
    out_nifti: str | Path,
    out_qc: str | Path,
    out_png: str | Path,
    *,
    patient: str,
    visit: str,
    series: str,
    date: str | None,
    dicom_series: str | int | None = None,
    display_path: str | Path | None = None,
) -> dict[str, Any]:
    """Read an image, write canonical float32 NIfTI (RAS+), QC JSON and a mid-slice PNG.

    Returns the QC dictionary (also written to ``out_qc``).  All checks run before any
    output is written; bad input raises :class:`InputError`.
    """
    img, info = read_image_with_info(path, patient=patient, dicom_series=dicom_series, display_path=display_path)
    img = canonicalise(_cast(img, sitk.sitkFloat32))
    arr = sitk.GetArrayViewFromImage(img)  # [t,] z, y, x
    stats, nan_count, inf_count = _intensity_stats(arr)

    flags = list(info.flags)
    if nan_count or inf_count:
        flags.append("non_finite_values")
    if stats["min"] is None:
        raise InputError(f"the image holds no data: none of its {arr.size} voxel values is finite "
                         f"({nan_count} NaN, {inf_count} infinite)", patient=patient,
                         path=display_path if display_path is not None else path)
    if stats["max"] == stats["min"]:
        flags.append("constant_image")
    sp = np.asarray(img.GetSpacing()[:3])
    if sp.max() / sp.min() > ANISOTROPY_FLAG_RATIO:
        flags.append("anisotropic_spacing_gt_3")
    if img.GetSize()[2] == 1:
        flags.append("single_slice")

    qc: dict[str, Any] = {
        "kind": "image",
        "patient_id": patient,
        "visit": visit,
        "series": series,
        "date": date,
        "source_format": info.source_format,
        **_geometry_qc(img),
        "dtype": "float32",
        "intensity": stats,
        "nan_count": nan_count,
        "inf_count": inf_count,
        "flags": sorted(set(flags)),
    }
    if img.GetDimension() == 4:
        qc["frame_interval_ms"] = info.frame_interval_ms
        if info.frame_interval_ms is None:
            qc["flags"] = sorted(set(qc["flags"]) | {"unknown_frame_interval_unit"})
    if info.dicom is not None:
        qc["dicom"] = info.dicom

    first = arr[0] if arr.ndim == 4 else arr
    axis = slice_axis(img.GetSpacing())
    png, index = _png_bytes(first, axis, stats["p01"], stats["p99"])
    qc["png"] = {"across_axis": "RAS"[axis], "slice_index": index, "frame": 0}

    write_nifti(img, out_nifti, time_unit_ms=info.frame_interval_ms is not None)
    write_bytes(out_png, png)
    write_json(out_qc, qc)
    return qc


# ---------------------------------------------------------------------------- labels


def same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    """The first three axes of ``a`` and ``b`` lie on the same voxel grid (size, spacing,
    direction; origins within 1 % of a voxel)."""
    if a.GetSize()[:3] != b.GetSize()[:3]:
        return False
    sa, sb = np.asarray(a.GetSpacing()[:3]), np.asarray(b.GetSpacing()[:3])
    if not np.allclose(sa, sb, rtol=1e-4, atol=1e-6):
        return False
    if not np.allclose(direction3(a), direction3(b), atol=1e-4):
        return False
    tol = 0.01 * float(min(sa.min(), sb.min()))
    return bool(np.max(np.abs(np.subtract(a.GetOrigin()[:3], b.GetOrigin()[:3]))) <= tol)


def _index_to_ref_continuous(src: sitk.Image, ref: sitk.Image, idx: np.ndarray) -> np.ndarray:
    """Map (N, 3) voxel indices (x, y, z order) of ``src`` to continuous indices of ``ref``."""
    m_src = direction3(src) @ np.diag(src.GetSpacing()[:3])
    phys = idx @ m_src.T + np.asarray(src.GetOrigin()[:3])
    m_ref = direction3(ref) @ np.diag(ref.GetSpacing()[:3])
    return (phys - np.asarray(ref.GetOrigin()[:3])) @ np.linalg.inv(m_ref).T


def _inside(cidx: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    return np.all((cidx >= -0.5) & (cidx < np.asarray(size[:3]) - 0.5), axis=1)


def _frames(img: sitk.Image) -> list[sitk.Image]:
    return [img] if img.GetDimension() == 3 else [img[:, :, :, t] for t in range(img.GetSize()[3])]


def ingest_label(
    label_path: str | Path,
    reference_nifti: str | Path,
    out_nifti: str | Path,
    out_qc: str | Path,
    *,
    patient: str,
    visit: str,
    series: str,
    display_path: str | Path | None = None,
) -> dict[str, Any]:
    """Read an expert label map, put it on the grid of the canonical reference image, write NIfTI + QC.

    If the label grid equals the reference grid (within tolerance) the voxels are copied;
    if it differs but overlaps, the label is resampled with nearest neighbour (recorded in
    the QC); if it does not overlap, or is not a map of non-negative integers, InputError.
    """
    shown = display_path if display_path is not None else label_path
    lab, info = read_image_with_info(label_path, patient=patient, display_path=display_path)
    ref = sitk.ReadImage(str(reference_nifti))

    arr = sitk.GetArrayViewFromImage(lab)
    if not np.all(np.isfinite(arr)):
        raise _err("label map contains NaN or infinite values", patient, shown)
    if arr.size and float(arr.min()) < 0:
        raise _err(f"label map contains negative values (min {float(arr.min()):g})", patient, shown)
    if np.issubdtype(arr.dtype, np.floating) and not np.array_equal(arr, np.round(arr)):
        raise _err("label map contains non-integer values", patient, shown)
    max_label = int(arr.max()) if arr.size else 0
    if max_label > np.iinfo(np.int32).max:
        raise _err(f"label value {max_label} is too large", patient, shown)
    pixel_type = sitk.sitkUInt8 if max_label <= 255 else sitk.sitkInt16 if max_label <= 32767 else sitk.sitkInt32
    lab = canonicalise(_cast(lab, pixel_type))

    # spatial grids to compare: a 3D label against a 4D reference uses the reference's 3D grid
    ref_frames = _frames(ref)
    lab_frames = _frames(lab)
    if lab.GetDimension() == 4:
        if ref.GetDimension() != 4 or ref.GetSize()[3] != lab.GetSize()[3]:
            raise _err(
                f"4D label with {lab.GetSize()[3]} frames does not match the reference image "
                f"({ref.GetSize()[3] if ref.GetDimension() == 4 else 1} frames)",
                patient,
                shown,
            )
    ref3 = ref_frames[0]

    resampled = False
    outside = 0
    total_nonzero = 0
    flags: list[str] = []
    out_frames: list[sitk.Image] = []
    src3 = lab_frames[0]
    if same_grid(src3, ref3):
        for f in lab_frames:
            g = sitk.Image(f)
            g.CopyInformation(ref3)
            out_frames.append(g)
    else:
        # overlap test: label grid corners in the reference's continuous index space
        size = np.asarray(src3.GetSize()[:3], dtype=float)
        corners = np.array([[cx, cy, cz] for cx in (-0.5, size[0] - 0.5) for cy in (-0.5, size[1] - 0.5)
                            for cz in (-0.5, size[2] - 0.5)])
        c = _index_to_ref_continuous(src3, ref3, corners)
        lo, hi = c.min(axis=0), c.max(axis=0)
        rsize = np.asarray(ref3.GetSize()[:3], dtype=float)
        if np.any(hi <= -0.5) or np.any(lo >= rsize - 0.5):
            raise _err("label does not overlap the reference image in physical space", patient, shown)
        for f in lab_frames:
            a = sitk.GetArrayViewFromImage(f)
            nz = np.argwhere(a > 0)[:, ::-1].astype(float)  # (x, y, z)
            total_nonzero += len(nz)
            if len(nz):
                outside += int(np.count_nonzero(~_inside(_index_to_ref_continuous(f, ref3, nz), ref3.GetSize())))
            out_frames.append(
                sitk.Resample(f, ref3, sitk.Transform(), sitk.sitkNearestNeighbor, 0, pixel_type)
            )
        if total_nonzero and outside == total_nonzero:
            raise _err("all labelled voxels lie outside the reference image", patient, shown)
        resampled = True
        flags.append("resampled_to_reference")
        if outside:
            flags.append("label_voxels_outside_reference")

    if ref.GetDimension() == 4 and lab.GetDimension() == 4:
        out = sitk.JoinSeries(out_frames, float(ref.GetOrigin()[3]), float(ref.GetSpacing()[3]))
    else:
        out = out_frames[0]

    out_arr = sitk.GetArrayViewFromImage(out)
    voxel_ml = float(np.prod(out.GetSpacing()[:3])) / 1000.0
    values, counts = np.unique(out_arr, return_counts=True)
    labels: dict[str, Any] = {}
    for v, n in zip(values.tolist(), counts.tolist()):
        if v == 0:
            continue
        entry: dict[str, Any] = {"voxel_count": int(n), "volume_ml": n * voxel_ml}
        if out.GetDimension() == 4:
            per = [int(np.count_nonzero(out_arr[t] == v)) for t in range(out_arr.shape[0])]
            entry["voxel_count_per_frame"] = per
            entry["volume_ml_per_frame"] = [p * voxel_ml for p in per]
        labels[str(int(v))] = entry
    if not labels:
        flags.append("empty_label")

    qc: dict[str, Any] = {
        "kind": "label",
        "patient_id": patient,
        "visit": visit,
        "series": series,
        "source_format": info.source_format,
        **_geometry_qc(out),
        "dtype": {sitk.sitkUInt8: "uint8", sitk.sitkInt16: "int16", sitk.sitkInt32: "int32"}[pixel_type],
        "labels_present": sorted(int(k) for k in labels),
        "labels": labels,
        "resampled": resampled,
        "flags": sorted(set(flags)),
    }
    if resampled:
        qc["resampling"] = {
            "method": "nearest_neighbour",
            "source_shape": [int(s) for s in src3.GetSize()],
            "source_spacing_mm": [float(s) for s in src3.GetSpacing()],
            "labelled_voxels_before": total_nonzero,
            "labelled_voxels_outside_reference": outside,
        }
    write_nifti(out, out_nifti, time_unit_ms=True)
    write_json(out_qc, qc)
    return qc
