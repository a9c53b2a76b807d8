"""The oncology twin on awkward inputs, fed through PatientContext with files written here.

Each case writes what the ingest stage would have produced (canonical NIfTI under
``results/<patient>/ingest/imaging/<visit>/``) plus the sheet rows, then runs the model's own
``segment`` / ``estimate`` / ``simulate`` / twin build.  Every bad input must end in one
:class:`InputError` naming the patient, the file (as the sheet wrote it) and the problem; every
usable one in a sane twin.  Tumours are grown with twinflow's solver from known parameters on
small grids, so a sane twin also means recovered parameters.
"""

from __future__ import annotations

import json
from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest

from twinflow.errors import InputError
from twinflow.models.base import PatientContext
from twinflow.models.oncology.calibrate import calibrate
from twinflow.models.oncology.density import T2_THRESHOLD, Observation
from twinflow.models.oncology.growth import GrowthParams, ReactionDiffusion
from twinflow.layout import Layout
from twinflow.models.oncology.model import OncologyTwin
from twinflow.sheets import ImageRow

PID = "AWK01"
TRUE = GrowthParams(d_w_mm2_day=0.25, k_per_day=0.05)
ADC_W, ADC_MIN = 3000.0, 300.0


def _nii(path, arr, spacing):
    path.parent.mkdir(parents=True, exist_ok=True)
    aff = np.diag(list(spacing) + [1.0])
    nib.save(nib.Nifti1Image(np.asarray(arr), aff), str(path))


class Patient:
    """Writes a patient's ingested files and sheet rows; ``context()`` gives the PatientContext."""

    def __init__(self, root, spacing=(2.0, 2.0, 2.0), pid=PID):
        self.root, self.spacing, self.pid = root, spacing, pid
        self.rows: list[ImageRow] = []
        self.treatments: list[dict] = []

    @property
    def results(self):
        return self.root / "results" / self.pid

    def add(self, visit, date, series, arr, label=None, roi=None):
        base = self.results / "ingest" / "imaging" / visit
        _nii(base / f"{series}.nii.gz", arr, self.spacing)
        shown = f"{self.pid}/{visit}/{series}.nii.gz"
        lab_shown = None
        if label is not None:
            _nii(base / f"{series}.label.nii.gz", np.asarray(label, np.uint8), self.spacing)
            lab_shown = f"{self.pid}/{visit}/{series}_label.nii.gz"
        self.rows.append(ImageRow(self.pid, visit, date, series, str(base / f"{series}.nii.gz"), shown,
                                  str(base) if label is not None else None, lab_shown, None, roi))

    def context(self, **config) -> PatientContext:
        row = {"patient_id": self.pid, "twin_model": "oncology", "sex": "F", "age_years": 60, "height_cm": 165.0,
               "weight_kg": 65.0}
        return PatientContext(self.pid, row, sorted(self.rows, key=lambda r: (r.date, r.visit, r.series)),
                              self.treatments, Layout(str(self.root / "results")), dict(config))

    def run(self, **config):
        """segment every visit, estimate; returns (model, context, estimate.json)."""
        m = OncologyTwin()
        ctx = self.context(**config)
        for v in m.segment_visits(ctx):
            m.segment(ctx, v, ctx.segment_dir(v))
        m.estimate(ctx, self.results / "estimate")
        return m, ctx, json.loads((self.results / "estimate" / "estimate.json").read_text())


def grown(shape, spacing, days, params=TRUE, domain=None, p_wm=None, p_gm=None, centre=None, radius_mm=5.0):
    """Visible cell fraction (u >= 0.16, 0 elsewhere at day 0, as imaging shows it) at ``days``."""
    domain = np.ones(shape, bool) if domain is None else domain
    p_wm = domain.astype(np.float32) if p_wm is None else p_wm
    p_gm = np.zeros(shape, np.float32) if p_gm is None else p_gm
    ii = np.indices(shape, dtype=np.float64)
    c = [n / 2 for n in shape] if centre is None else centre
    r = np.sqrt(sum(((ii[a] - c[a]) * spacing[a]) ** 2 for a in range(3)))
    u0 = np.where(domain, 0.95 / (1 + np.exp((r - radius_mm) / 1.0)), 0.0).astype(np.float32)
    u0 = np.where(u0 >= T2_THRESHOLD, u0, 0).astype(np.float32)
    rd = ReactionDiffusion(spacing, domain, p_wm, p_gm)
    out = rd.simulate(u0, params, max(days), 0.5, save_days=[float(d) for d in days])
    return {d: out[float(d)] for d in days}


