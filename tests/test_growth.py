"""Reaction-diffusion model and PK: known answers."""

from __future__ import annotations

import numpy as np
import pytest

from twinflow.models.oncology.growth import GrowthParams, ReactionDiffusion, Schedule
from twinflow.pkpd.compartment import OneCompartment


def box(shape=(20, 20, 20)):
    mask = np.ones(shape, bool)
    return mask, np.ones(shape, np.float32), np.zeros(shape, np.float32)


def test_logistic_growth_without_diffusion_is_exact():
    mask, wm, gm = box((4, 4, 4))
    rd = ReactionDiffusion((1, 1, 1), mask, wm, gm)
    u0 = np.full(mask.shape, 0.1, np.float32)
    k = 0.07
    out = rd.simulate(u0, GrowthParams(0.0, k), 30.0, 0.5, save_days=[10.0, 30.0])
    for t, u in out.items():
        exact = 0.1 * np.exp(k * t) / (1 + 0.1 * (np.exp(k * t) - 1))
        assert u[1, 1, 1] == pytest.approx(exact, rel=1e-5)


def test_diffusion_conserves_mass_with_no_flux_boundary():
    mask, wm, gm = box((48, 16, 16))
    mask[:, :, 12:] = False          # tissue boundary inside the box
    rd = ReactionDiffusion((1.0, 1.5, 2.0), mask, wm, gm)
    u0 = np.zeros(mask.shape, np.float32)
    u0[24, 8, 6] = 1.0
    u = rd.simulate(u0, GrowthParams(0.8, 0.0), 10.0, 0.5)[10.0]
    assert float(u.sum()) == pytest.approx(1.0, rel=1e-4)
    assert float(u[~mask].max()) == 0.0
    # spread: the variance along x grows as 2 D t (x is far from any boundary)
    x = np.arange(48) - 24
    px = u.sum(axis=(1, 2))
    assert float((px * x ** 2).sum() / px.sum()) == pytest.approx(2 * 0.8 * 10.0, rel=0.02)


def test_substeps_keep_explicit_scheme_stable():
    mask, wm, gm = box((12, 12, 12))
    rd = ReactionDiffusion((1, 1, 1), mask, wm, gm)
    p = GrowthParams(2.0, 0.0)        # stable dt = 1/12 day < 0.5
    u0 = np.zeros(mask.shape, np.float32)
    u0[6, 6, 6] = 1
    u = rd.simulate(u0, p, 5.0, 0.5)[5.0]
    assert np.all(u >= 0) and float(u.sum()) == pytest.approx(1.0, rel=1e-4)


def test_radiotherapy_fraction_applies_lq_survival():
    mask, wm, gm = box((4, 4, 4))
    rd = ReactionDiffusion((1, 1, 1), mask, wm, gm)
    u0 = np.full(mask.shape, 0.5, np.float32)
    p = GrowthParams(0.0, 0.0, alpha_per_gy=0.3, ab_ratio_gy=10.0)
    sched = Schedule(rt_days=np.array([1.0, 2.0]), rt_dose_gy=np.array([2.0, 2.0]))
    u = rd.simulate(u0, p, 3.0, 0.5, schedule=sched)[3.0]
    sf = np.exp(-(0.3 * 2 + 0.03 * 4))
    assert u[0, 0, 0] == pytest.approx(0.5 * sf ** 2, rel=1e-5)


def test_drug_log_kill_uses_exact_exposure():
    mask, wm, gm = box((4, 4, 4))
    rd = ReactionDiffusion((1, 1, 1), mask, wm, gm)
    pk = OneCompartment(cl_l_h=10.0, v_l=25.0, ka_per_h=5.8)
    doses = np.array([150.0, 150.0])
    times_h = np.array([24.0, 48.0])
    sched = Schedule(drug_exposure=lambda t0, t1: pk.exposure(t0 * 24, t1 * 24, times_h, doses)[0])
    kappa = 0.01
    u = rd.simulate(np.full(mask.shape, 0.5, np.float32), GrowthParams(0.0, 0.0, kappa_l_per_mg_h=kappa),
                    10.0, 0.5, schedule=sched)[10.0]
    total_auc = doses.sum() / 10.0 * (1 - 1e-6)          # F*D/CL, essentially all absorbed by day 10
    assert u[0, 0, 0] == pytest.approx(0.5 * np.exp(-kappa * total_auc), rel=1e-4)


