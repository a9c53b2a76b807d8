"""Building blocks of lesion segmentation, checked against data generated with known values."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from twinflow.segment.enhancing import box_mask_border, central_part
from twinflow.segment.lesion import ball, fill_holes, gmm2, otsu, robust_z, slice_axis
from twinflow.segment.synthetic import insert_lesion, sphere_phantom


def test_gmm2_recovers_known_mixture():
    """80 % N(0, 1) + 20 % N(4, 1.5): weights, means and SDs back within 2-3 %; the Bayes
    boundary where 0.8 N(x; 0, 1) = 0.2 N(x; 4, 1.5) is the root of 0.2778 x^2 + 1.7778 x - 5.3474 = 0,
    x = 2.230."""
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0, 1, 80_000), rng.normal(4, 1.5, 20_000)])
    m = gmm2(v)
    assert m.weight[1] == pytest.approx(0.2, abs=0.005)
    assert m.mean == pytest.approx((0.0, 4.0), abs=0.03)
    assert m.sd == pytest.approx((1.0, 1.5), rel=0.03)
    assert m.threshold == pytest.approx(2.230, abs=0.05)
    assert m.separation == pytest.approx(4.0, rel=0.03)
    assert gmm2(np.ones(100)) is None and gmm2(np.arange(5.0)) is None


def test_robust_z_ignores_offset_scale_and_a_lesion():
    """Normalised data with negative values and scanner units give the same z; a lesion of 10 %
    of the mask moves the median and MAD by little."""
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, (20, 20, 20))
    a[:2] += 6.0  # 10 % lesion
    mask = np.ones(a.shape, bool)
    z1, med, sd = robust_z(a, mask)
    z2, _, _ = robust_z(250.0 + 80.0 * a, mask)
    assert np.allclose(z1, z2)
    assert abs(med) < 0.2 and abs(sd - 1.0) < 0.2


def test_otsu_splits_two_levels():
    v = np.concatenate([np.full(900, 10.0), np.full(100, 50.0)])
    assert 10.0 < otsu(v) <= 50.0


def test_fill_holes_per_slice_for_open_rims():
    """A rim open at the top and bottom (a cylinder wall) is filled per slice, not in 3D."""
    m = np.zeros((9, 21, 21), bool)
    yy, xx = np.mgrid[:21, :21]
    r = np.hypot(yy - 10, xx - 10)
    m[:, (r <= 8) & (r >= 6)] = True
    filled = fill_holes(m, np.array([6.5, 1.0, 1.0]))
    assert filled[:, r < 6].all()
    assert fill_holes(m, np.array([1.0, 1.0, 1.0]))[4, r < 6].all()  # isotropic: all three planes


def test_ball_and_slice_axis():
    assert slice_axis(np.array([6.5, 0.78, 0.78])) == 0 and slice_axis(np.array([1.0, 1.0, 1.0])) is None
    b = ball(np.array([6.5, 1.0, 1.0]), 3.0)
    assert b.shape == (1, 7, 7) and b.sum() == 29  # a 3 mm disc: no extent across 6.5 mm slices


def test_box_border_and_central_part():
    box = np.zeros((10, 10, 10), bool)
    box[2:8, 2:8, 2:8] = True
    assert box_mask_border(box).sum() == 6 ** 3 - 4 ** 3
    c = central_part(box, 0.5)
    assert np.array_equal(np.argwhere(c).min(0), [3, 3, 3]) and np.array_equal(np.argwhere(c).max(0), [6, 6, 6])


def test_insert_lesion_partial_volume():
    """A 10 mm sphere on 1 x 1 x 5 mm voxels: the truth (voxels >= half inside) has the sphere's
    volume within 10 %, and the mean added intensity equals enhancement x occupancy."""
    img, _, _ = sphere_phantom(size=40, spacing=(1.0, 1.0, 5.0), lesions=())
    out, truth = insert_lesion(img, (0.0, 0.0, 1.0), 10.0, enhancement=0.5)
    vol = float(sitk.GetArrayViewFromImage(truth).sum()) * 5.0
    assert vol == pytest.approx(4 / 3 * np.pi * 5.0 ** 3, rel=0.10)
    a, b = sitk.GetArrayFromImage(img).astype(float), sitk.GetArrayFromImage(out).astype(float)
    lo = a.min()
    changed = b != a
    added = ((b[changed] - lo) / (a[changed] - lo) - 1.0).sum() / 0.5  # sum of occupancies
    assert added * 5.0 == pytest.approx(4 / 3 * np.pi * 5.0 ** 3, rel=0.02)