def adc_of(u):
    """ADC (the linear mapping inside the visible tumour, tissue 800 elsewhere) and labels in the
    Swanson convention: 1 enhancing (u >= 0.8), 2 non-enhancing (0.16 <= u < 0.8)."""
    visible = u >= T2_THRESHOLD
    lab = np.where(u >= 0.8, 1, np.where(visible, 2, 0)).astype(np.uint8)
    tissue = 800.0 + 60.0 * np.sin(np.arange(u.size).reshape(u.shape))    # texture: tissue ADC is never constant
    return np.where(visible, ADC_W - (ADC_W - ADC_MIN) * u, tissue).astype(np.float32), lab

#: the observation model these images were made with: ADC mapped in the whole tumour, ADC_min 300
IMAGING = {"nonenhancing": "adc", "adc_min_um2_s": ADC_MIN}


DATES = ("2024-01-01", "2024-01-22", "2024-02-19", "2024-03-18")
DAYS = (0, 21, 49, 77)


def adc_patient(tmp_path, n_visits=3, shape=(24, 24, 16), spacing=(2.0, 2.0, 2.0), skip_adc=(), **kw):
    p = Patient(tmp_path, spacing)
    truth = grown(shape, spacing, DAYS[:n_visits], **kw)
    for i in range(n_visits):
        adc, lab = adc_of(truth[DAYS[i]])
        v = f"V{i + 1}"
        if i in skip_adc:   # a visit without ADC: its expert label sits on a FLAIR-like series
            p.add(v, DATES[i], "T2w_like", (200 + 100 * (lab > 0)).astype(np.float32), label=lab)
        else:
            p.add(v, DATES[i], "ADC", adc, label=lab)
        if i == 0:
            p.add(v, DATES[i], "organ_mask", np.ones(shape, np.uint8))
    return p, truth


def rel(est, name):
    field = {"d_w": "d_w_mm2_day", "k": "k_per_day"}[name]
    return est["calibration"]["parameters"][name]["value"] / getattr(TRUE, field) - 1


def named(exc: pytest.ExceptionInfo, *parts: str) -> None:
    msg = str(exc.value)
    assert msg.startswith(f"patient {PID}: "), msg
    for p in parts:
        assert p in msg, msg
    assert "Traceback" not in msg


# ----------------------------------------------------------------------------- sane results

def test_adc_visits_with_expert_rois_are_calibrated(tmp_path):
    p, _ = adc_patient(tmp_path)
    m, ctx, est = p.run(holdout_visits=0, **IMAGING)
    assert m.segment_visits(ctx) == ["V1", "V2", "V3"]
    assert est["calibrated"] and est["observation_sources"] == ["adc", "adc", "adc"]
    assert est["organ"] == "organ"
    assert abs(rel(est, "d_w")) < 0.05 and abs(rel(est, "k")) < 0.05
    assert est["calibration"]["parameters"]["d_w"]["identifiable"]


def test_a_visit_without_adc_uses_its_labels(tmp_path):
    p, _ = adc_patient(tmp_path, n_visits=4, skip_adc=(2,))
    _, _, est = p.run(holdout_visits=1, **IMAGING)
    assert est["observation_sources"] == ["adc", "adc", "labels", "adc"]
    assert abs(rel(est, "d_w")) < 0.15 and abs(rel(est, "k")) < 0.15
    (f,) = est["forecast"]
    assert f["visit"] == "V4" and f["dice"] > 0.85


def test_anisotropic_6_5_mm_slices(tmp_path):
    p, _ = adc_patient(tmp_path, shape=(40, 40, 8), spacing=(1.0, 1.0, 6.5), radius_mm=7.0)
    _, _, est = p.run(holdout_visits=0, **IMAGING)
    assert est["spacing_mm"] == [1.0, 1.0, 6.5]
    assert abs(rel(est, "d_w")) < 0.1 and abs(rel(est, "k")) < 0.1


