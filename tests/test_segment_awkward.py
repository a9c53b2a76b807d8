"""Awkward inputs to tumour segmentation: each gives a named InputError (patient, file, problem)
or a sane result -- never a traceback.  The table in docs/segmentation.md lists the messages."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from twinflow.errors import InputError
from twinflow.segment.oncology import roi_from_mask, score, segment_tumour
from twinflow.segment.synthetic import breast_phantom, sphere_phantom

PATIENT = "P01"
PATHS = {"T1post": "V1/t1post.nrrd", "FLAIR": "V1/flair.nii.gz", "T1": "V1/t1.nii.gz", "brain_mask": "V1/brain.nrrd",
         "organ_mask": "V1/organ.nii.gz", "label": "V1/label.nii.gz", "roi": "imaging.tsv"}


@pytest.fixture(scope="module")
def case():
    img, mask, truth = sphere_phantom(size=48, lesions=((4.0, -3.0, 2.0, 5.0, 20.0),))
    return img, mask, truth, roi_from_mask(truth, 10.0)


def _like(a: np.ndarray, ref: sitk.Image, dtype=np.float32) -> sitk.Image:
    out = sitk.GetImageFromArray(a.astype(dtype))
    out.CopyInformation(ref)
    return out


def _seg(images, **kw):
    return segment_tumour(images, patient=PATIENT, paths=PATHS, bias_correction=False, **kw)


def _error(images, file: str, *fragments: str, **kw) -> str:
    with pytest.raises(InputError) as info:
        _seg(images, **kw)
    msg = str(info.value)
    assert msg.startswith(f"patient {PATIENT}: {file}: " if file else f"patient {PATIENT}: "), msg
    for f in fragments:
        assert f in msg, msg
    return msg


def test_roi_outside_the_image(case):
    img, mask, _, _ = case
    _error({"T1post": img}, "imaging.tsv", "lies outside the image", "LPS", brain_mask=mask,
           roi_lps_mm="500,500,500,510,510,510")


def test_roi_without_contrast(case):
    img, mask, _, roi = case
    flat = np.where(sitk.GetArrayFromImage(mask) > 0, 100.0, 5.0) + np.random.default_rng(1).normal(0, 2, img.GetSize()[::-1])
    msg = _error({"T1post": _like(flat, img)}, "V1/t1post.nrrd", "no enhancing lesion found in the roi", "robust SD",
                 "max z", brain_mask=mask, roi_lps_mm=roi)
    assert "contrast-enhanced" in msg


def test_all_zero_image(case):
    img, _, _, roi = case
    zero = _like(np.zeros(img.GetSize()[::-1]), img)
    for kw in ({}, {"roi_lps_mm": roi}):
        _error({"T1post": zero}, "V1/t1post.nrrd", "is constant (0)", "no contrast", **kw)


def test_nan_filled_image(case):
    img, mask, _, _ = case
    _error({"T1post": _like(np.full(img.GetSize()[::-1], np.nan), img)}, "V1/t1post.nrrd", "no finite values",
           brain_mask=mask)


def test_partly_nan_image_is_segmented(case):
    """NaN slices (a failed reconstruction) are left out; the lesion is still found."""
    img, mask, truth, roi = case
    a = sitk.GetArrayFromImage(img)
    a[:8] = np.nan
    res = _seg({"T1post": _like(a, img)}, brain_mask=mask, roi_lps_mm=roi)
    assert res.notes["non_finite_voxels"] == {"T1post": 8 * 48 * 48}
    assert score(res.automatic, truth)["whole_tumour"]["dice"] >= 0.85


def test_one_voxel_lesion(case):
    """A single voxel 30 noise SDs bright: smaller than the noise filter, seeded unsmoothed."""
    img, mask, truth, roi = case
    a = np.where(sitk.GetArrayFromImage(mask) > 0, 100.0, 5.0) + np.random.default_rng(2).normal(0, 2, img.GetSize()[::-1])
    idx = np.argwhere(sitk.GetArrayFromImage(truth) > 0).mean(axis=0).round().astype(int)
    a[tuple(idx)] += 60.0
    res = _seg({"T1post": _like(a, img)}, brain_mask=mask, roi_lps_mm=roi)
    lab = sitk.GetArrayViewFromImage(res.automatic)
    assert np.count_nonzero(lab) == 1 and lab[tuple(idx)] > 0
    assert "seeded_unsmoothed_at_z" in res.notes["boxes"][0]


def test_2d_image(case):
    img, _, _, _ = case
    two = sitk.GetImageFromArray(sitk.GetArrayFromImage(img)[24])
    _error({"T1post": two}, "V1/t1post.nrrd", "is a 2D image (size 48x48)", "3D volume")


def test_single_slice_volume_works(case):
    """A 2D slice stored as a one-slice 3D volume is a valid input."""
    img, _, truth, _ = case
    k = int(np.argwhere(sitk.GetArrayFromImage(truth) > 0)[:, 0].mean().round())
    one = sitk.GetImageFromArray(sitk.GetArrayFromImage(img)[k:k + 1])
    one.SetSpacing((1.0, 1.0, 5.0))
    one.SetOrigin(img.TransformIndexToPhysicalPoint((0, 0, k)))
    res = _seg({"T1post": one}, roi_lps_mm=(-10, -15, -10, 16, 10, 10))
    assert 40 < res.automatic_volumes_ml["whole_tumour_ml"] * 1000 / 5.0 < 120  # ~ pi 5^2 mm^2 of lesion


def test_anisotropic_slices(case):
    """6.5 mm slices with 0.8 mm pixels, automatic and with an ROI."""
    img, mask, truth = sphere_phantom(size=48, spacing=(0.8, 0.8, 6.5), lesions=((4.0, -3.0, 2.0, 8.0, 20.0),))
    for roi in (None, roi_from_mask(truth, 10.0)):
        res = _seg({"T1post": img}, brain_mask=mask, roi_lps_mm=roi)
        assert score(res.automatic, truth)["whole_tumour"]["dice"] >= 0.85


def test_non_brain_anatomy_without_organ_mask():
    """A breast DCE without organ mask: with an ROI it is segmented; without one it is a named
    error, whether or not the caller says which anatomy it is."""
    bc = breast_phantom(seed=1)
    res = _seg({"T1post": bc.t1post}, roi_lps_mm=bc.roi_lps_mm)
    assert score(res.automatic, bc.truth)["whole_tumour"]["dice"] >= 0.9
    _error({"T1post": bc.t1post}, "V1/t1post.nrrd", "breast anatomy needs an organ_mask", anatomy="breast")
    _error({"T1post": bc.t1post}, "V1/t1post.nrrd", "does not look like a head", "organ_mask")


def test_brats_labels_without_the_config_switch(case):
    img, mask, truth, _ = case
    brats = sitk.Cast(truth, sitk.sitkUInt8) * 4
    _error({"T1post": img}, "V1/label.nii.gz", "label values [4]", "label_convention to brats2021",
           brain_mask=mask, expert_label=brats)
    b13 = sitk.GetArrayFromImage(brats)
    b13[0, 0, :2] = (3, 1)  # BraTS 2013: non-enhancing tumour (3) and enhancing (4) in one file
    _error({"T1post": img}, "V1/label.nii.gz", "label_convention to brats2013", brain_mask=mask,
           expert_label=_like(b13, img, np.uint8))
    _error({"T1post": img}, "V1/label.nii.gz", "set label_convention to brats2013", brain_mask=mask,
           expert_label=_like(b13, img, np.uint8), label_convention="brats")


def test_bad_roi_text_and_roi_off_the_mask(case):
    img, mask, _, _ = case
    _error({"T1post": img}, "imaging.tsv", "not six finite numbers", brain_mask=mask, roi_lps_mm="1,2,3")
    _error({"T1post": img}, "imaging.tsv", "does not overlap the brain_mask", brain_mask=mask,
           roi_lps_mm="-23,-23,-23,-21,-21,-21")


def test_no_usable_series_and_roi_on_plain_t1(case):
    img, _, _, roi = case
    _error({"ADC": img}, "", "no usable series among ['ADC']")
    _error({"T1": img}, "V1/t1.nii.gz", "needs a contrast-enhanced T1", roi_lps_mm=roi)


def test_empty_mask_and_series_that_do_not_overlap(case):
    img, mask, _, _ = case
    empty = _like(np.zeros(img.GetSize()[::-1]), img, np.uint8)
    _error({"T1post": img}, "V1/brain.nrrd", "brain mask is empty", brain_mask=empty)
    _error({"T1post": img}, "V1/organ.nii.gz", "organ mask is empty", organ_mask=empty)
    far = sitk.Image(img)
    far.SetOrigin((1000.0, 1000.0, 1000.0))
    _error({"T1post": img, "FLAIR": far}, "V1/flair.nii.gz", "does not overlap T1post", "co-registered",
           brain_mask=mask)


def test_vector_image_and_both_masks(case):
    img, mask, _, _ = case
    _error({"T1post": sitk.Compose(img, img, img)}, "V1/t1post.nrrd", "3 values per voxel")
    _error({"T1post": img}, "V1/organ.nii.gz", "synonyms", brain_mask=mask, organ_mask=mask)
    _error({"T1post": img}, "V1/label.nii.gz", "unknown label convention 'nnunet'", label_convention="nnunet")


def test_t1_only_automatic_is_empty_with_a_warning(case):
    """No tumour-sensitive series and no ROI: an empty result that says so (not an error: a
    visit may hold only a T1 for registration)."""
    img, mask, _, _ = case
    res = _seg({"T1": img}, brain_mask=mask)
    assert res.automatic_volumes_ml["whole_tumour_ml"] == 0.0
    assert "no tumour-sensitive series" in res.notes["warning"]
