"""The built-in demo cohort: deterministic patients with known ground truth.

Three oncology (glioma-like) patients on real brain anatomy (MNI ICBM152 2009a from nilearn,
see :mod:`twinflow.demo.anatomy`).  For each patient a tumour is seeded in white matter and
grown by the reaction-diffusion model of :mod:`twinflow.models.oncology.growth` with known
parameters (``D_w``, ``k``, ``alpha``, ``kappa``), under the patient's treatment schedule
(radiotherapy fractions; temozolomide through a one-compartment oral PK model with
population parameters scaled by body-surface area).  At every visit MRI-like images are
synthesised from the true cell density ``u``:

* ``T1``      the template T1, tumour hypointense (``x (1 - 0.3 u)`` where ``u >= 0.16``)
* ``T1post``  ``T1`` plus contrast enhancement where ``u >= 0.80`` (enhancing tumour)
* ``FLAIR``   tissue contrast from the probability maps, hyperintense where ``u >= 0.16``
* ``ADC``     tissue ADC (WM 750, GM 850, CSF 3000 x 1e-6 mm^2/s); inside the visible tumour
              (``u >= 0.16``) the linear cellularity mapping
              ``ADC = ADC_w - (ADC_w - ADC_min) u`` with ``ADC_w = 3000``, ``ADC_min = 600``
* ``brain_mask`` the brain mask

with a smooth multiplicative bias field (+-8 %) and Rician noise (sigma 2 % of white matter)
on the magnitude images and Gaussian noise (sigma 30) on ADC.  The thresholds 0.16 / 0.80
are the usual FLAIR/T1-Gd detection thresholds of glioma models (Swanson et al.).  Expert
labels (1 = enhancing, 2 = non-enhancing/oedema, 3 = necrosis -- the generator makes none)
are derived from the noiseless truth; patient ``ONC002`` lists them in ``label_path``.

Images are co-registered across visits (no patient motion); each patient is written in a
different file format/orientation to exercise ingest (NIfTI RAS, NRRD LPS, NIfTI LAS).

The ground truth of every patient (parameters, schedules, true density maps, labels) goes
to ``<data>/truth/<patient>/``; it is never referenced by the sheets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from twinflow.demo.anatomy import Anatomy, load_anatomy, template_source
from twinflow.io.atomic import atomic_path, dumps_json, gzip_bytes, write_bytes, write_json, write_text
from twinflow.models.oncology.growth import GrowthParams, ReactionDiffusion, Schedule
from twinflow.physiology.body import bsa_mosteller
from twinflow.pkpd.compartment import OneCompartment

T2_THRESHOLD = 0.16
T1_THRESHOLD = 0.80
ADC_W = 3000.0     # 1e-6 mm^2/s, free water
ADC_MIN = 600.0    # 1e-6 mm^2/s, maximal cellularity
SERIES = ("T1", "T1post", "FLAIR", "ADC", "brain_mask")
TISSUE_SERIES = ("wm_prob", "gm_prob")   # tissue probability maps, first visit only

# Temozolomide population PK (oral): CL/F 5.5 L/h/m2, V/F 12.7 L/m2, ka 5.8 1/h
# (Jen et al., Pharm Res 2000;17:1284-9; Ostermann et al., Clin Cancer Res 2004;10:3728-36).
TMZ_PK = {"cl_l_h_per_m2": 5.5, "v_l_per_m2": 12.7, "ka_per_h": 5.8, "f": 1.0}


@dataclass(frozen=True)
class DemoPatient:
    patient_id: str
    sex: str
    age_years: int
    height_cm: float
    weight_kg: float
    seed_mm: tuple[float, float, float]      # RAS world position of the tumour origin
    pre_days: int                            # untreated growth before the first visit
    params: GrowthParams
    baseline: str                            # first visit date
    visit_days: tuple[int, ...]
    rt_start_day: int | None
    rt_fractions: int
    rt_dose_gy: float
    tmz_mg_m2: float | None                  # concomitant daily temozolomide
    adjuvant_cycles: int                     # 5/28-day temozolomide cycles after RT (Stupp)
    adjuvant_mg_m2: float
    fmt: str                                 # nifti_ras | nrrd_lps | nifti_las
    labels_in_sheet: bool
    germline: dict[str, str] = field(default_factory=dict)   # rsID -> GT
    somatic: tuple[str, ...] = ()                            # hotspot names
    labs: dict[str, float] = field(default_factory=dict)     # analyte -> value (canonical unit)
    seed: int = 0
    labs_layout: str = "long"                                # long | synthea


PATIENTS: tuple[DemoPatient, ...] = (
    DemoPatient(
        "ONC001", "F", 54, 165.0, 62.0, (28.0, 14.0, 28.0), 150,
        GrowthParams(d_w_mm2_day=0.20, k_per_day=0.045, alpha_per_gy=0.030, kappa_l_per_mg_h=0.002),
        "2024-03-04", (0, 21, 84, 154), 28, 30, 2.0, 75.0, 2, 150.0, "nifti_ras", False,
        germline={"rs3918290": "0/1", "rs4244285": "0|1", "rs12769205": "0|1", "rs3758581": "1|1",
                  "rs12248560": "1|0", "rs9923231": "0/1"},
        somatic=("IDH1_R132H",),
        labs={"creatinine": 68.0, "bilirubin_total": 9.0, "albumin": 41.0, "alt": 22.0, "ast": 25.0,
              "neutrophils": 4.1, "platelets": 245.0, "haemoglobin": 128.0,
              "systolic_bp": 124.0, "diastolic_bp": 78.0, "heart_rate": 72.0},
        seed=101),
    DemoPatient(
        "ONC002", "M", 67, 178.0, 84.0, (-30.0, -38.0, 32.0), 130,
        GrowthParams(d_w_mm2_day=0.12, k_per_day=0.060, alpha_per_gy=0.040, kappa_l_per_mg_h=0.0015),
        "2024-05-06", (0, 21, 70), 28, 15, 2.67, 75.0, 0, 0.0, "nrrd_lps", True,
        germline={"rs1800460": "0|1", "rs1142345": "0|1", "rs9923231": "1/1", "rs1057910": "0/1"},
        somatic=(),
        labs={"creatinine": 112.0, "bilirubin_total": 14.0, "albumin": 37.0, "alt": 35.0, "ast": 31.0,
              "neutrophils": 3.2, "platelets": 190.0, "haemoglobin": 141.0,
              "systolic_bp": 138.0, "diastolic_bp": 86.0, "heart_rate": 80.0},
        seed=202),
    DemoPatient(
        "ONC003", "F", 45, 160.0, 71.0, (30.0, -20.0, 10.0), 200,
        GrowthParams(d_w_mm2_day=0.30, k_per_day=0.035, alpha_per_gy=0.025, kappa_l_per_mg_h=0.0),
        "2024-09-02", (0, 21, 84), 28, 30, 2.0, None, 0, 0.0, "nifti_las", False,
        germline={"rs1057910": "0/1", "rs4149056": "0/1", "rs776746": "1/1"},
        somatic=("BRAF_V600E",),
        labs={"creatinine": 58.0, "bilirubin_total": 7.0, "albumin": 44.0, "alt": 18.0, "ast": 20.0,
              "neutrophils": 5.0, "platelets": 290.0, "haemoglobin": 122.0,
              "systolic_bp": 118.0, "diastolic_bp": 74.0, "heart_rate": 66.0},
        seed=303, labs_layout="synthea"),
)

VISIT_LABELS = ("V1", "V2", "V3", "V4", "V5", "V6")


def _date(base: str, days: int) -> str:
    return (dt.date.fromisoformat(base) + dt.timedelta(days=days)).isoformat()


def rt_days(p: DemoPatient) -> list[int]:
    """Fraction days (Monday-Friday from the start day; baselines are Mondays)."""
    if p.rt_start_day is None:
        return []
    days, d = [], p.rt_start_day
    while len(days) < p.rt_fractions:
        if (dt.date.fromisoformat(p.baseline) + dt.timedelta(days=d)).weekday() < 5:
            days.append(d)
        d += 1
    return days


def tmz_doses(p: DemoPatient) -> list[tuple[int, float]]:
    """Temozolomide (day, mg/m2): concomitant daily, 7 days a week, from the first to the last
    RT day; then adjuvant cycles of 5 days every 28 days starting 28 days after RT (Stupp)."""
    if p.tmz_mg_m2 is None or p.rt_start_day is None:
        return []
    r = rt_days(p)
    doses = [(d, p.tmz_mg_m2) for d in range(r[0], r[-1] + 1)]
    for c in range(p.adjuvant_cycles):
        start = r[-1] + 28 + 28 * c
        doses += [(start + i, p.adjuvant_mg_m2) for i in range(5)]
    return doses


def image_ext(p: DemoPatient) -> str:
    return ".nrrd" if p.fmt == "nrrd_lps" else ".nii.gz"


def data_files(data_dir: str | Path) -> list[str]:
    """Every file the generator writes under ``data_dir`` that the sheets reference."""
    d = Path(data_dir)
    out = []
    for p in PATIENTS:
        for i, _day in enumerate(p.visit_days):
            v = VISIT_LABELS[i]
            for s in SERIES + (TISSUE_SERIES if i == 0 else ()):
                out.append(str(d / p.patient_id / v / f"{s}{image_ext(p)}"))
            if p.labels_in_sheet:
                out.append(str(d / p.patient_id / v / f"label{image_ext(p)}"))
        out += [str(d / p.patient_id / "germline.vcf.gz"), str(d / p.patient_id / "germline.vcf.gz.tbi")]
        if p.somatic:
            out += [str(d / p.patient_id / "somatic.vcf.gz"), str(d / p.patient_id / "somatic.vcf.gz.tbi")]
        out.append(str(d / p.patient_id / "labs.csv"))
    from twinflow.demo import cardiac

    for cp in cardiac.CARDIAC_PATIENTS:
        out += cardiac.cine_files(d, cp)
        out += [str(d / cp.patient_id / "germline.vcf.gz"), str(d / cp.patient_id / "germline.vcf.gz.tbi"),
                str(d / cp.patient_id / "labs.csv")]
    from twinflow.demo import pregnancy

    for pp in pregnancy.PREGNANCIES:
        out += [str(d / rel) for _, rel in sorted(pregnancy.pregnancy_files(d, pp).items())]
        out.append(str(d / "pregnancy" / pp.patient_id / "labs.csv"))
    return out


def truth_files(data_dir: str | Path) -> list[str]:
    from twinflow.demo.cardiac import CARDIAC_PATIENTS

    d = Path(data_dir) / "truth"
    return [str(d / p.patient_id / "truth.json") for p in PATIENTS + CARDIAC_PATIENTS] + [str(d / "pregnancy.json")]


# ----------------------------------------------------------------------------- simulation

def simulate_truth(p: DemoPatient, anat: Anatomy, dt_day: float = 0.5) -> dict[int, np.ndarray]:
    """True normalised cell density at each visit day (day 0 = first visit)."""
    rd = ReactionDiffusion(anat.spacing, anat.tissue, anat.p_wm, anat.p_gm)
    # seed: a small Gaussian blob snapped into tissue, grown untreated for pre_days
    c = anat.world_to_voxel(p.seed_mm)
    idx = np.indices(anat.shape, dtype=np.float32)
    r2 = sum(((idx[i] - c[i]) * anat.spacing[i]) ** 2 for i in range(3))
    u0 = (0.5 * np.exp(-r2 / (2 * 3.0 ** 2))).astype(np.float32)
    u0[~anat.tissue] = 0
    pre = rd.simulate(u0, GrowthParams(p.params.d_w_mm2_day, p.params.k_per_day, gm_ratio=p.params.gm_ratio),
                      p.pre_days, dt_day, save_days=[p.pre_days])[p.pre_days]
    # What imaging can see at the first visit is the model's initial condition: cells below the
    # FLAIR/T2 visibility threshold are not part of the twin (see docs/demo.md).
    base = np.where(pre >= T2_THRESHOLD, pre, 0).astype(np.float32)
    sched = schedule_for(p)
    t_end = max(p.visit_days)
    out = rd.simulate(base, p.params, t_end, dt_day, schedule=sched, save_days=list(p.visit_days))
    return {int(t): u for t, u in out.items()}


def schedule_for(p: DemoPatient) -> Schedule:
    days = rt_days(p)
    sched = Schedule(rt_days=np.asarray(days, float), rt_dose_gy=np.full(len(days), p.rt_dose_gy))
    tdoses = tmz_doses(p)
    if tdoses:
        bsa = bsa_mosteller(p.height_cm, p.weight_kg)
        pk = OneCompartment(cl_l_h=TMZ_PK["cl_l_h_per_m2"] * bsa, v_l=TMZ_PK["v_l_per_m2"] * bsa,
                            ka_per_h=TMZ_PK["ka_per_h"], f=TMZ_PK["f"])
        times_h = np.asarray([d for d, _ in tdoses], float) * 24.0
        doses = np.asarray([m for _, m in tdoses], float) * bsa
        sched.drug_exposure = lambda t0, t1: pk.exposure(t0 * 24.0, t1 * 24.0, times_h, doses)[0]
    return sched


def labels_from_density(u: np.ndarray) -> np.ndarray:
    lab = np.zeros(u.shape, np.uint8)
    lab[u >= T2_THRESHOLD] = 2
    lab[u >= T1_THRESHOLD] = 1
    return lab


def synthesize(series: str, u: np.ndarray, anat: Anatomy, rng: np.random.Generator, noise: bool = True) -> np.ndarray:
    """One MRI-like image of the density ``u`` (``noise=False``: no Rician/Gaussian noise)."""
    tumour = u >= T2_THRESHOLD
    ii = np.indices(anat.shape, dtype=np.float32)
    nx, ny, nz = anat.shape
    bias = 1.0 + 0.08 * ((ii[0] / nx - 0.5) * 0.8 + (ii[1] / ny - 0.5) * 0.6 - (ii[2] / nz - 0.5) * 0.5)
    wm_level = 222.0
    if series in ("T1", "T1post"):
        s = anat.t1.copy()
        s[tumour] *= 1.0 - 0.3 * u[tumour]
        if series == "T1post":
            enh = u >= T1_THRESHOLD
            s[enh] = 1.45 * wm_level * (0.9 + 0.1 * u[enh])
    elif series == "FLAIR":
        s = wm_level * (0.55 * anat.p_wm + 0.75 * anat.p_gm + 0.12 * anat.p_csf)
        s[tumour] = wm_level * (0.95 + 0.25 * u[tumour])
    elif series == "ADC":
        a = 750.0 * anat.p_wm + 850.0 * anat.p_gm + 3000.0 * anat.p_csf
        a[tumour] = ADC_W - (ADC_W - ADC_MIN) * u[tumour]
        if noise:
            a = a + rng.normal(0.0, 30.0, a.shape)
        a[~anat.brain] = 0
        return np.clip(np.round(a), 0, 4000).astype(np.int16)
    elif series == "brain_mask":
        return anat.brain.astype(np.uint8)
    elif series == "wm_prob":
        return anat.p_wm.astype(np.float32)
    elif series == "gm_prob":
        return anat.p_gm.astype(np.float32)
    else:  # pragma: no cover
        raise ValueError(series)
    s = s * bias
    if noise:
        sigma = 0.02 * wm_level
        s = np.hypot(s + rng.normal(0.0, sigma, s.shape), rng.normal(0.0, sigma, s.shape))
    return np.clip(np.round(s * 4.0), 0, 32767).astype(np.int16)


# ----------------------------------------------------------------------------- writers

def _orient(arr: np.ndarray, affine: np.ndarray, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    """Return the array/affine (RAS world) in the patient's storage orientation."""
    if fmt == "nifti_las":
        flip = np.diag([-1.0, 1.0, 1.0, 1.0])
        flip[0, 3] = arr.shape[0] - 1
        return arr[::-1].copy(), affine @ flip
    return arr, affine