def test_adc_units_are_recognised(tmp_path):
    """The same ADC in mm^2/s gives the same twin."""
    p, truth = adc_patient(tmp_path)
    for i in range(3):
        adc, lab = adc_of(truth[DAYS[i]])
        _nii(p.results / "ingest" / "imaging" / f"V{i + 1}" / "ADC.nii.gz", adc * 1e-6, p.spacing)
    _, _, est = p.run(holdout_visits=0, **IMAGING)
    assert set(est["adc"]["units_found"].values()) == {"mm2/s"}
    assert abs(rel(est, "d_w")) < 0.05


def test_breast_tissue_maps_give_tissue_dependent_diffusion(tmp_path):
    shape, sp = (28, 28, 14), (2.0, 2.0, 2.0)
    ii = np.indices(shape)
    organ = (ii[2] >= 2) & (ii[2] < 13)
    fg = np.where(organ & (ii[0] < 16), 0.9, 0.1).astype(np.float32) * organ
    fat = np.where(organ, 1.0 - fg, 0.0).astype(np.float32)
    params = replace(TRUE, gm_ratio=0.5)
    truth = grown(shape, sp, DAYS[:3], params=params, domain=organ, p_wm=fg, p_gm=fat, centre=(14, 14, 7))
    p = Patient(tmp_path, sp)
    for i in range(3):
        adc, lab = adc_of(truth[DAYS[i]])
        p.add(f"V{i + 1}", DATES[i], "ADC", adc, label=lab)
    p.add("V1", DATES[0], "organ_mask", organ.astype(np.uint8))
    p.add("V1", DATES[0], "fibroglandular_prob", fg)
    p.add("V1", DATES[0], "adipose_prob", fat)
    _, _, est = p.run(holdout_visits=0, **IMAGING)
    assert est["organ"] == "breast" and est["params"]["gm_ratio"] == 0.5
    assert any("fibroglandular" in a for a in est["assumptions"])
    assert abs(rel(est, "d_w")) < 0.1 and abs(rel(est, "k")) < 0.1


def test_one_visit_gives_an_uncalibrated_twin_from_priors(tmp_path):
    from twinflow.models.oncology.inputs import PRIORS
    from twinflow.twin.build import build_twin

    p, _ = adc_patient(tmp_path, n_visits=1)
    p.treatments = [{"date": "2024-01-08", "kind": "radiotherapy", "agent": "photon", "dose": 2.0, "unit": "Gy"}]
    m, ctx, est = p.run()
    assert est["calibrated"] is False and est["forecast"] == []
    assert est["params"]["d_w_mm2_day"] == PRIORS["organ"].d_w_mm2_day
    assert all(not v["estimated"] and v["identifiable"] is None for v in est["calibration"]["parameters"].values())
    ctx = replace(ctx, config={"horizon_days": 30, "arms": ["no_treatment"]})
    m.simulate(ctx, p.results / "estimate", p.results / "simulate")
    doc = build_twin(ctx, m, estimate_dir=p.results / "estimate", simulate_dir=p.results / "simulate",
                     twin_json=p.results / "twin" / "twin.json", resolved_config={})
    assert doc["calibrated"] is False
    for name in ("d_w_mm2_day", "k_per_day", "alpha_per_gy", "kappa_l_per_mg_h"):
        par = doc["parameters"][name]
        assert par["identifiable"] is None and par["sd"] is None and not par["estimated"]
        assert "prior" in par["source"] and "uncalibrated" in par["source"]
    assert any(a.startswith("uncalibrated twin") for a in doc["assumptions"])