@pytest.mark.parametrize("threads", [2, 3])
def test_results_do_not_depend_on_the_number_of_threads(threads, monkeypatch):
    """The step is split into x-plane ranges, one per thread; state and tangents must be
    bit-identical to one thread, with sub-steps, a partial RT field and drug kill included."""
    monkeypatch.setattr(ReactionDiffusion, "PARALLEL_MIN_VOXELS", 0)
    rng = np.random.default_rng(3)
    shape = (11, 9, 7)
    mask = np.ones(shape, bool)
    mask[0], mask[:, :, -1] = False, False            # tissue boundary inside the box
    wm = rng.random(shape).astype(np.float32)
    u0 = np.where(mask, rng.random(shape), 0).astype(np.float32)
    field = np.zeros(shape, bool)
    field[:6] = True
    sched = Schedule(rt_days=np.array([0.5, 1.5]), rt_dose_gy=np.array([2.0, 2.0]),
                     drug_exposure=lambda a, b: 3.0 * (b - a))
    p = GrowthParams(1.5, 0.1, alpha_per_gy=0.05, kappa_l_per_mg_h=0.01)   # 1.5: 5 sub-steps / step
    one = ReactionDiffusion((1.0, 1.0, 1.5), mask, wm, 1 - wm, threads=1)
    many = ReactionDiffusion((1.0, 1.0, 1.5), mask, wm, 1 - wm, threads=threads)
    assert len(many._chunks(threads)) == threads
    kw = dict(schedule=sched, save_days=[1.0, 3.0], rt_mask=field)
    a, b = one.simulate(u0, p, 3.0, 0.5, **kw), many.simulate(u0, p, 3.0, 0.5, **kw)
    for t in a:
        assert np.array_equal(a[t], b[t])
    sa, sb = one.simulate_sensitivities(u0, p, 3.0, 0.5, **kw), many.simulate_sensitivities(u0, p, 3.0, 0.5, **kw)
    for t in sa:
        assert np.array_equal(sa[t][0], a[t])           # the state of the tangent run is the forward state
        assert np.array_equal(sa[t][0], sb[t][0]) and np.array_equal(sa[t][1], sb[t][1])


def test_solver_threads_follow_the_job_allocation(monkeypatch):
    from twinflow.models.oncology.growth import default_threads
    monkeypatch.setenv("OMP_NUM_THREADS", "1")         # Snakemake sets it to the job's threads
    assert default_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert 1 <= default_threads() <= 2


def test_one_compartment_matches_closed_forms():
    iv = OneCompartment(cl_l_h=5.0, v_l=50.0)
    assert iv.concentration([0.0], [0.0], [100.0])[0] == pytest.approx(2.0)
    assert iv.concentration([np.log(2) / 0.1], [0.0], [100.0])[0] == pytest.approx(1.0)  # one half-life
    assert iv.exposure([0.0], [1e6], [0.0], [100.0])[0] == pytest.approx(20.0)            # D / CL
    oral = OneCompartment(cl_l_h=5.5 * 1.8, v_l=12.7 * 1.8, ka_per_h=5.8)
    t = np.linspace(0, 48, 200001)
    c = oral.concentration(t, [0.0, 24.0], [135.0, 135.0])
    assert np.trapezoid(c, t) == pytest.approx(oral.exposure([0.0], [48.0], [0.0, 24.0], [135.0, 135.0])[0], rel=1e-6)
    # tmax of oral absorption: ln(ka/ke)/(ka-ke)
    ke = oral.ke_per_h
    tmax = np.log(5.8 / ke) / (5.8 - ke)
    assert t[np.argmax(c[t < 24])] == pytest.approx(tmax, abs=1e-3)