def write_nifti(path: Path, arr: np.ndarray, affine: np.ndarray) -> None:
    img = nib.Nifti1Image(arr, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header["descrip"] = b"twinflow demo"
    img.header.set_xyzt_units("mm", "sec")
    data = gzip_bytes(img.to_bytes())
    write_bytes(path, data)


def write_nrrd_lps(path: Path, arr: np.ndarray, affine: np.ndarray) -> None:
    """NRRD through SimpleITK.  ITK works in LPS: flip the RAS affine's first two rows."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    sp = np.linalg.norm(lps[:3, :3], axis=0)
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
    img.SetSpacing(tuple(float(s) for s in sp))
    img.SetOrigin(tuple(float(o) for o in lps[:3, 3]))
    img.SetDirection(tuple(float(x) for x in (lps[:3, :3] / sp).ravel()))
    with atomic_path(path) as tmp:
        sitk.WriteImage(img, str(tmp), useCompression=True)


def write_image(path: Path, arr: np.ndarray, anat: Anatomy, fmt: str) -> None:
    if fmt == "nrrd_lps":
        write_nrrd_lps(path, arr, anat.affine)
    else:
        a, aff = _orient(arr, anat.affine, fmt)
        write_nifti(path, a, aff)


def sheet_rows(p: DemoPatient, data_rel: str) -> tuple[dict, list[dict], list[dict]]:
    base = f"{data_rel}/{p.patient_id}"
    prow = {"patient_id": p.patient_id, "twin_model": "oncology", "sex": p.sex,
            "age_years": p.age_years, "height_cm": p.height_cm, "weight_kg": p.weight_kg,
            "germline_vcf": f"{base}/germline.vcf.gz", "germline_sample": p.patient_id,
            "somatic_vcf": f"{base}/somatic.vcf.gz" if p.somatic else "",
            "labs": f"{base}/labs.csv"}
    irows = []
    ext = image_ext(p)
    for i, day in enumerate(p.visit_days):
        v = VISIT_LABELS[i]
        for s in SERIES + (TISSUE_SERIES if i == 0 else ()):
            irows.append({"patient_id": p.patient_id, "visit": v, "date": _date(p.baseline, day),
                          "series": s, "path": f"{base}/{v}/{s}{ext}",
                          "label_path": f"{base}/{v}/label{ext}" if (p.labels_in_sheet and s == "T1post") else ""})
    trows = []
    for d in rt_days(p):
        trows.append({"patient_id": p.patient_id, "date": _date(p.baseline, d), "kind": "radiotherapy",
                      "agent": "photon", "dose": round(p.rt_dose_gy, 4), "unit": "Gy"})
    for d, mg_m2 in tmz_doses(p):
        trows.append({"patient_id": p.patient_id, "date": _date(p.baseline, d), "kind": "drug",
                      "agent": "temozolomide", "dose": mg_m2, "unit": "mg/m2"})
    trows.sort(key=lambda r: (r["date"], r["kind"]))
    return prow, irows, trows


def _tsv(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:g}"
        return str(v)
    lines = ["\t".join(cols)] + ["\t".join(fmt(r.get(c, "")) for c in cols) for r in rows]
    return "\n".join(lines) + "\n"


PATIENT_SHEET_COLUMNS = ["patient_id", "twin_model", "sex", "age_years", "height_cm", "weight_kg",
                         "germline_vcf", "germline_sample", "somatic_vcf", "labs"]
IMAGING_SHEET_COLUMNS = ["patient_id", "visit", "date", "series", "path", "label_path"]
TREATMENT_SHEET_COLUMNS = ["patient_id", "date", "kind", "agent", "dose", "unit"]


def sheets_text(data_rel: str = "data") -> dict[str, str]:
    """The demo's sheets: patients, imaging and treatments, and pregnancies (the pregnancy twin's own sheet)."""
    from twinflow.demo import cardiac, pregnancy
    from twinflow.models.pregnancy.sheet import COLUMNS, OPTIONAL

    prows, irows, trows = [], [], []
    for p in PATIENTS + cardiac.CARDIAC_PATIENTS:
        a, b, c = (sheet_rows if isinstance(p, DemoPatient) else cardiac.sheet_rows)(p, data_rel)
        prows.append(a)
        irows += b
        trows += c
    preg = pregnancy.sheet_rows(data_rel)
    prows += preg["patients"]
    irows += preg["imaging"]
    pcols = list(COLUMNS) + [c for c in OPTIONAL if any(c in r for r in preg["pregnancies"])]
    return {"patients.tsv": _tsv(prows, PATIENT_SHEET_COLUMNS),
            "imaging.tsv": _tsv(irows, IMAGING_SHEET_COLUMNS),
            "treatments.tsv": _tsv(trows, TREATMENT_SHEET_COLUMNS),
            "pregnancies.tsv": _tsv(preg["pregnancies"], pcols)}


def write_sheets(sheet_dir: str | Path, data_rel: str = "data") -> list[str]:
    out = []
    for name, text in sheets_text(data_rel).items():
        write_text(Path(sheet_dir) / name, text)
        out.append(str(Path(sheet_dir) / name))
    return out


def _lab_rows(p: DemoPatient) -> list[tuple[str, str, float]]:
    """Labs a week before the first visit and before treatment start; anthropometrics too."""
    rows = []
    for offset, drift in ((-7, 1.0), ((p.rt_start_day or 21) - 3, 1.04)):
        date = _date(p.baseline, offset)
        for analyte, value in sorted(p.labs.items()):
            rows.append((date, analyte, round(value * drift, 1)))
        rows.append((date, "body_height", p.height_cm))
        rows.append((date, "body_weight", round(p.weight_kg * (1.0 if drift == 1.0 else 0.985), 1)))
    return rows


def generate(data_dir: str | Path, *, patients: tuple[DemoPatient, ...] = PATIENTS, noise: bool = True,
             cardiac: bool = True, pregnancy: bool = True) -> dict:
    """Write every demo data file and the ground truth under ``data_dir``.

    ``noise=False`` writes noise-free images (for exact-recovery tests); the default is the
    demo's documented noise."""
    from twinflow.demo.germline import write_germline_vcf, write_somatic_vcf, SOMATIC_HOTSPOTS
    from twinflow.demo.labs import write_demo_labs
    from twinflow.pgx.tables import GENES as PGX_GENES

    data_dir = Path(data_dir)
    anat = load_anatomy()
    summary = {}
    for p in patients:
        rng = np.random.default_rng(p.seed)
        pdir = data_dir / p.patient_id
        truth = simulate_truth(p, anat)
        tdir = data_dir / "truth" / p.patient_id
        ext = image_ext(p)
        visits = []
        for i, day in enumerate(p.visit_days):
            v = VISIT_LABELS[i]
            u = truth[day]
            for s in SERIES + (TISSUE_SERIES if i == 0 else ()):
                write_image(pdir / v / f"{s}{ext}", synthesize(s, u, anat, rng, noise), anat, p.fmt)
            lab = labels_from_density(u)
            if p.labels_in_sheet:
                write_image(pdir / v / f"label{ext}", lab, anat, p.fmt)
            write_nifti(tdir / f"{v}_density.nii.gz", u.astype(np.float32), anat.affine)
            write_nifti(tdir / f"{v}_label.nii.gz", lab, anat.affine)
            vox_ml = float(np.prod(anat.spacing)) / 1000.0
            visits.append({"visit": v, "day": day, "date": _date(p.baseline, day),
                           "enhancing_ml": float((lab == 1).sum() * vox_ml),
                           "t2_ml": float((lab > 0).sum() * vox_ml),
                           "total_cells_fraction_ml": float(u.sum() * vox_ml)})
        write_germline_vcf(pdir / "germline.vcf.gz", p.germline, sample=p.patient_id, panel_genes=PGX_GENES)
        if p.somatic:
            calls = [(h.chrom, h.pos, h.ref, h.alt, 0.31, 180) for h in SOMATIC_HOTSPOTS
                     if f"{h.gene}_{h.protein}" in p.somatic]
            write_somatic_vcf(pdir / "somatic.vcf.gz", calls, sample="TUMOR")
        write_demo_labs(pdir / "labs.csv", _lab_rows(p), layout=p.labs_layout, units="mixed", seed=p.seed)
        truth_doc = {
            "patient_id": p.patient_id,
            "model": "oncology reaction-diffusion (twinflow.models.oncology.growth)",
            "anatomy": template_source(),
            "grid": {"shape": list(anat.shape), "spacing_mm": list(anat.spacing), "affine_ras": anat.affine},
            "parameters": asdict(p.params),
            "seed_mm_ras": list(p.seed_mm), "pre_days": p.pre_days,
            "thresholds": {"t2": T2_THRESHOLD, "t1": T1_THRESHOLD},
            "adc_mapping": {"adc_w": ADC_W, "adc_min": ADC_MIN, "unit": "1e-6 mm2/s"},
            "treatment": {"rt_days": rt_days(p), "rt_dose_gy": p.rt_dose_gy, "tmz_doses_day_mg_m2": tmz_doses(p), "tmz_pk": TMZ_PK,
                          "bsa_m2": bsa_mosteller(p.height_cm, p.weight_kg)},
            "visits": visits, "germline": p.germline, "somatic": list(p.somatic), "labs": p.labs,
            "image_format": p.fmt,
            "noise": ({"rician_sigma_rel_wm": 0.02, "adc_sigma": 30.0, "bias_field": 0.08} if noise
                      else {"rician_sigma_rel_wm": 0.0, "adc_sigma": 0.0, "bias_field": 0.08}),
            "initial_condition": "density at the first visit where u >= t2 threshold, 0 elsewhere",
        }
        write_json(tdir / "truth.json", truth_doc)
        summary[p.patient_id] = visits
    if cardiac:
        from twinflow.demo import cardiac as demo_cardiac

        for cp in demo_cardiac.CARDIAC_PATIENTS:
            summary[cp.patient_id] = demo_cardiac.generate(data_dir, cp, noise=noise)
    if pregnancy:
        from twinflow.demo import pregnancy as demo_pregnancy

        summary.update(demo_pregnancy.generate(data_dir))
    return summary