def test_one_voxel_lesion_is_a_sane_twin(tmp_path):
    """A lesion of one voxel at the first visit (the boundary-shell guard of the initial condition
    used to zero it: no 6-neighbour in the mask) growing to a few voxels."""
    shape, sp = (16, 16, 12), (2.0, 2.0, 2.0)
    slow = GrowthParams(d_w_mm2_day=0.02, k_per_day=0.08)
    p = Patient(tmp_path, sp)
    u = np.zeros(shape, np.float32)
    u[8, 8, 6] = 0.9
    truth = ReactionDiffusion(sp, np.ones(shape, bool), np.ones(shape, np.float32), np.zeros(shape, np.float32)
                              ).simulate(u, slow, 49.0, 0.5, save_days=[0.0, 21.0, 49.0])
    for i, d in enumerate((0, 21, 49)):
        adc, lab = adc_of(truth[float(d)])
        p.add(f"V{i + 1}", DATES[i], "ADC", adc, label=lab)
    p.add("V1", DATES[0], "brain_mask", np.ones(shape, np.uint8))
    _, _, est = p.run(holdout_visits=0, **IMAGING)
    assert est["calibrated"]
    par = est["calibration"]["parameters"]
    assert par["d_w"]["value"] == pytest.approx(0.02, rel=0.05) and par["k"]["value"] == pytest.approx(0.08, rel=0.05)
    assert par["d_w"]["identifiable"] and par["k"]["identifiable"]


# ----------------------------------------------------------------------------- named errors

def test_2d_image_is_a_named_error(tmp_path):
    p = Patient(tmp_path)
    u = np.zeros((32, 32, 1), np.float32)
    u[12:18, 12:18, 0] = 0.8
    for i in range(2):
        adc, lab = adc_of(u)
        p.add(f"V{i + 1}", DATES[i], "ADC", adc, label=lab)
    with pytest.raises(InputError) as e:
        p.run()
    named(e, f"{PID}/V1/ADC_label.nii.gz", "2D image", "32x32x1")


@pytest.mark.parametrize("value,problem", [(0.0, "no positive values"), (1500.0, "constant")])
def test_empty_or_constant_adc_is_a_named_error(tmp_path, value, problem):
    p, _ = adc_patient(tmp_path, n_visits=2)
    _nii(p.results / "ingest" / "imaging" / "V2" / "ADC.nii.gz", np.full((24, 24, 16), value, np.float32), p.spacing)
    with pytest.raises(InputError) as e:
        p.run(holdout_visits=0)
    named(e, f"{PID}/V2/ADC.nii.gz", problem)


def test_no_tumour_at_any_visit_is_a_named_error(tmp_path):
    p = Patient(tmp_path)
    for i in range(2):
        p.add(f"V{i + 1}", DATES[i], "ADC", np.full((16, 16, 12), 800.0, np.float32), label=np.zeros((16, 16, 12)))
    with pytest.raises(InputError) as e:
        p.run()
    named(e, "no tumour at any visit", "V1, V2")


def test_non_brain_anatomy_without_an_organ_mask_is_a_named_error(tmp_path):
    """A body with a separate breast-like mound holding the tumour and no organ mask: the brain
    estimated from the image does not contain the tumour, so the twin stops and asks for one."""
    shape, sp = (48, 40, 24), (2.0, 2.0, 2.0)
    ii = np.indices(shape)
    body = ((ii[0] - 24) / 20.0) ** 2 + ((ii[1] - 14) / 11.0) ** 2 + ((ii[2] - 12) / 10.0) ** 2 <= 1
    mound = ((ii[0] - 24) / 5.0) ** 2 + ((ii[1] - 32) / 4.0) ** 2 + ((ii[2] - 12) / 4.0) ** 2 <= 1
    img = np.where(body | mound, 400.0, 5.0) + np.random.default_rng(0).normal(0, 4, shape)
    u = np.zeros(shape, np.float32)
    u[22:27, 30:34, 10:14] = 0.9
    p = Patient(tmp_path, sp)
    for i in range(2):
        p.add(f"V{i + 1}", DATES[i], "T1", img.astype(np.float32))
        p.add(f"V{i + 1}", DATES[i], "ADC", *adc_of(u))
    with pytest.raises(InputError) as e:
        p.run(holdout_visits=0)
    named(e, "organ_mask", "inside the model's domain")
    # with an organ mask the same patient gets a twin
    p.add("V1", DATES[0], "organ_mask", (body | mound).astype(np.uint8))
    _, _, est = p.run(holdout_visits=0)
    assert est["calibrated"] and est["organ"] == "organ"


