"""A longitudinal high-grade-glioma case in TumorTwin's input layout, generated from TumorTwin's
equations and parameter values by an implementation written for this module.

The point is a check against a model twinflow did not write.  TumorTwin
(github.com/OncologyModelingGroup/TumorTwin, UT Austin research licence) documents its model,
its solver, the parameter values of its high-grade-glioma (HGG) demo and its input layout; this
module re-implements the documented equations independently (no TumorTwin code is used or
copied) and writes a case that twinflow reads through its ordinary sheets.

Model (TumorTwin ``ReactionDiffusion3D``, treatments ``RadiotherapySpecification`` and
``ChemotherapySpecification``), ``N`` the tumour cell fraction (carrying capacity ``theta = 1``)::

    dN/dt = d lap(N) + k N (1 - N) - s C(t) N,      C(t) = sum_j c_j exp(-beta (t - tau_j)) [t >= tau_j]
    N(t_f+) = N(t_f-) exp(-alpha x_f - (alpha / ab) x_f^2)     (a radiotherapy fraction of x_f Gy)

* ``d`` is one diffusivity inside the brain mask (TumorTwin has no tissue dependence).  The
  Laplacian is TumorTwin's 7-point finite-difference stencil on the brain mask: central
  differences where both neighbours along an axis are in the mask, the one-sided ghost-node form
  ``2 (N_nb - N) / h^2`` where only one is, nothing where neither is.
* After every step ``N`` is set to 0 outside the mask and clipped to ``[0, 1]``; a radiotherapy
  fraction given on day ``D`` acts at ``D`` 00:00, before the step that starts then.
* Time integration is the classical 4th-order Runge-Kutta method (TumorTwin's ``rk4``) with
  ``dt_day`` = 0.1 day (0.25 in the reduced test case) on a 1 mm grid; twinflow calibrates with
  its own operator-split scheme (exact logistic step, 0.5-day steps) on the 2 mm image grid.

Parameter values: those TumorTwin generated its HGG demo data with (tutorial "HGG_Demo":
``true_parameters`` for ``d, k, alpha, ct_sens`` = 0.1, 0.05, 0.05, 0.2; ``alpha_beta_ratio`` 10;
``decay_rate`` 9.242 /day).  TumorTwin does not document the scale of its chemotherapy doses
``c_j`` (its demo sweeps totals of 30-70 over about 80 doses, so ``c_j`` is of order 1); here
``c_j`` is the temozolomide dose in units of the standard concomitant dose, ``c_j = dose / (75
mg/m^2)``.  In twinflow's parametrisation (a log-kill ``kappa`` per unit AUC of a one-compartment
PK model with CL/F = 5.5 L/h/m^2) the same kill per dose is ``kappa = s CL_m2 / (75 beta)`` =
1.587e-3 L/(mg h), whatever the body-surface area (:func:`kappa_equivalent`).

Observation (TumorTwin ``ADC_to_cellularity`` run backwards): inside the visible tumour
(``N >= 0.16``, the FLAIR visibility threshold of glioma models and TumorTwin's non-enhancing
cellularity) ``ADC = ADC_w (1 - N)`` with ``ADC_w = 3000 um^2/s`` (TumorTwin's free-water value,
with its ``ADC_min = 0``); tissue values elsewhere (white matter 750, grey matter 850, CSF 3000);
Gaussian noise (``adc_noise``, default 50 um^2/s), clipped at 0.  The image grid is 2 x 2 x 2 mm,
each image voxel the mean of its 8 voxels of the 1 mm grid (partial volume).  Regions of interest
as an expert draws them on a contrast-enhanced glioma: the visible tumour's outer one-voxel rim
(6-neighbourhood) is the non-enhancing ROI (FLAIR-only margin), the rest the enhancing ROI.

Layout written under ``out_dir`` (TumorTwin's ``HGGPatientData`` fields: a brain mask, T1 pre and
post contrast and FLAIR at the first visit, and per visit an ADC map with enhancing and
non-enhancing ROI masks; radiotherapy fractions and chemotherapy doses with times)::

    <pid>/<pid>.json                      TumorTwin-style index (times, files, RT and CT lists)
    <pid>/V1/{T1,T1post,FLAIR,brain_mask}.nii.gz
    <pid>/V<i>/ADC.nii.gz, roi_enhance.nii.gz, roi_nonenhance.nii.gz
    <pid>/V<i>/label.nii.gz               both ROIs in one map (1 enhancing, 2 non-enhancing): the
                                          ADC row's ``label_path`` in imaging.tsv
    patients.tsv, imaging.tsv, treatments.tsv
    truth/<pid>/truth.json, truth/<pid>/V<i>_density.nii.gz   (never referenced by the sheets)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from twinflow.demo.cohort import rt_days as cohort_rt_days, tmz_doses as cohort_tmz_doses
from twinflow.io.atomic import gzip_bytes, write_bytes, write_json, write_text

#: TumorTwin HGG demo values (see the module docstring)
TT_D_MM2_DAY = 0.1
TT_K_PER_DAY = 0.05
TT_ALPHA_PER_GY = 0.05
TT_AB_RATIO_GY = 10.0
TT_CT_SENSITIVITY = 0.2          # per unit dose per day
TT_CT_DECAY_PER_DAY = 9.242
ADC_W = 3000.0                   # um^2/s (= 1e-6 mm^2/s)
VISIBLE = 0.16                   # visibility threshold of the ROIs
STANDARD_TMZ_MG_M2 = 75.0        # c_j = dose / 75 mg/m^2
TMZ_CL_L_H_M2 = 5.5              # twinflow's temozolomide CL/F per m^2 (schedule.TEMOZOLOMIDE_PK)


def kappa_equivalent(sensitivity: float = TT_CT_SENSITIVITY, decay_per_day: float = TT_CT_DECAY_PER_DAY) -> float:
    """twinflow's ``kappa`` (L/(mg h)) with the same log-kill per dose as TumorTwin's chemotherapy term:
    ``s c / beta`` (TumorTwin, ``c = dose_m2 / 75``) = ``kappa dose_m2 BSA / (CL_m2 BSA)`` (twinflow)."""
    return sensitivity * TMZ_CL_L_H_M2 / (STANDARD_TMZ_MG_M2 * decay_per_day)


@dataclass(frozen=True)
class CaseSpec:
    """A generated case.  Days count from the first visit."""
    patient_id: str = "TT001"
    box_mm: float | None = 96.0         # cube of the 1 mm simulation domain around the seed; None: whole brain
    seed_mm: tuple[float, float, float] = (26.0, 12.0, 26.0)   # RAS, in white matter
    seed_radius_mm: float = 8.0         # a dense nodule at carrying capacity ...
    pre_days: int = 40                  # ... grown untreated to the first visit
    visit_days: tuple[int, ...] = (0, 7, 14, 21, 105, 119, 133, 147, 161, 175)
    baseline: str = "2024-03-03"        # a Sunday: visits on Sundays fall between fractions
    rt_start_day: int = 8               # Monday
    rt_fractions: int = 30
    rt_dose_gy: float = 2.0
    tmz_mg_m2: float | None = 75.0      # concomitant, daily from the first to the last fraction
    adjuvant_cycles: int = 6            # 5/28-day cycles after RT (Stupp)
    adjuvant_mg_m2: float = 150.0
    dt_day: float = 0.1
    fine_mm: float = 1.0
    image_factor: int = 2               # image voxel = image_factor^3 fine voxels
    adc_noise: float = 50.0
    seed: int = 1515
    height_cm: float = 175.0
    weight_kg: float = 78.0
    sex: str = "M"
    age_years: int = 58

    @property
    def image_mm(self) -> float:
        return self.fine_mm * self.image_factor


#: the test's smaller version: a 48 mm domain, a younger tumour, RK4 at 0.25 day
REDUCED = CaseSpec(patient_id="TT001", box_mm=64.0, dt_day=0.25)
FULL = CaseSpec()


def _visit(i: int) -> str:
    return f"V{i + 1}"


def _date(base: str, day: float) -> str:
    return (dt.date.fromisoformat(base) + dt.timedelta(days=int(day))).isoformat()


# the demo cohort's Stupp schedule (Mon-Fri fractions from rt_start_day; temozolomide daily from the
# first to the last fraction, then 5/28-day adjuvant cycles) works on any object with its fields
rt_days = cohort_rt_days
tmz_doses = cohort_tmz_doses


# ----------------------------------------------------------------------------- TumorTwin's model

class TumorTwinSolver:
    """TumorTwin's semi-discrete model (stencil above) integrated with classical RK4 (float64)."""

    def __init__(self, mask: np.ndarray, spacing_mm: float, d: float, k: float, *, alpha: float = 0.0,
                 ab_ratio: float = TT_AB_RATIO_GY, ct_sensitivity: float = 0.0, ct_decay: float = TT_CT_DECAY_PER_DAY):
        self.mask = np.asarray(mask, bool)
        self.d, self.k, self.alpha, self.ab = float(d), float(k), float(alpha), float(ab_ratio)
        self.s, self.beta = float(ct_sensitivity), float(ct_decay)
        h2 = float(spacing_mm) ** 2
        m = self.mask
        # per axis, on the faces i|i+1 (shape n-1 along the axis): the coefficient with which the
        # difference N[i+1] - N[i] enters voxel i (forward neighbour) and voxel i+1 (backward one)
        self.coef = []
        for ax in range(3):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[ax], hi[ax] = slice(0, -1), slice(1, None)
            lo, hi = tuple(lo), tuple(hi)
            both = m[lo] & m[hi]
            has_back = np.zeros_like(m)
            has_fwd = np.zeros_like(m)
            has_back[hi] = both
            has_fwd[lo] = both
            # voxel i uses 1/h^2 per neighbour when it has both, 2/h^2 for its only neighbour
            w = np.where(has_back & has_fwd, 1.0, 2.0) / h2
            self.coef.append((lo, hi, np.where(both, w[lo], 0.0) * self.d, np.where(both, w[hi], 0.0) * self.d))

    def diffusion(self, n: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``out = d lap(N)`` with TumorTwin's stencil."""
        out[...] = 0.0
        for lo, hi, c_lo, c_hi in self.coef:
            diff = n[hi] - n[lo]                      # N[i+1] - N[i] on every face
            out[lo] += c_lo * diff
            out[hi] -= c_hi * diff
        return out

    def concentration(self, t: float, doses: list[tuple[float, float]]) -> float:
        return float(sum(c * np.exp(-self.beta * (t - tj)) for tj, c in doses if t >= tj - 1e-12))

    def rhs(self, t: float, n: np.ndarray, doses, out: np.ndarray) -> np.ndarray:
        kill = self.s * self.concentration(t, doses) if self.s and doses else 0.0
        self.diffusion(n, out)
        out += n * (self.k * (1.0 - np.clip(n, 0.0, 1.0)) - kill)
        return out

    def run(self, n0: np.ndarray, t_end: float, dt: float, *, rt: dict[int, float] | None = None,
            ct: list[tuple[float, float]] | None = None, save: list[float] = ()) -> dict[float, np.ndarray]:
        """Integrate from 0 to ``t_end``; ``rt`` maps a day to its fraction dose (Gy), ``ct`` lists
        ``(day, c_j)``; returns the state at each ``save`` day (which must be on the step grid)."""
        rt = rt or {}
        ct = sorted(ct or [])
        n = np.where(self.mask, np.asarray(n0, np.float64), 0.0)
        steps = int(round(t_end / dt))
        save_at = {int(round(s / dt)): s for s in save}
        k = [np.empty_like(n) for _ in range(4)]
        stage = np.empty_like(n)
        out = {}
        for i in range(steps + 1):
            t = i * dt
            if i in save_at:
                out[save_at[i]] = n.copy()
            if i == steps:
                break
            day = round(t)
            if abs(t - day) < 1e-9 and day in rt:
                x = rt[day]
                n *= np.exp(-self.alpha * x - self.alpha / self.ab * x * x)
            # doses given up to the step's start: C(t) is smooth inside a step, so RK4 keeps its order
            # (a dose falling inside a step would make the right-hand side jump; dose days are on the grid)
            live = [(tj, c) for tj, c in ct if tj <= t + 1e-9 and t - tj < 40.0 / self.beta]
            self.rhs(t, n, live, k[0])
            np.multiply(k[0], dt / 2, out=stage)
            stage += n
            self.rhs(t + dt / 2, stage, live, k[1])
            np.multiply(k[1], dt / 2, out=stage)
            stage += n
            self.rhs(t + dt / 2, stage, live, k[2])
            np.multiply(k[2], dt, out=stage)
            stage += n
            self.rhs(t + dt, stage, live, k[3])
            k[1] += k[2]
            k[1] *= 2.0
            k[1] += k[0]
            k[1] += k[3]
            k[1] *= dt / 6.0
            n += k[1]
            n[~self.mask] = 0.0
            np.clip(n, 0.0, 1.0, out=n)
        return out


# ----------------------------------------------------------------------------- anatomy and images

@dataclass
class _Grid:
    fine_affine: np.ndarray
    image_affine: np.ndarray
    brain: np.ndarray         # fine grid
    p_wm: np.ndarray
    p_gm: np.ndarray
    p_csf: np.ndarray
    t1: np.ndarray


def _grid(spec: CaseSpec) -> _Grid:
    from twinflow.demo.anatomy import load_anatomy

    f = spec.image_factor
    anat = load_anatomy(spacing=(spec.fine_mm,) * 3)
    if spec.box_mm is None:
        idx = np.argwhere(anat.brain)
        lo, hi = idx.min(0) - 2, idx.max(0) + 3
    else:
        c = np.round(anat.world_to_voxel(spec.seed_mm)).astype(int)
        half = int(round(spec.box_mm / spec.fine_mm / 2))
        lo, hi = c - half, c + half
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, anat.shape)
    hi = lo + (hi - lo) // f * f                  # whole image voxels
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    aff = anat.affine.copy()
    aff[:3, 3] = anat.affine[:3, :3] @ lo + anat.affine[:3, 3]
    img = aff.copy()
    img[:3, :3] *= f
    img[:3, 3] += aff[:3, :3] @ np.full(3, (f - 1) / 2.0)   # centre of the first f^3 block
    return _Grid(aff, img, anat.brain[box].copy(), anat.p_wm[box].copy(), anat.p_gm[box].copy(),
                 anat.p_csf[box].copy(), anat.t1[box].copy())


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """Mean over non-overlapping ``f^3`` blocks (shape divisible by ``f``)."""
    a = np.asarray(a, np.float64)
    s = a.shape
    return a.reshape(s[0] // f, f, s[1] // f, f, s[2] // f, f).mean(axis=(1, 3, 5))


def rois(n_img: np.ndarray, brain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(enhancing, non-enhancing) ROIs of an image-grid cell fraction: see the module docstring."""
    visible = (n_img >= VISIBLE) & brain
    core = ndimage.binary_erosion(visible, ndimage.generate_binary_structure(3, 1), border_value=0)
    return core, visible & ~core


def _nifti(path: Path, arr: np.ndarray, affine: np.ndarray) -> None:
    img = nib.Nifti1Image(np.asarray(arr), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    write_bytes(path, gzip_bytes(img.to_bytes()))


def _tsv(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        return f"{v:g}" if isinstance(v, float) else str(v)
    return "\n".join(["\t".join(cols)] + ["\t".join(fmt(r.get(c, "")) for c in cols) for r in rows]) + "\n"


# ----------------------------------------------------------------------------- generate

def upsample(a: np.ndarray, f: int, iterations: int = 20) -> np.ndarray:
    """An image-grid map on the fine grid: smooth inside (trilinear; image voxel centres at fine
    index ``(f - 1) / 2 + f i``) and with the image's values as block means (back-projection:
    the block-mean residual is added back ``iterations`` times, clipped to [0, 1]).  ``f``-voxel
    blocks of constant value would have sharp steps that the fine grid smooths in the first days
    faster than a real tumour profile; a plain interpolation would not average to the image."""
    a = np.asarray(a, np.float64)
    shape = tuple(n * f for n in a.shape)
    coords = [(np.arange(n, dtype=np.float64) - (f - 1) / 2.0) / f for n in shape]
    n = ndimage.map_coordinates(a, np.meshgrid(*coords, indexing="ij"), order=1, mode="nearest")
    for _ in range(iterations):
        r = a - block_mean(n, f)
        n += np.repeat(np.repeat(np.repeat(r, f, axis=0), f, axis=1), f, axis=2)
        np.clip(n, 0.0, 1.0, out=n)
    return n


def tumortwin_cellularity(adc: np.ndarray, enhancing: np.ndarray, nonenhancing: np.ndarray) -> np.ndarray:
    """TumorTwin's ``ADC_to_cellularity`` as documented: ``|ADC_w - ADC| / ADC_w`` in the enhancing
    ROI, 0.16 in the non-enhancing ROI, 0 elsewhere, clipped to [0, 1] (ADC in um^2/s)."""
    out = np.zeros(adc.shape, np.float64)
    out[np.asarray(nonenhancing, bool)] = VISIBLE
    e = np.asarray(enhancing, bool)
    out[e] = np.abs(ADC_W - adc[e]) / ADC_W
    return np.clip(out, 0.0, 1.0)


@dataclass
class _Observer:
    """Image-grid brain mask and tissue ADC; turns an image-grid cell fraction into an ADC map and ROIs."""
    brain: np.ndarray
    tissue_adc: np.ndarray
    noise: float

    def __call__(self, n_img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        enh, non = rois(n_img, self.brain)
        adc = np.where(enh | non, ADC_W * (1.0 - n_img), self.tissue_adc)
        adc = np.where(self.brain, np.clip(adc + rng.normal(0.0, self.noise, adc.shape), 0.0, None), 0.0)
        return adc, enh, non


def _observer(spec: CaseSpec, g: _Grid) -> _Observer:
    f = spec.image_factor
    brain = block_mean(g.brain, f) >= 0.5
    p_wm, p_gm, p_csf = (block_mean(a, f) for a in (g.p_wm, g.p_gm, g.p_csf))
    return _Observer(brain, np.where(brain, 750.0 * p_wm + 850.0 * p_gm + 3000.0 * p_csf, 0.0), spec.adc_noise)


def simulate(spec: CaseSpec, rng: np.random.Generator, grid: _Grid | None = None):
    """Grow the tumour to the first visit, image it, and run TumorTwin's model from that visit's
    measured cellularity map -- as TumorTwin's own forward runs start (``u0`` = the first visit's
    ``ADC_to_cellularity`` map, zero outside the ROIs), upsampled to the 1 mm grid.

    Returns the grid, the first visit's (ADC, enhancing ROI, non-enhancing ROI) and the fine-grid
    cell fraction at every visit day (day 0: the initial condition)."""
    g = grid or _grid(spec)
    f = spec.image_factor
    solver = TumorTwinSolver(g.brain, spec.fine_mm, TT_D_MM2_DAY, TT_K_PER_DAY, alpha=TT_ALPHA_PER_GY,
                             ct_sensitivity=TT_CT_SENSITIVITY, ct_decay=TT_CT_DECAY_PER_DAY)
    # a dense nodule (smooth 1 mm edge) in white matter, grown untreated to the first visit: its core
    # is at carrying capacity, as in a tumour grown from a few cells over years
    ii = np.indices(g.brain.shape, dtype=np.float64)
    c = np.linalg.solve(g.fine_affine, np.r_[np.asarray(spec.seed_mm, float), 1.0])[:3]
    r = np.sqrt(sum(((ii[a] - c[a]) * spec.fine_mm) ** 2 for a in range(3)))
    seed = 1.0 / (1.0 + np.exp((r - spec.seed_radius_mm) / 1.0))
    pre = solver.run(seed, spec.pre_days, spec.dt_day, save=[spec.pre_days])[spec.pre_days]
    first = _observer(spec, g)(block_mean(pre, f), rng)
    u0 = tumortwin_cellularity(*first)
    n0 = upsample(u0, f)
    rt = {d: spec.rt_dose_gy for d in rt_days(spec)}
    ct = [(float(d), mg / STANDARD_TMZ_MG_M2) for d, mg in tmz_doses(spec)]
    days = [float(d) for d in spec.visit_days]
    out = solver.run(n0, max(days), spec.dt_day, rt=rt, ct=ct, save=days)
    return g, first, {int(d): out[float(d)] for d in spec.visit_days}


def generate(out_dir: str | Path, spec: CaseSpec = FULL) -> dict[str, Any]:
    """Write the case (layout in the module docstring); return its truth record."""
    out = Path(out_dir)
    pid = spec.patient_id
    f = spec.image_factor
    rng = np.random.default_rng(spec.seed)
    g, first, truth = simulate(spec, rng)
    aff = g.image_affine
    observe = _observer(spec, g)
    brain = observe.brain
    p_wm, p_gm, p_csf = (block_mean(a, f) for a in (g.p_wm, g.p_gm, g.p_csf))
    t1 = block_mean(g.t1, f)
    pdir = out / pid
    visits = []
    index = {"patient": pid, "brainmask": "V1/brain_mask.nii.gz", "T1_pre": "V1/T1.nii.gz",
             "T1_post": "V1/T1post.nii.gz", "T2_flair": "V1/FLAIR.nii.gz", "visits": [],
             "radiotherapy": [], "chemotherapy": []}
    irows = []
    for i, day in enumerate(spec.visit_days):
        v = _visit(i)
        n = block_mean(truth[day], f)
        adc, enh, non = first if i == 0 else observe(n, rng)
        visible = enh | non
        lab = np.zeros(n.shape, np.uint8)
        lab[non] = 2
        lab[enh] = 1
        date = _date(spec.baseline, day)
        _nifti(pdir / v / "ADC.nii.gz", adc.astype(np.float32), aff)
        _nifti(pdir / v / "roi_enhance.nii.gz", enh.astype(np.uint8), aff)
        _nifti(pdir / v / "roi_nonenhance.nii.gz", non.astype(np.uint8), aff)
        _nifti(pdir / v / "label.nii.gz", lab, aff)
        _nifti(out / "truth" / pid / f"{v}_density.nii.gz", n.astype(np.float32), aff)
        index["visits"].append({"time": f"{date}T00:00:00", "adc": f"{v}/ADC.nii.gz",
                                "roi_enhance": f"{v}/roi_enhance.nii.gz", "roi_nonenhance": f"{v}/roi_nonenhance.nii.gz"})
        base = f"{pid}/{v}"
        if i == 0:
            wm = 222.0
            t1v = np.where(visible, t1 * (1.0 - 0.3 * n), t1)
            t1post = np.where(enh, 1.45 * wm * (0.9 + 0.1 * n), t1v)
            flair = np.where(brain, wm * (0.55 * p_wm + 0.75 * p_gm + 0.12 * p_csf), 0.0)
            flair = np.where(visible, wm * (0.95 + 0.25 * n), flair)
            for name, arr in (("T1", t1v), ("T1post", t1post), ("FLAIR", flair)):
                noisy = np.hypot(arr + rng.normal(0, 4.4, arr.shape), rng.normal(0, 4.4, arr.shape))
                _nifti(pdir / v / f"{name}.nii.gz", noisy.astype(np.float32), aff)
                irows.append({"patient_id": pid, "visit": v, "date": date, "series": name,
                              "path": f"{base}/{name}.nii.gz"})
            _nifti(pdir / v / "brain_mask.nii.gz", brain.astype(np.uint8), aff)
            irows.append({"patient_id": pid, "visit": v, "date": date, "series": "brain_mask",
                          "path": f"{base}/brain_mask.nii.gz"})
        irows.append({"patient_id": pid, "visit": v, "date": date, "series": "ADC", "path": f"{base}/ADC.nii.gz",
                      "label_path": f"{base}/label.nii.gz"})
        vox_ml = spec.image_mm ** 3 / 1000.0
        visits.append({"visit": v, "day": int(day), "date": date, "visible_ml": float(visible.sum() * vox_ml),
                       "enhancing_ml": float(enh.sum() * vox_ml), "cell_fraction_sum": float(n.sum()),
                       "max_cell_fraction": float(n.max())})
    bsa = float(np.sqrt(spec.height_cm * spec.weight_kg / 3600.0))
    trows = []
    for d in rt_days(spec):
        trows.append({"patient_id": pid, "date": _date(spec.baseline, d), "kind": "radiotherapy", "agent": "photon",
                      "dose": float(spec.rt_dose_gy), "unit": "Gy"})
        index["radiotherapy"].append({"time": f"{_date(spec.baseline, d)}T00:00:00", "dose": spec.rt_dose_gy,
                                      "units": "Gy"})
    for d, mg in tmz_doses(spec):
        trows.append({"patient_id": pid, "date": _date(spec.baseline, d), "kind": "drug", "agent": "temozolomide",
                      "dose": float(mg), "unit": "mg/m2"})
        index["chemotherapy"].append({"time": f"{_date(spec.baseline, d)}T00:00:00",
                                      "dose": mg / STANDARD_TMZ_MG_M2, "units": "standard doses (75 mg/m2)"})
    trows.sort(key=lambda r: (r["date"], r["kind"]))
    write_json(pdir / f"{pid}.json", index)
    write_text(out / "patients.tsv", _tsv([{"patient_id": pid, "twin_model": "oncology", "sex": spec.sex,
                                            "age_years": spec.age_years, "height_cm": spec.height_cm,
                                            "weight_kg": spec.weight_kg}],
                                          ["patient_id", "twin_model", "sex", "age_years", "height_cm", "weight_kg"]))
    write_text(out / "imaging.tsv", _tsv(irows, ["patient_id", "visit", "date", "series", "path", "label_path"]))
    write_text(out / "treatments.tsv", _tsv(trows, ["patient_id", "date", "kind", "agent", "dose", "unit"]))
    doc = {
        "patient_id": pid,
        "model": "TumorTwin ReactionDiffusion3D equations, independent implementation (twinflow.demo.tumortwin)",
        "parameters": {"d_mm2_day": TT_D_MM2_DAY, "k_per_day": TT_K_PER_DAY, "alpha_per_gy": TT_ALPHA_PER_GY,
                       "ab_ratio_gy": TT_AB_RATIO_GY, "ct_sensitivity_per_dose_day": TT_CT_SENSITIVITY,
                       "ct_decay_per_day": TT_CT_DECAY_PER_DAY},
        "twinflow_equivalent": {"d_w_mm2_day": TT_D_MM2_DAY, "k_per_day": TT_K_PER_DAY,
                                "alpha_per_gy": TT_ALPHA_PER_GY, "kappa_l_per_mg_h": kappa_equivalent()},
        "spec": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(spec).items()},
        "numerics": {"integrator": "rk4", "dt_day": spec.dt_day, "fine_mm": spec.fine_mm, "image_mm": spec.image_mm,
                     "fine_shape": list(g.brain.shape), "image_shape": list(brain.shape)},
        "adc": {"adc_w_um2_s": ADC_W, "noise_sd_um2_s": spec.adc_noise, "visible_threshold": VISIBLE},
        "bsa_m2": bsa, "rt_days": rt_days(spec), "tmz_doses_day_mg_m2": tmz_doses(spec), "visits": visits,
    }
    write_json(out / "truth" / pid / "truth.json", doc)
    return doc


# ----------------------------------------------------------------------------- run without Snakemake

def ingest_case(sheet_dir: str | Path, results_dir: str | Path, *, config: dict[str, Any] | None = None) -> dict:
    """Read the sheets in ``sheet_dir`` and ingest every image and label into ``results_dir`` the
    way the workflow's ingest rules do (:func:`twinflow.io.imaging.ingest_image` /
    ``ingest_label``); return ``{patient_id: PatientContext}`` (``config`` is the model's stage
    section).  For tests and benchmarks that run a model without Snakemake."""
    from twinflow.io.imaging import ingest_image, ingest_label
    from twinflow.layout import Layout
    from twinflow.models.base import PatientContext
    from twinflow.sheets import load_cohort

    sd = Path(sheet_dir)
    res = Path(results_dir)
    cohort = load_cohort(sd / "patients.tsv", sd / "imaging.tsv", sd / "treatments.tsv", workdir=sd)
    if cohort.invalid:
        raise ValueError(f"invalid sheets: {cohort.invalid}")
    out = {}
    for pid in cohort.patient_ids:
        ctx = PatientContext.from_record(cohort.record(pid), Layout(str(res)), config)
        for r in ctx.images:
            nii = ctx.image_path(r.visit, r.series)
            q = nii.parent / f"{r.series}.qc.json"
            ingest_image(sd / r.path, nii, q, nii.parent / f"{r.series}.png", patient=pid, visit=r.visit, series=r.series,
                         date=r.date, display_path=r.path_display)
            if r.label_path:
                ingest_label(sd / r.label_path, nii, ctx.label_path(r.visit, r.series),
                             nii.parent / f"{r.series}.label.qc.json", patient=pid, visit=r.visit, series=r.series,
                             display_path=r.label_display)
        out[pid] = ctx
    return out
