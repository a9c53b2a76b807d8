"""LV segmentation and function: polygon rasterisation, DICOM image -> (slice, phase), and
the automatic result against the Sunnybrook expert contours (SC-HF-I-1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from twinflow.errors import InputError
from twinflow.io.contours import (
    dicom_slice_phase_index,
    image_number_from_name,
    polygon_area,
    read_pixel_polygon,
    read_polygons_per_image,
    rasterise_polygon,
)

# ------------------------------------------------------------------ polygon rasterisation


@pytest.mark.parametrize("centre", [(40.0, 30.0), (40.5, 30.5), (40.25, 29.7)])
def test_rasterised_circle_has_its_area(centre):
    r = 15.3
    a = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    pts = np.column_stack([centre[0] + r * np.cos(a), centre[1] + r * np.sin(a)])
    mask = rasterise_polygon(pts, (64, 80))
    assert mask.shape == (64, 80)
    assert polygon_area(pts) == pytest.approx(math.pi * r * r, rel=2e-4)
    assert mask.sum() == pytest.approx(math.pi * r * r, rel=0.02)
    # x is the column, y the row: the mask's centroid is at (row = y, col = x)
    rows, cols = np.nonzero(mask)
    assert cols.mean() == pytest.approx(centre[0], abs=0.1)
    assert rows.mean() == pytest.approx(centre[1], abs=0.1)
    # the corner convention shifts the mask by half a pixel towards the origin
    rows5, cols5 = np.nonzero(rasterise_polygon(pts, (64, 80), pixel_centre=0.5))
    assert cols5.mean() == pytest.approx(centre[0] - 0.5, abs=0.1)
    assert rows5.mean() == pytest.approx(centre[1] - 0.5, abs=0.1)


def test_rasterised_rectangle_is_exact():
    # pixel centres at integers: x in [2, 5] (4 columns) and y in [1, 2] (2 rows) inside
    pts = np.array([[1.5, 0.5], [5.5, 0.5], [5.5, 2.5], [1.5, 2.5]])
    mask = rasterise_polygon(pts, (6, 8))
    expected = np.zeros((6, 8), bool)
    expected[1:3, 2:6] = True
    np.testing.assert_array_equal(mask, expected)
    assert not rasterise_polygon(pts + 100, (6, 8)).any()  # outside the image: empty, no error


def test_contour_file_reading(tmp_path):
    f = tmp_path / "IM-0001-0048-icontour-manual.txt"
    f.write_text("1.0 2.0\n3.5 2.0\n\n3.5 4.25\n")
    assert image_number_from_name(f.name) == 48
    np.testing.assert_allclose(read_pixel_polygon(f), [[1, 2], [3.5, 2], [3.5, 4.25]])
    assert list(read_polygons_per_image(tmp_path)) == [48]
    bad = tmp_path / "IM-0001-0050-icontour-manual.txt"
    bad.write_text("1 2\n3 four\n5 6\n")
    with pytest.raises(InputError, match="line 2") as ei:
        read_polygons_per_image(tmp_path, patient="P1")
    assert "patient P1" in str(ei.value) and bad.name in str(ei.value)


# ------------------------------------------------------------------------- Sunnybrook


@pytest.fixture(scope="module")
def sunnybrook(request):
    shared = request.getfixturevalue("shared_data")
    from twinflow.io.imaging import read_image_with_info
    from twinflow.segment.cardiac import add_myocardium, cine_array, expert_masks, segment_lv

    d = shared / "sunnybrook"
    img, info = read_image_with_info(d / "SCD0000101")
    frames = dicom_slice_phase_index(d / "SCD0000101")
    seg = segment_lv(img)
    arr = cine_array(img)
    shape = arr.shape[2:]
    icont = read_polygons_per_image(d / "SC-HF-I-1" / "i-contours")
    ocont = read_polygons_per_image(d / "SC-HF-I-1" / "o-contours")
    endo = expert_masks(icont, frames, shape)
    epi = expert_masks(ocont, frames, shape)
    add_myocardium(seg, arr, sorted({t for _, t in endo}))
    return {"img": img, "info": info, "frames": frames, "seg": seg, "arr": arr, "endo": endo, "epi": epi,
            "icont": icont, "dir": d}


@pytest.mark.shared_data
def test_image_number_maps_to_slice_and_phase(sunnybrook):
    frames, arr = sunnybrook["frames"], sunnybrook["arr"]
    assert len(frames) == 240
    assert sorted((f.slice, f.phase) for f in frames) == [(z, t) for z in range(12) for t in range(20)]
    by_n = {f.image_number: f for f in frames}
    assert sorted(by_n) == list(range(1, 241))
    assert all(f.instance_number == f.image_number for f in frames)
    # geometry, not file order: image 1 is the last slice along the normal; 20 images per position
    assert (by_n[1].slice, by_n[1].phase) == (11, 0)
    assert (by_n[48].slice, by_n[48].phase) == (9, 7)
    assert (by_n[59].slice, by_n[59].phase) == (9, 18)
    assert (by_n[219].slice, by_n[219].phase) == (1, 18)
    assert (by_n[240].slice, by_n[240].phase) == (0, 19)
    steps = np.diff(sorted({round(f.position_mm, 3) for f in frames}))
    assert steps == pytest.approx(10.0, abs=0.01)  # not the 6.7 mm of SliceLocation
    # the pixels of file N.dcm are the 4D image at (slice, phase) of image N
    for n in (1, 48, 59, 119, 219, 240):
        f = by_n[n]
        plane = sitk.GetArrayFromImage(sitk.ReadImage(str(sunnybrook["dir"] / "SCD0000101" / f.file_name),
                                                      sitk.sitkFloat32))
        np.testing.assert_array_equal(arr[f.phase, f.slice], plane.reshape(arr.shape[2:]))
    # every expert contour belongs to an ED (phase 18) or ES (phase 7) image of slices 1..9
    assert sorted(sunnybrook["endo"]) == sorted((z, t) for z in range(1, 10) for t in (7, 18))


@pytest.mark.shared_data
def test_slice_spacing_is_geometric(sunnybrook):
    seg, info = sunnybrook["seg"], sunnybrook["info"]
    assert seg.spacing_mm[2] == pytest.approx(10.0, abs=0.01)
    assert info.dicom["slice_location_step_mm"] == pytest.approx(6.719, abs=0.01)


@pytest.mark.shared_data
def test_endocardial_dice_and_ef_against_experts(sunnybrook):
    from twinflow.segment.cardiac import expert_masks, lv_function, score_against_contours

    seg, endo, epi = sunnybrook["seg"], sunnybrook["endo"], sunnybrook["epi"]
    nums = {(f.slice, f.phase): f.image_number for f in sunnybrook["frames"]}
    s = score_against_contours(seg, endo, epi, image_numbers=nums)
    assert s["n_images"] == 18
    assert s["mean_dice_endo"] >= 0.85
    assert min(p["dice_endo"] for p in s["per_image"]) >= 0.6  # no image is a miss
    # expert EF by summation of discs on the contoured slices (known: ~26 %, heart failure)
    assert s["slices"] == list(range(1, 10))
    assert (s["expert_ed_frame"], s["expert_es_frame"]) == (18, 7)
    assert 20.0 < s["expert_ef_percent"] < 32.0
    assert abs(s["auto_ef_percent"] - s["expert_ef_percent"]) <= 5.0
    assert abs(s["auto_at_expert_frames_ef_percent"] - s["expert_ef_percent"]) <= 5.0
    # automatic ED/ES within one frame (cyclically) of the experts' choice
    for a, e in ((s["auto_ed_frame"], 18), (s["auto_es_frame"], 7)):
        assert min((a - e) % 20, (e - a) % 20) <= 1
    # volumes within 15 % of the experts' on the same slices
    assert s["auto_edv_ml"] == pytest.approx(s["expert_edv_ml"], rel=0.15)
    assert s["auto_esv_ml"] == pytest.approx(s["expert_esv_ml"], rel=0.15)
    # epicardium (ED): a ring search, looser than the endocardium
    assert s["mean_dice_epi"] >= 0.8
    # the corner pixel convention gives the same answer to within a small margin
    icorner = expert_masks(sunnybrook["icont"], sunnybrook["frames"], sunnybrook["arr"].shape[2:], pixel_centre=0.5)
    s5 = score_against_contours(seg, icorner)
    assert abs(s5["mean_dice_endo"] - s["mean_dice_endo"]) < 0.01
    # whole ventricle: the slices where the LV was found, summation of discs with 10 mm
    f = lv_function(seg)
    assert set(s["slices"]) <= set(f["slices_used"])
    assert f["sv_ml"] == pytest.approx(f["edv_ml"] - f["esv_ml"])
    assert abs(f["ef_percent"] - s["expert_ef_percent"]) <= 8.0
    assert f["lv_mass_g"] is not None and 80.0 < f["lv_mass_g"] < 250.0


@pytest.mark.shared_data
def test_expert_contours_used_where_supplied(sunnybrook, tmp_path):
    from twinflow.segment.cardiac import apply_expert_contours, cardiac_function_record, lv_function, overlay_png

    seg, endo, epi = sunnybrook["seg"], sunnybrook["endo"], sunnybrook["epi"]
    merged = apply_expert_contours(seg, endo, epi)
    assert (merged.ed_frame, merged.es_frame) == (18, 7)
    f = lv_function(merged, slices=range(1, 10))
    vox = np.prod(seg.spacing_mm) / 1000.0
    assert f["edv_ml"] == pytest.approx(sum(endo[(z, 18)].sum() for z in range(1, 10)) * vox)
    rec = cardiac_function_record(lv_function(merged), source="expert contours + automatic")
    assert set(rec) >= {"edv_ml", "esv_ml", "sv_ml", "ef_percent", "lv_mass_g", "ed_frame", "es_frame"}
    assert (rec["ed_frame"], rec["es_frame"]) == (18, 7)
    # QC overlays: deterministic PNGs
    for run in ("a", "b"):
        overlay_png(sunnybrook["arr"], seg, seg.ed_frame, tmp_path / run / "ed.png", expert=endo)
    a, b = (tmp_path / "a" / "ed.png").read_bytes(), (tmp_path / "b" / "ed.png").read_bytes()
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == b
    png = sitk.ReadImage(str(tmp_path / "a" / "ed.png"))
    assert png.GetNumberOfComponentsPerPixel() == 3
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 2  # no temp files left


@pytest.mark.shared_data
def test_canonical_4d_gives_the_same_function(sunnybrook):
    from twinflow.io.imaging import canonicalise
    from twinflow.segment.cardiac import lv_function, segment_lv

    native = lv_function(sunnybrook["seg"])
    canon = segment_lv(canonicalise(sunnybrook["img"]), with_myocardium=False)
    assert canon.slice_axis != 2 and canon.spacing_mm[2] == pytest.approx(10.0, abs=0.01)
    f = lv_function(canon)
    assert (f["ed_frame"], f["es_frame"]) == (native["ed_frame"], native["es_frame"])
    assert f["edv_ml"] == pytest.approx(native["edv_ml"], rel=0.03)
    assert f["ef_percent"] == pytest.approx(native["ef_percent"], abs=1.5)