def test_holdout_leaving_one_calibration_visit_is_a_named_error(tmp_path):
    p, _ = adc_patient(tmp_path, n_visits=2)
    with pytest.raises(InputError) as e:
        p.run(holdout_visits=1)
    named(e, "holdout_visits=1", "fewer than 2")


def test_tissue_maps_on_another_grid_are_a_named_error(tmp_path):
    p, _ = adc_patient(tmp_path, n_visits=2)
    p.add("V1", DATES[0], "wm_prob", np.ones((10, 10, 10), np.float32))
    p.add("V1", DATES[0], "gm_prob", np.zeros((10, 10, 10), np.float32))
    with pytest.raises(InputError) as e:
        p.run(holdout_visits=0)
    named(e, f"{PID}/V1/wm_prob.nii.gz", "co-registered")


def test_roi_outside_the_brain_is_a_named_segmentation_error(tmp_path):
    shape = (32, 32, 20)
    p = Patient(tmp_path)
    ii = np.indices(shape)
    brain = ((ii[0] - 16) ** 2 + (ii[1] - 16) ** 2 + ((ii[2] - 10) * 1.5) ** 2) <= 12 ** 2
    img = np.where(brain, 300.0, 0.0).astype(np.float32)
    p.add("V1", DATES[0], "T1post", img, roi="300,300,300,320,320,320")
    p.add("V1", DATES[0], "brain_mask", brain.astype(np.uint8))
    m, ctx = OncologyTwin(), p.context()
    with pytest.raises(InputError) as e:
        m.segment(ctx, "V1", ctx.segment_dir("V1"))
    named(e, f"{PID}/V1/T1post.nii.gz", "segmentation failed")


# ----------------------------------------------------------------------------- identifiability

def test_a_parameter_the_data_cannot_inform_is_never_identified():
    """The 2D-image failure mode: nothing to move (no tumour), so no parameter has a sensitivity;
    before, a pseudo-inverse gave sd 0 and 'identifiable'."""
    shape = (8, 8, 6)
    dom = np.ones(shape, bool)
    obs = [Observation(d, np.full(shape, np.nan, np.float32), np.zeros(shape, np.float32),
                       np.full(shape, T2_THRESHOLD, np.float32), np.zeros(shape, bool), "labels") for d in (21.0,)]
    res = calibrate(np.zeros(shape, np.float32), obs, (2.0, 2.0, 2.0), dom, dom.astype(np.float32),
                    np.zeros(shape, np.float32))
    assert not any(res.identifiable.values())
    assert all(res.log_sd[n] is None for n in res.estimated)
    assert all("no sensitivity" in f or "residuals" in f for f in res.flags if f.startswith(("d_w:", "k:")))


def test_diffusion_without_a_gradient_is_not_identified():
    """A tumour filling its whole domain uniformly: D moves nothing, k does."""
    shape = (6, 6, 4)
    dom = np.ones(shape, bool)
    u0 = np.full(shape, 0.3, np.float32)
    u21 = 0.3 * np.exp(0.05 * 21) / (1 + 0.3 * (np.exp(0.05 * 21) - 1))
    rng = np.random.default_rng(1)
    val = (u21 + rng.normal(0, 0.01, shape)).astype(np.float32)
    obs = [Observation(21.0, val, np.full(shape, T2_THRESHOLD, np.float32), np.ones(shape, np.float32), dom, "adc")]
    res = calibrate(u0, obs, (2.0, 2.0, 2.0), dom, dom.astype(np.float32), np.zeros(shape, np.float32))
    assert res.identifiable["k"] and abs(res.params.k_per_day / 0.05 - 1) < 0.05
    assert not res.identifiable["d_w"] and res.log_sd["d_w"] is None


