"""The demo cardiac patient: cine MRI and labs generated from the circulation model.

A heart-failure patient (reduced LV contractility, EF about 40 %) whose LV volume over one
beat comes from :mod:`twinflow.models.cardiac` with known parameters; the cine is written
as a DICOM series (slices x phases single-frame files, oblique stack, shuffled file names,
SliceLocation inconsistent with the geometry) by :mod:`twinflow.demo.cine`.  Blood pressure
and heart rate in the labs are the model's values plus measurement noise.  A CYP2D6 *4
carrier (intermediate metaboliser) on metoprolol.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twinflow.io.atomic import write_json


@dataclass(frozen=True)
class CardiacDemoPatient:
    patient_id: str
    sex: str
    age_years: int
    height_cm: float
    weight_kg: float
    params: dict                  # CirculationParams overrides (the ground truth)
    baseline: str
    n_phases: int
    wall_volume_ml: float
    germline: dict = field(default_factory=dict)
    labs: dict = field(default_factory=dict)
    metoprolol: tuple = ()        # (day, mg) administrations before imaging
    seed: int = 0


CARDIAC_PATIENTS: tuple[CardiacDemoPatient, ...] = (
    CardiacDemoPatient(
        "CAR001", "M", 63, 176.0, 82.0,
        {"lv_emax_mmhg_ml": 1.2, "v_stressed_ml": 1350.0, "hr_bpm": 76.0},
        "2024-02-05", 20, 143.0,
        germline={"rs3892097": "0/1"},
        labs={"creatinine": 97.0, "bilirubin_total": 11.0, "albumin": 40.0, "alt": 28.0, "ast": 26.0,
              "neutrophils": 4.4, "platelets": 230.0, "haemoglobin": 138.0},
        metoprolol=tuple((d, 50.0) for d in range(-14, 0)),
        seed=404),
)


def cine_dir(data_dir: str | Path, p: CardiacDemoPatient) -> Path:
    return Path(data_dir) / p.patient_id / "V1" / "CINE_SAX"


def cine_files(data_dir: str | Path, p: CardiacDemoPatient) -> list[str]:
    from twinflow.demo.cine import CineGeometry
    g = CineGeometry()
    return [str(cine_dir(data_dir, p) / f"IM{i:04d}.dcm") for i in range(g.n_slices * p.n_phases)]


def _date(base: str, days: int) -> str:
    return (dt.date.fromisoformat(base) + dt.timedelta(days=days)).isoformat()


def sheet_rows(p: CardiacDemoPatient, data_rel: str) -> tuple[dict, list[dict], list[dict]]:
    base = f"{data_rel}/{p.patient_id}"
    prow = {"patient_id": p.patient_id, "twin_model": "cardiac", "sex": p.sex, "age_years": p.age_years,
            "height_cm": p.height_cm, "weight_kg": p.weight_kg, "germline_vcf": f"{base}/germline.vcf.gz",
            "germline_sample": p.patient_id, "somatic_vcf": "", "labs": f"{base}/labs.csv"}
    irows = [{"patient_id": p.patient_id, "visit": "V1", "date": p.baseline, "series": "CINE_SAX",
              "path": f"{base}/V1/CINE_SAX", "label_path": ""}]
    trows = [{"patient_id": p.patient_id, "date": _date(p.baseline, d), "kind": "drug", "agent": "metoprolol",
              "dose": mg, "unit": "mg"} for d, mg in p.metoprolol]
    return prow, irows, trows


def generate(data_dir: str | Path, p: CardiacDemoPatient, *, noise: bool = True) -> dict:
    from twinflow.demo.cine import CineGeometry, render, truth_volumes, write_dicom_cine
    from twinflow.demo.germline import write_germline_vcf
    from twinflow.demo.labs import write_demo_labs
    from twinflow.models.cardiac.calibrate import synthetic_patient

    data_dir = Path(data_dir)
    sp = synthetic_patient(p.params, seed=p.seed, noise=noise)
    period = sp["period_s"]
    t = np.arange(p.n_phases) * period / p.n_phases
    vols = sp["lv_volume_curve"](t)
    geom = CineGeometry(wall_volume_ml=p.wall_volume_ml)
    rng = np.random.default_rng(p.seed)
    images = render(vols, geom, rng, noise_sigma=0.03 if noise else 0.0)
    write_dicom_cine(cine_dir(data_dir, p), images, geom, hr_bpm=p.params.get("hr_bpm", 70.0), study_key=p.patient_id,
                     study_date=p.baseline.replace("-", ""))
    from twinflow.pgx.tables import GENES

    write_germline_vcf(data_dir / p.patient_id / "germline.vcf.gz", p.germline, sample=p.patient_id, panel_genes=GENES)
    rows = []
    for off in (-10, -1):
        d = _date(p.baseline, off)
        rows += [(d, k, v) for k, v in sorted(p.labs.items())]
        rows += [(d, "systolic_bp", round(sp["sbp"], 0)), (d, "diastolic_bp", round(sp["dbp"], 0)),
                 (d, "heart_rate", round(sp["hr"], 0)), (d, "body_height", p.height_cm), (d, "body_weight", p.weight_kg)]
    write_demo_labs(data_dir / p.patient_id / "labs.csv", rows, layout="long", units="mixed", seed=p.seed)
    ed, es = int(np.argmax(vols)), int(np.argmin(vols))
    tv_ed, tv_es = truth_volumes(float(vols[ed]), geom), truth_volumes(float(vols[es]), geom)
    doc = {
        "patient_id": p.patient_id, "model": "cardiac 0D closed loop (twinflow.models.cardiac)",
        "parameters": sp["params"], "estimable_truth": {k: p.params[k] for k in sorted(p.params)},
        "model_truth": sp["truth"], "measured": {k: sp[k] for k in ("edv_ml", "esv_ml", "sbp", "dbp", "hr")},
        "cine": {"n_phases": p.n_phases, "period_s": period, "lv_volume_ml": vols.tolist(), "ed_frame": ed,
                 "es_frame": es, "geometry": {k: getattr(geom, k) for k in geom.__dataclass_fields__},
                 "disc_volumes_ed": tv_ed, "disc_volumes_es": tv_es,
                 "lv_mass_g": p.wall_volume_ml * 1.05},
        "germline": p.germline, "metoprolol_day_mg": [list(x) for x in p.metoprolol],
        "noise": noise,
    }
    write_json(data_dir / "truth" / p.patient_id / "truth.json", doc)
    return doc
