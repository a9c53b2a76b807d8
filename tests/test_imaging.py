"""Tests for twinflow.io.imaging: DICOM/NIfTI/NRRD ingest, canonical RAS NIfTI, QC, labels."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from twinflow.errors import InputError
from twinflow.io.imaging import ingest_image, ingest_label, read_image

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


# ----------------------------------------------------------------------------- helpers


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """Rotation matrix from angles in degrees (x, then y, then z)."""
    a, b, c = np.deg2rad([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def write_dicom_slice(
    path: Path,
    pixels: np.ndarray,
    *,
    ipp: np.ndarray,
    iop_matrix: np.ndarray,
    spacing_xy: tuple[float, float],
    thickness: float,
    tags: dict[str, str],
) -> None:
    """Write one single-frame MR DICOM file with the given geometry and extra tags."""
    img = sitk.GetImageFromArray(pixels.astype(np.int16)[None])
    img.SetSpacing((spacing_xy[0], spacing_xy[1], thickness))
    img.SetOrigin(tuple(float(x) for x in ipp))
    img.SetDirection(tuple(float(x) for x in iop_matrix.flatten()))
    row, col = iop_matrix[:, 0], iop_matrix[:, 1]
    meta = {
        "0008|0060": "MR",
        "0008|0016": "1.2.840.10008.5.1.4.1.1.4",
        "0020|0032": "\\".join(f"{x:.6f}" for x in ipp),
        "0020|0037": "\\".join(f"{x:.8f}" for x in (*row, *col)),
        "0018|0050": f"{thickness:g}",
        "0010|0010": "DOE^JANE",
        "0010|0020": "MRN-998877",
        "0020|000d": "1.2.826.0.1.3680043.8.498.1",
    }
    meta.update(tags)
    for k, v in meta.items():
        img.SetMetaData(k, v)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetImageIO("GDCMImageIO")
    writer.SetFileName(str(path))
    writer.Execute(img)


def write_series(
    folder: Path,
    volume: np.ndarray,
    *,
    origin: np.ndarray,
    direction: np.ndarray,
    spacing: tuple[float, float, float],
    series_uid: str,
    series_number: int,
    description: str,
    rng: random.Random,
    name_prefix: str = "img",
    wrong_slice_location: bool = True,
) -> list[str]:
    """Write volume [z, y, x] as a DICOM series with shuffled names and scrambled InstanceNumber."""
    folder.mkdir(parents=True, exist_ok=True)
    nz = volume.shape[0]
    names = [f"{name_prefix}_{i:03d}.dcm" for i in rng.sample(range(100, 999), nz)]
    instance = list(range(1, nz + 1))
    rng.shuffle(instance)
    for k in range(nz):
        ipp = origin + k * spacing[2] * direction[:, 2]
        tags = {
            "0020|000e": series_uid,
            "0020|0011": str(series_number),
            "0008|103e": description,
            "0020|0013": str(instance[k]),
            "0008|0018": f"{series_uid}.{k + 1}",
            # deliberately wrong: steps of 3.3 mm in reversed order
            "0020|1041": f"{(-3.3 * k if wrong_slice_location else spacing[2] * k):.3f}",
        }
        write_dicom_slice(
            folder / names[k],
            volume[k],
            ipp=ipp,
            iop_matrix=direction,
            spacing_xy=spacing[:2],
            thickness=spacing[2],
            tags=tags,
        )
    return names


def assert_names(exc: InputError, patient: str, file: str | Path) -> None:
    msg = str(exc)
    assert f"patient {patient}" in msg, msg
    assert str(file) in msg, msg


def world_check(src: sitk.Image, out_nifti: Path, n_check: int | None = None) -> None:
    """Every voxel of ``src`` (3D) has the same value at the same world position in the output."""
    out = nib.load(str(out_nifti))
    assert nib.aff2axcodes(out.affine) == ("R", "A", "S")
    data = np.asarray(out.dataobj)
    arr = sitk.GetArrayFromImage(src)  # z, y, x
    idx = np.argwhere(np.ones(arr.shape, bool))[:, ::-1].astype(float)  # x, y, z
    if n_check is not None:
        idx = idx[:: max(1, len(idx) // n_check)]
    d = np.asarray(src.GetDirection()).reshape(3, 3)
    lps = idx @ (d @ np.diag(src.GetSpacing())).T + np.asarray(src.GetOrigin())
    ras = lps @ LPS_TO_RAS.T
    vox = (np.c_[ras, np.ones(len(ras))] @ np.linalg.inv(out.affine).T)[:, :3]
    assert np.max(np.abs(vox - np.round(vox))) < 1e-3
    vi = np.round(vox).astype(int)
    got = data[vi[:, 0], vi[:, 1], vi[:, 2]]
    want = arr[idx[:, 2].astype(int), idx[:, 1].astype(int), idx[:, 0].astype(int)]
    np.testing.assert_array_equal(got, want.astype(np.float32))


def outputs(d: Path, stem: str = "img") -> tuple[Path, Path, Path]:
    return d / f"{stem}.nii.gz", d / f"{stem}.qc.json", d / f"{stem}.png"


def assert_clean_nifti_header(path: Path) -> None:
    hdr = nib.load(str(path)).header
    assert hdr["descrip"].item() == b""
    assert hdr["intent_name"].item() == b""
    assert hdr["aux_file"].item() == b""
    assert len(hdr.extensions) == 0


# ------------------------------------------------------------------ real data: Sunnybrook


SUNNY = ("sunnybrook", "SCD0000101")


@pytest.fixture(scope="module")
def sunny(shared_data, tmp_path_factory):
    src = shared_data.joinpath(*SUNNY)
    out = tmp_path_factory.mktemp("sunny")
    nii, qcp, png = outputs(out)
    qc = ingest_image(src, nii, qcp, png, patient="P001", visit="baseline", series="cine_sax", date="2024-01-02")
    headers = {}
    for f in sorted(src.glob("*.dcm")):
        r = sitk.ImageFileReader()
        r.SetFileName(str(f))
        r.ReadImageInformation()
        headers[f.name] = {k: r.GetMetaData(k).strip() for k in r.GetMetaDataKeys()}
    return {"src": src, "nii": nii, "qc": qc, "qc_path": qcp, "png": png, "headers": headers}


def _vec(text: str) -> np.ndarray:
    return np.array([float(x) for x in text.split("\\")])


def test_sunnybrook_shape_spacing_and_qc(sunny):
    qc = sunny["qc"]
    img = nib.load(str(sunny["nii"]))
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    assert img.get_data_dtype() == np.float32
    assert img.ndim == 4 and img.shape[3] == 20
    zooms = np.array(img.header.get_zooms()[:3])
    slice_axis = int(np.argmax(zooms))
    assert img.shape[slice_axis] == 12
    assert sorted(s for i, s in enumerate(img.shape[:3]) if i != slice_axis) == [256, 256]
    assert zooms[slice_axis] == pytest.approx(10.0, abs=0.01)  # true IPP distance, not 6.7
    np.testing.assert_allclose(np.delete(zooms, slice_axis), 1.367188, atol=1e-5)
    assert img.header.get_xyzt_units() == ("mm", "msec")
    assert_clean_nifti_header(sunny["nii"])

    # frame interval: median TriggerTime step at each position, computed here from the headers
    by_pos: dict[float, list[float]] = {}
    for h in sunny["headers"].values():
        iop = _vec(h["0020|0037"])
        s = float(_vec(h["0020|0032"]) @ np.cross(iop[:3], iop[3:]))
        by_pos.setdefault(round(s, 2), []).append(float(h["0018|1060"]))
    steps = np.concatenate([np.diff(sorted(v)) for v in by_pos.values()])
    assert img.header.get_zooms()[3] == pytest.approx(np.median(steps), rel=1e-5)
    assert qc["frame_interval_ms"] == pytest.approx(np.median(steps), rel=1e-6)
    assert 37.0 < qc["frame_interval_ms"] < 39.0

    assert qc["source_format"] == "dicom"
    assert qc["orientation"] == "RAS"
    assert qc["shape"] == list(img.shape)
    assert qc["n_frames"] == 20
    np.testing.assert_allclose(qc["affine"], img.affine, atol=1e-4)
    d = qc["dicom"]
    assert (d["n_files"], d["n_slices"], d["n_phases"]) == (240, 12, 20)
    assert d["slice_location_disagrees"] is True
    assert d["slice_position_step_mm"] == pytest.approx(10.0, abs=0.01)
    assert abs(d["slice_location_step_mm"]) == pytest.approx(6.72, abs=0.01)
    assert "dicom_slice_location_disagrees" in qc["flags"]
    assert "anisotropic_spacing_gt_3" in qc["flags"]
    assert "irregular_dicom_spacing" not in qc["flags"]
    assert qc["nan_count"] == 0 and qc["inf_count"] == 0
    data = np.asarray(img.dataobj)
    st = qc["intensity"]
    assert st["min"] == pytest.approx(float(data.min()))
    assert st["max"] == pytest.approx(float(data.max()))
    assert st["mean"] == pytest.approx(float(data.mean(dtype=np.float64)), rel=1e-6)
    assert st["p99"] == pytest.approx(float(np.percentile(data, 99)))
    assert st["p01"] <= st["p50"] <= st["p99"]


@pytest.mark.parametrize("name", ["1.dcm", "37.dcm", "100.dcm", "163.dcm", "240.dcm"])
def test_sunnybrook_file_lands_in_right_slice_and_phase(sunny, name):
    headers = sunny["headers"]
    h = headers[name]
    iop = _vec(h["0020|0037"])
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)

    def proj(hh):
        return float(_vec(hh["0020|0032"]) @ normal)

    positions = sorted({round(proj(hh), 2) for hh in headers.values()})
    my_pos = round(proj(h), 2)
    slice_rank = positions.index(my_pos)
    same_pos = sorted(float(hh["0018|1060"]) for hh in headers.values() if round(proj(hh), 2) == my_pos)
    phase_rank = same_pos.index(float(h["0018|1060"]))
    assert len(positions) == 12 and len(same_pos) == 20

    single = sitk.ReadImage(str(sunny["src"] / name), sitk.sitkFloat32)
    pix = sitk.GetArrayFromImage(single)[0]  # [row j, column i]
    sx, sy = single.GetSpacing()[:2]
    jj, ii = np.meshgrid(np.arange(pix.shape[0]), np.arange(pix.shape[1]), indexing="ij")
    lps = _vec(h["0020|0032"]) + ii.reshape(-1, 1) * sx * row + jj.reshape(-1, 1) * sy * col
    ras = lps @ LPS_TO_RAS.T
    out = nib.load(str(sunny["nii"]))
    vox = (np.c_[ras, np.ones(len(ras))] @ np.linalg.inv(out.affine).T)[:, :3]
    assert np.max(np.abs(vox - np.round(vox))) < 0.01
    vi = np.round(vox).astype(int)
    got = np.asarray(out.dataobj[..., phase_rank])[vi[:, 0], vi[:, 1], vi[:, 2]]
    np.testing.assert_array_equal(got, pix.reshape(-1))
    # the plane is one index along the slice axis, the rank of its position (or mirrored)
    slice_axis = int(np.argmax(out.header.get_zooms()[:3]))
    assert len(np.unique(vi[:, slice_axis])) == 1
    normal_ras = LPS_TO_RAS @ normal
    forward = out.affine[:3, slice_axis] @ normal_ras > 0
    assert vi[0, slice_axis] == (slice_rank if forward else 11 - slice_rank)
    # and it is not just any phase: a neighbouring phase differs
    other = np.asarray(out.dataobj[..., (phase_rank + 1) % 20])[vi[:, 0], vi[:, 1], vi[:, 2]]
    assert not np.array_equal(other, pix.reshape(-1))


def test_sunnybrook_outputs_carry_no_identifiers(sunny, shared_data):
    h = sunny["headers"]["1.dcm"]
    secrets = [h["0010|0010"], h["0010|0020"], h["0020|000d"], h["0020|000e"]]
    assert secrets[0] and secrets[1]
    nii_bytes = gzip.decompress(sunny["nii"].read_bytes())
    qc_text = sunny["qc_path"].read_text()
    png_bytes = sunny["png"].read_bytes()
    for s in secrets:
        b = s.encode()
        assert b not in nii_bytes
        assert s not in qc_text
        assert b not in png_bytes
    assert str(shared_data) not in qc_text
    assert "/" not in "".join(v for v in json.loads(qc_text).values() if isinstance(v, str))
    png = sitk.ReadImage(str(sunny["png"]))
    assert png.GetPixelID() == sitk.sitkUInt8
    # the acquired short-axis plane (the 10 mm axis is the slice axis), not a 12-pixel axial strip
    assert png.GetSize() == (256, 256)
    qc = sunny["qc"]
    slice_axis = int(np.argmax(qc["spacing_mm"]))
    assert qc["png"] == {"across_axis": "RAS"[slice_axis], "slice_index": 6, "frame": 0}
    # PNG = window p01..p99 of the mid plane of frame 0, flipped for display
    data = np.asarray(nib.load(str(sunny["nii"])).dataobj[..., 0])
    plane = np.take(data, 6, axis=slice_axis).T[::-1, ::-1].astype(np.float64)
    lo, hi = qc["intensity"]["p01"], qc["intensity"]["p99"]
    want = np.rint(np.clip((plane - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(png), want)


# ----------------------------------------------------------------- real data: pyradiomics


def test_brain_nrrd_image_and_label(shared_data, tmp_path):
    img_path = shared_data / "pyradiomics" / "brain1_image.nrrd"
    lab_path = shared_data / "pyradiomics" / "brain1_label.nrrd"
    nii, qcp, png = outputs(tmp_path)
    qc = ingest_image(img_path, nii, qcp, png, patient="P002", visit="v1", series="t1c", date=None)
    src = sitk.ReadImage(str(img_path))
    assert src.GetSize() == (256, 256, 25)
    out = nib.load(str(nii))
    assert out.shape == (256, 256, 25)  # the source is axial LPS-like: axes only flipped
    np.testing.assert_allclose(out.header.get_zooms(), (0.78125, 0.78125, 6.5), atol=1e-5)
    assert qc["source_format"] == "nrrd" and "dicom" not in qc
    assert qc["shape"] == [256, 256, 25] and qc["n_frames"] == 1
    world_check(src, nii, n_check=5000)

    lnii, lqcp = tmp_path / "lab.nii.gz", tmp_path / "lab.qc.json"
    lqc = ingest_label(lab_path, nii, lnii, lqcp, patient="P002", visit="v1", series="t1c")
    lab = nib.load(str(lnii))
    assert lab.get_data_dtype() == np.uint8
    np.testing.assert_allclose(lab.affine, out.affine, atol=1e-6)
    ldata = np.asarray(lab.dataobj)
    assert int((ldata == 1).sum()) == 4137
    assert lqc["labels_present"] == [1]
    assert lqc["labels"]["1"]["voxel_count"] == 4137
    assert lqc["labels"]["1"]["volume_ml"] == pytest.approx(4137 * 0.78125**2 * 6.5 / 1000, rel=1e-6)
    assert lqc["resampled"] is False
    # aligned: the label centroid is at the same world position as in the original NRRD
    slab = sitk.ReadImage(str(lab_path))
    idx = np.argwhere(sitk.GetArrayFromImage(slab) == 1)[:, ::-1].astype(float)
    d = np.asarray(slab.GetDirection()).reshape(3, 3)
    lps = idx @ (d @ np.diag(slab.GetSpacing())).T + np.asarray(slab.GetOrigin())
    oidx = np.argwhere(ldata == 1).astype(float)
    ras = np.c_[oidx, np.ones(len(oidx))] @ lab.affine.T
    np.testing.assert_allclose(ras[:, :3].mean(0), (lps @ LPS_TO_RAS.T).mean(0), atol=1e-6)
    assert qc["png"] == {"across_axis": "S", "slice_index": 12, "frame": 0}
    assert sitk.ReadImage(str(png)).GetSize() == (256, 256)
    # the tumour is enhancing: mean image intensity inside the label above the image mean
    assert np.asarray(out.dataobj)[ldata == 1].mean() > qc["intensity"]["mean"]


# --------------------------------------------------------------- generated DICOM series


def oblique_volume() -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float, float]]:
    nz, ny, nx = 8, 12, 10
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    vol = (100 * k + 7 * j + i).astype(np.int16)
    return vol, np.array([-40.0, 25.5, 60.25]), rotation(25, -15, 40), (0.9, 1.1, 2.5)


def test_oblique_dicom_series_sorted_by_geometry(tmp_path):
    vol, origin, direction, spacing = oblique_volume()
    d = tmp_path / "dcm"
    write_series(d, vol, origin=origin, direction=direction, spacing=spacing, series_uid="1.2.3.4.5",
                 series_number=5, description="oblique", rng=random.Random(7))
    img = read_image(d, patient="P9")
    assert img.GetSize() == (10, 12, 8)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), vol)
    np.testing.assert_allclose(img.GetSpacing(), spacing, atol=1e-4)
    np.testing.assert_allclose(np.asarray(img.GetDirection()).reshape(3, 3), direction, atol=1e-5)
    np.testing.assert_allclose(img.GetOrigin(), origin, atol=1e-4)

    nii, qcp, png = outputs(tmp_path / "out")
    qc = ingest_image(d, nii, qcp, png, patient="P9", visit="v1", series="obl", date="2024-05-06")
    assert qc["dicom"]["n_slices"] == 8 and qc["dicom"]["n_phases"] == 1
    assert qc["dicom"]["slice_position_step_mm"] == pytest.approx(2.5, abs=1e-4)
    assert qc["dicom"]["slice_location_step_mm"] == pytest.approx(-3.3, abs=1e-6)
    assert qc["dicom"]["slice_location_disagrees"] is True
    assert sorted(qc["spacing_mm"]) == pytest.approx(sorted(spacing), abs=1e-4)
    assert nib.load(str(nii)).ndim == 3
    truth = sitk.GetImageFromArray(vol)
    truth.SetSpacing(spacing)
    truth.SetOrigin(tuple(origin))
    truth.SetDirection(tuple(direction.flatten()))
    world_check(truth, nii)
    assert_clean_nifti_header(nii)
    raw = gzip.decompress(nii.read_bytes()) + qcp.read_bytes() + png.read_bytes()
    for secret in (b"DOE^JANE", b"MRN-998877", b"1.2.3.4.5", b"1.2.826.0.1.3680043"):
        assert secret not in raw


def test_correct_slice_location_not_flagged(tmp_path):
    vol, origin, direction, spacing = oblique_volume()
    d = tmp_path / "dcm"
    write_series(d, vol[:4], origin=origin, direction=direction, spacing=spacing, series_uid="1.2.3",
                 series_number=1, description="ok", rng=random.Random(1), wrong_slice_location=False)
    nii, qcp, png = outputs(tmp_path / "out")
    qc = ingest_image(d, nii, qcp, png, patient="P9", visit="v1", series="s", date=None)
    assert qc["dicom"]["slice_location_disagrees"] is False
    assert "dicom_slice_location_disagrees" not in qc["flags"]


def test_two_series_need_a_choice(tmp_path):
    vol, origin, direction, spacing = oblique_volume()
    d = tmp_path / "two"
    rng = random.Random(3)
    write_series(d, np.full((3, 12, 10), 11, np.int16), origin=origin, direction=direction, spacing=spacing,
                 series_uid="1.2.3.100", series_number=3, description="cine sax", rng=rng, name_prefix="a")
    write_series(d, np.full((4, 12, 10), 22, np.int16), origin=origin, direction=direction, spacing=spacing,
                 series_uid="1.2.3.200", series_number=7, description="t1 axial", rng=rng, name_prefix="b")
    with pytest.raises(InputError) as ei:
        read_image(d, patient="P7", display_path="imaging/P7/dicom")
    msg = str(ei.value)
    assert_names(ei.value, "P7", "imaging/P7/dicom")
    assert "series number 3 ('cine sax', 3 files)" in msg
    assert "series number 7 ('t1 axial', 4 files)" in msg
    assert "DOE" not in msg and "MRN" not in msg and "1.2.3.100" not in msg
    a = read_image(d, patient="P7", dicom_series=3)
    b = read_image(d, patient="P7", dicom_series="7")
    c = read_image(d, patient="P7", dicom_series="1.2.3.100")
    assert a.GetSize()[2] == 3 and np.all(sitk.GetArrayViewFromImage(a) == 11)
    assert b.GetSize()[2] == 4 and np.all(sitk.GetArrayViewFromImage(b) == 22)
    assert c.GetSize()[2] == 3 and np.all(sitk.GetArrayViewFromImage(c) == 11)
    with pytest.raises(InputError) as ei:
        read_image(d, patient="P7", dicom_series="9", display_path="imaging/P7/dicom")
    assert_names(ei.value, "P7", "imaging/P7/dicom")
    assert "'9' not found" in str(ei.value)


def _cine_dir(tmp_path: Path, positions_mm: list[float], phases: list[int]) -> Path:
    """A tiny multi-phase series: len(positions) slices, phases[k] files at slice k."""
    d = tmp_path / "cine"
    d.mkdir()
    direction = rotation(0, 0, 0)
    n = 0
    for k, (z, nph) in enumerate(zip(positions_mm, phases)):
        for t in range(nph):
            n += 1
            write_dicom_slice(
                d / f"f{(n * 7919) % 1000:03d}.dcm",
                np.full((4, 5), 10 * k + t, np.int16),
                ipp=np.array([0.0, 0.0, z]),
                iop_matrix=direction,
                spacing_xy=(1.0, 1.0),
                thickness=2.0,
                tags={"0020|000e": "1.9", "0020|0011": "1", "0018|1060": f"{40.0 * t + 3.0 * k:.1f}",
                      "0008|0018": f"1.9.{n}", "0020|0013": str(1000 - n)},
            )
    return d


def test_synthetic_cine_is_4d(tmp_path):
    d = _cine_dir(tmp_path, [4.0, 0.0, 2.0], [3, 3, 3])
    nii, qcp, png = outputs(tmp_path / "out")
    qc = ingest_image(d, nii, qcp, png, patient="P3", visit="v", series="cine", date=None)
    data = np.asarray(nib.load(str(nii)).dataobj)
    assert data.shape == (5, 4, 3, 3)
    # slice at z=0 is k=1, z=2 is k=2, z=4 is k=0; values 10*k + phase
    for zi, k in enumerate([1, 2, 0]):
        for t in range(3):
            assert np.all(data[:, :, zi, t] == 10 * k + t)
    assert qc["frame_interval_ms"] == pytest.approx(40.0)
    assert qc["spacing_mm"][2] == pytest.approx(2.0)


@pytest.mark.parametrize(
    "positions, phases, problem",
    [
        ([0.0, 2.0, 4.0, 7.0], [1, 1, 1, 1], "irregular slice positions"),
        ([0.0, 2.0, 4.0], [3, 2, 3], "unequal phases per slice position"),
    ],
)
def test_bad_dicom_geometry(tmp_path, positions, phases, problem):
    d = _cine_dir(tmp_path, positions, phases)
    with pytest.raises(InputError) as ei:
        ingest_image(d, *outputs(tmp_path / "out"), patient="P4", visit="v", series="s", date=None)
    assert_names(ei.value, "P4", d)
    assert problem in str(ei.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_inconsistent_orientation_and_corrupt_dicom(tmp_path):
    d = _cine_dir(tmp_path, [0.0, 2.0, 4.0], [1, 1, 1])
    odd = sorted(d.iterdir())[0]
    write_dicom_slice(odd, np.zeros((4, 5)), ipp=np.array([0.0, 0.0, 6.0]), iop_matrix=rotation(0, 0, 30),
                      spacing_xy=(1.0, 1.0), thickness=2.0, tags={"0020|000e": "1.9", "0008|0018": "1.9.99"})
    with pytest.raises(InputError, match="inconsistent ImageOrientationPatient") as ei:
        read_image(d, patient="P5")
    assert_names(ei.value, "P5", d)
    odd.write_bytes(b"\x00" * 50 + b"not a dicom")
    with pytest.raises(InputError, match=f"file '{odd.name}' is not a readable DICOM file") as ei:
        read_image(d, patient="P5", display_path="sheet/dicom")
    assert_names(ei.value, "P5", "sheet/dicom")


# -------------------------------------------------------------------- NIfTI orientations


ORIENTATIONS = {
    "lps_identity": np.eye(3),
    "ras": np.diag([-1.0, -1.0, 1.0]),
    "permuted_flipped": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    "oblique": rotation(20, 35, -50),
}


@pytest.mark.parametrize("name", sorted(ORIENTATIONS))
def test_nifti_any_orientation_to_ras(tmp_path, name):
    arr = np.arange(5 * 6 * 7, dtype=np.float32).reshape(7, 6, 5) * 0.5 - 3.0
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.8, 1.2, 3.0))
    img.SetOrigin((12.0, -7.5, 30.0))
    img.SetDirection(tuple(ORIENTATIONS[name].flatten()))
    src = tmp_path / "in.nii.gz"
    sitk.WriteImage(img, str(src))
    nii, qcp, png = outputs(tmp_path / "out")
    qc = ingest_image(src, nii, qcp, png, patient="P6", visit="v", series="s", date=None)
    out = nib.load(str(nii))
    assert nib.aff2axcodes(out.affine) == ("R", "A", "S")
    assert sorted(out.shape) == [5, 6, 7]
    assert sorted(out.header.get_zooms()) == pytest.approx([0.8, 1.2, 3.0], abs=1e-5)
    assert qc["source_format"] == "nifti" and qc["orientation"] == "RAS"
    world_check(sitk.ReadImage(str(src)), nii)
    assert qc["intensity"]["min"] == pytest.approx(-3.0) and qc["intensity"]["max"] == pytest.approx(101.5)
    assert qc["intensity"]["p50"] == pytest.approx(float(np.median(arr)))


def test_nifti_4d_time_in_seconds_becomes_ms(tmp_path):
    data = np.random.default_rng(1).normal(size=(4, 5, 3, 6)).astype(np.float32)
    aff = np.diag([-2.0, 1.5, 3.0, 1.0])  # x runs to the left: LAS
    img = nib.Nifti1Image(data, aff)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = 0.04
    src = tmp_path / "cine.nii.gz"
    nib.save(img, str(src))
    nii, qcp, png = outputs(tmp_path / "out")
    qc = ingest_image(src, nii, qcp, png, patient="P4D", visit="v", series="s", date=None)
    out = nib.load(str(nii))
    assert out.shape == (4, 5, 3, 6) and nib.aff2axcodes(out.affine) == ("R", "A", "S")
    assert out.header.get_xyzt_units() == ("mm", "msec")
    assert out.header.get_zooms()[3] == pytest.approx(40.0)
    assert qc["frame_interval_ms"] == pytest.approx(40.0) and qc["n_frames"] == 6
    np.testing.assert_array_equal(np.asarray(out.dataobj), data[::-1])  # x flipped, same world
    np.testing.assert_allclose(out.affine @ [3, 0, 0, 1], aff @ [0, 0, 0, 1])


# -------------------------------------------------------------------------- bad inputs


def test_missing_corrupt_unsupported(tmp_path):
    outs = outputs(tmp_path / "out")
    kw = dict(patient="P8", visit="v", series="s", date=None)
    with pytest.raises(InputError, match="not found") as ei:
        ingest_image(tmp_path / "nope.nii.gz", *outs, **kw, display_path="imaging/nope.nii.gz")
    assert_names(ei.value, "P8", "imaging/nope.nii.gz")

    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(gzip.compress(b"\x01\x02garbage" * 100))
    with pytest.raises(InputError, match="cannot be read as NIFTI") as ei:
        ingest_image(corrupt, *outs, **kw)
    assert_names(ei.value, "P8", corrupt)

    good = sitk.GetImageFromArray(np.ones((8, 8, 8), np.float32))
    full = tmp_path / "full.nii"
    sitk.WriteImage(good, str(full))
    trunc = tmp_path / "trunc.nii"
    trunc.write_bytes(full.read_bytes()[:1000])  # ITK alone would zero-fill this silently
    with pytest.raises(InputError, match="truncated") as ei:
        ingest_image(trunc, *outs, **kw)
    assert_names(ei.value, "P8", trunc)

    bad_nrrd = tmp_path / "bad.nrrd"
    bad_nrrd.write_text("NRRD0004\ntype: float\ndimension: 3\nsizes: 2 2\nencoding: raw\n\n")
    with pytest.raises(InputError, match="cannot be read as NRRD") as ei:
        ingest_image(bad_nrrd, *outs, **kw)
    assert_names(ei.value, "P8", bad_nrrd)

    png_in = tmp_path / "scan.png"
    png_in.write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match="unsupported image format '.png'") as ei:
        ingest_image(png_in, *outs, **kw)
    assert_names(ei.value, "P8", png_in)

    empty = tmp_path / "emptydir"
    empty.mkdir()
    with pytest.raises(InputError, match="no files") as ei:
        ingest_image(empty, *outs, **kw)
    assert_names(ei.value, "P8", empty)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_non_finite_and_constant_images_flagged(tmp_path):
    arr = np.arange(4 * 5 * 6, dtype=np.float32).reshape(6, 5, 4)
    arr[0, 0, 0] = np.nan
    arr[1, 2, 3] = np.nan
    arr[5, 4, 3] = np.nan
    arr[2, 2, 2] = np.inf
    src = tmp_path / "nan.nii"
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(src))
    qc = ingest_image(src, *outputs(tmp_path / "o1"), patient="P", visit="v", series="s", date=None)
    assert qc["nan_count"] == 3 and qc["inf_count"] == 1
    assert "non_finite_values" in qc["flags"] and "constant_image" not in qc["flags"]
    finite = arr[np.isfinite(arr)]
    assert qc["intensity"]["min"] == 1.0 and qc["intensity"]["max"] == float(finite.max())
    assert qc["intensity"]["mean"] == pytest.approx(float(finite.mean()))
    assert qc["intensity"]["p99"] == pytest.approx(float(np.percentile(finite, 99)))
    assert json.loads((tmp_path / "o1" / "img.qc.json").read_text())["nan_count"] == 3

    const = tmp_path / "const.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((3, 4, 5), 7, np.int16)), str(const))
    qc = ingest_image(const, *outputs(tmp_path / "o2"), patient="P", visit="v", series="s", date=None)
    assert "constant_image" in qc["flags"] and qc["intensity"]["std"] == 0.0
    assert not np.any(sitk.GetArrayViewFromImage(sitk.ReadImage(str(tmp_path / "o2" / "img.png"))))


# ------------------------------------------------------------------------------ labels


def _ref_image(tmp_path: Path) -> Path:
    img = sitk.GetImageFromArray(np.random.default_rng(0).normal(size=(10, 20, 20)).astype(np.float32))
    img.SetOrigin((5.0, -3.0, 2.0))
    src = tmp_path / "ref_in.nii.gz"
    sitk.WriteImage(img, str(src))
    nii, qcp, png = outputs(tmp_path / "ref")
    ingest_image(src, nii, qcp, png, patient="PL", visit="v", series="s", date=None)
    return nii


def _label(arr: np.ndarray, origin, spacing=(1.0, 1.0, 1.0)) -> sitk.Image:
    lab = sitk.GetImageFromArray(arr)
    lab.SetOrigin(origin)
    lab.SetSpacing(spacing)
    return lab


def test_label_resampled_when_grid_differs(tmp_path):
    ref = _ref_image(tmp_path)
    coarse = np.zeros((4, 7, 7), np.uint8)
    coarse[1:3, 2:4, 2:4] = 3  # 8 coarse voxels of 3x3x3 mm = 216 fine voxels
    lab = _label(coarse, (6.0, -2.0, 3.0), (3.0, 3.0, 3.0))  # centres at ref voxel centres
    lpath = tmp_path / "coarse.nrrd"
    sitk.WriteImage(lab, str(lpath))
    qc = ingest_label(lpath, ref, tmp_path / "l.nii.gz", tmp_path / "l.json", patient="PL", visit="v", series="s")
    assert qc["resampled"] is True and "resampled_to_reference" in qc["flags"]
    assert qc["resampling"]["method"] == "nearest_neighbour"
    assert qc["labels_present"] == [3]
    assert qc["labels"]["3"]["voxel_count"] == 216
    assert qc["labels"]["3"]["volume_ml"] == pytest.approx(0.216)
    out = nib.load(str(tmp_path / "l.nii.gz"))
    np.testing.assert_allclose(out.affine, nib.load(str(ref)).affine, atol=1e-6)
    # world extent of the label is preserved: LPS x from 6+3*2-1.5 to 6+3*3+1.5 -> voxel centres 11..16
    idx = np.argwhere(np.asarray(out.dataobj) == 3)
    ras = np.c_[idx, np.ones(len(idx))] @ out.affine.T
    assert sorted({round(-x, 3) for x in ras[:, 0]}) == [11.0, 12.0, 13.0, 14.0, 15.0, 16.0]


def test_label_errors(tmp_path):
    ref = _ref_image(tmp_path)
    kw = dict(patient="PL", visit="v", series="s")
    arr = np.zeros((10, 20, 20), np.int16)
    arr[3, 4, 5] = 1
    far = tmp_path / "far.nii.gz"
    sitk.WriteImage(_label(arr, (1005.0, -3.0, 2.0)), str(far))
    with pytest.raises(InputError, match="does not overlap") as ei:
        ingest_label(far, ref, tmp_path / "o.nii.gz", tmp_path / "o.json", **kw, display_path="labels/far.nii.gz")
    assert_names(ei.value, "PL", "labels/far.nii.gz")
    assert not (tmp_path / "o.nii.gz").exists()

    neg = arr.copy()
    neg[0, 0, 0] = -2
    p = tmp_path / "neg.nii.gz"
    sitk.WriteImage(_label(neg, (5.0, -3.0, 2.0)), str(p))
    with pytest.raises(InputError, match="negative") as ei:
        ingest_label(p, ref, tmp_path / "o.nii.gz", tmp_path / "o.json", **kw)
    assert_names(ei.value, "PL", p)

    frac = arr.astype(np.float32)
    frac[1, 1, 1] = 0.5
    p = tmp_path / "frac.nrrd"
    sitk.WriteImage(_label(frac, (5.0, -3.0, 2.0)), str(p))
    with pytest.raises(InputError, match="non-integer") as ei:
        ingest_label(p, ref, tmp_path / "o.nii.gz", tmp_path / "o.json", **kw)
    assert_names(ei.value, "PL", p)

    # same grid: copied, not resampled; large values go to int16
    big = arr.copy()
    big[5, 5, 5] = 300
    p = tmp_path / "big.nii.gz"
    sitk.WriteImage(_label(big, (5.0, -3.0, 2.0)), str(p))
    qc = ingest_label(p, ref, tmp_path / "o.nii.gz", tmp_path / "o.json", **kw)
    assert qc["resampled"] is False and qc["dtype"] == "int16"
    assert qc["labels_present"] == [1, 300]
    assert nib.load(str(tmp_path / "o.nii.gz")).get_data_dtype() == np.int16


# ------------------------------------------------------------------------- determinism


def test_outputs_are_byte_deterministic(tmp_path):
    vol, origin, direction, spacing = oblique_volume()
    d = tmp_path / "dcm"
    write_series(d, vol, origin=origin, direction=direction, spacing=spacing, series_uid="1.2.3",
                 series_number=2, description="x", rng=random.Random(11))
    runs = []
    for run in ("a", "b"):
        nii, qcp, png = outputs(tmp_path / run)
        ingest_image(d, nii, qcp, png, patient="PD", visit="v", series="s", date="2024-01-01")
        lab = tmp_path / run / "lab.nii.gz"
        sitk.WriteImage(sitk.Cast(sitk.ReadImage(str(nii)) > 400, sitk.sitkUInt8), str(tmp_path / f"lab_{run}.nii"))
        ingest_label(tmp_path / f"lab_{run}.nii", nii, lab, tmp_path / run / "lab.json",
                     patient="PD", visit="v", series="s")
        runs.append([p.read_bytes() for p in (nii, qcp, png, lab, tmp_path / run / "lab.json")])
    for x, y in zip(*runs):
        assert x == y
    nii_bytes = runs[0][0]
    assert nii_bytes[:2] == b"\x1f\x8b" and nii_bytes[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0
    assert nii_bytes[3] & 0x08 == 0  # no file name in the gzip header
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "img.nii.gz", "img.png", "img.qc.json", "lab.json", "lab.nii.gz"]  # no temp files left