def test_2d_image_is_a_named_error_at_segmentation(tmp_path):
    from twinflow.models.oncology import inputs, model as twin

    assert twin.MIN_AXIS_VOXELS == inputs.MIN_AXIS_VOXELS
    p = Patient(tmp_path)
    img = np.zeros((32, 32, 1), np.float32)
    img[10:20, 10:20] = 500.0
    p.add("V1", DATES[0], "T1post", img)
    m, ctx = OncologyTwin(), p.context()
    with pytest.raises(InputError) as e:
        m.segment(ctx, "V1", ctx.segment_dir("V1"))
    named(e, f"{PID}/V1/T1post.nii.gz", "2D image", "32x32x1")


def test_simulation_errors_are_named(tmp_path):
    p, _ = adc_patient(tmp_path, n_visits=2)
    m, ctx, _ = p.run(holdout_visits=0, **IMAGING)
    with pytest.raises(InputError) as e:
        m.simulate(replace(ctx, config={"arms": ["no_such_arm"], "horizon_days": 10}), p.results / "estimate",
                   p.results / "simulate")
    named(e, "simulation failed", "no_such_arm")


def test_drug_pk_from_config_reaches_simulation_and_verify(tmp_path):
    """A drug other than temozolomide needs its PK (config key drug_pk); without it, a named error.
    With it, the course re-simulates byte for byte from the twin folder (twinflow verify)."""
    from twinflow.twin.build import build_twin

    p, _ = adc_patient(tmp_path, n_visits=2)
    p.treatments = [{"date": "2024-01-08", "kind": "drug", "agent": "doxorubicin", "dose": 60.0, "unit": "mg/m2"}]
    with pytest.raises(InputError) as e:
        p.run(holdout_visits=0, **IMAGING)
    named(e, "no PK parameters for drug 'doxorubicin'")
    pk = {"doxorubicin": {"cl_l_h_per_m2": 24.0, "v_l_per_m2": 500.0}}
    m, ctx, est = p.run(holdout_visits=0, drug_pk=pk, **IMAGING)
    assert est["drug_pk"] == pk and est["calibration"]["parameters"]["kappa"]["estimated"]
    sim_ctx = replace(ctx, config={"horizon_days": 20, "arms": ["no_treatment"]})
    m.simulate(sim_ctx, p.results / "estimate", p.results / "simulate")
    build_twin(sim_ctx, m, estimate_dir=p.results / "estimate", simulate_dir=p.results / "simulate",
               twin_json=p.results / "twin" / "twin.json", resolved_config={})
    again = m.resimulate(p.results / "twin", {}, "course")
    assert again["results/course.tsv"] == (p.results / "twin" / "results" / "course.tsv").read_bytes()


@pytest.mark.parametrize("value", [0.0, 250.0])
@pytest.mark.parametrize("with_mask", [False, True])
def test_empty_or_constant_tumour_image_is_a_named_error(tmp_path, value, with_mask):
    """An all-zero or constant T1post stops the twin at segmentation, with or without a brain mask
    (with one, the automatic segmentation used to find a 12 ml 'tumour' in a constant image)."""
    p = Patient(tmp_path)
    for i in range(2):
        p.add(f"V{i + 1}", DATES[i], "T1post", np.full((24, 24, 16), value, np.float32))
    if with_mask:
        p.add("V1", DATES[0], "brain_mask", np.ones((24, 24, 16), np.uint8))
        p.add("V2", DATES[1], "brain_mask", np.ones((24, 24, 16), np.uint8))
    with pytest.raises(InputError) as e:
        p.run()
    named(e, f"{PID}/V1/T1post.nii.gz", "empty (all 0)" if value == 0 else "constant (250)", "no contrast")


def test_an_organ_mask_on_another_grid_is_resampled(tmp_path):
    """A 1 mm organ mask for 2 mm ADC visits (same world space): resampled, noted, same twin."""
    p, _ = adc_patient(tmp_path)
    fine = np.ones((48, 48, 32), np.uint8)
    _nii(p.results / "ingest" / "imaging" / "V1" / "organ_mask.nii.gz", fine, (1.0, 1.0, 1.0))
    _, _, est = p.run(holdout_visits=0, **IMAGING)
    assert any("organ mask is resampled" in a for a in est["assumptions"])
    assert abs(rel(est, "d_w")) < 0.05 and abs(rel(est, "k")) < 0.05
