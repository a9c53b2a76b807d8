"""Oncology twin: tumour segmentation -> calibrated reaction-diffusion model -> forecasts and arms.

The plug-in class :class:`OncologyTwin` (entry point ``twinflow.models: oncology``).
Stages (see :class:`twinflow.models.base.TwinModel`; equations in docs/oncology-model.md):

* segment   every visit with tumour-bearing series (T1post/T1c/T1Gd, FLAIR, T2): automatic
            segmentation guided by the ``roi`` column and by the previous visit's tumour
            (:mod:`twinflow.segment.oncology`); an expert ``label_path`` is used instead where
            given, and the automatic result is scored against it.
* estimate  cell density per visit from ADC inside the tumour (or from the labels), tissue
            maps from ``wm_prob``/``gm_prob`` series (else a homogeneous brain), the treatment
            schedule from treatments.tsv, then Levenberg-Marquardt calibration with exact
            tangent sensitivities on all but the last ``holdout_visits`` visits; held-out
            visits are forecast and scored.
* simulate  the course under the actual treatment from the first visit with a parameter
            uncertainty band (Laplace samples, fixed seed) and the configured arms from the
            last visit.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from twinflow.errors import InputError
from twinflow.io.atomic import write_bytes, write_json
from twinflow.models.base import PatientContext, ReportSection, TwinModel, schema_beside
from twinflow.physiology.body import bsa_mosteller

VERSION = "1.0.0"
TUMOUR_SERIES = ("T1post", "T1c", "T1Gd", "T1ce", "FLAIR", "T2")
SEG_INPUT_SERIES = TUMOUR_SERIES + ("T1", "ADC")
DEFAULT_ARMS = ("stupp_60gy_30fx_tmz", "rt_60gy_30fx", "hypo_40gy_15fx", "no_treatment")
BAND_SAMPLES = 12
BAND_SEED = 20240101
PARAM_FIELDS = {"d_w": "d_w_mm2_day", "k": "k_per_day", "alpha": "alpha_per_gy", "kappa": "kappa_l_per_mg_h"}


# ----------------------------------------------------------------------------- helpers

def _nifti_bytes(arr: np.ndarray, affine: np.ndarray) -> bytes:
    import nibabel as nib
    from twinflow.io.atomic import gzip_bytes

    img = nib.Nifti1Image(np.asarray(arr), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units(xyz="mm")
    return gzip_bytes(img.to_bytes())


def _load(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    import nibabel as nib
    img = nib.load(str(path))
    return np.asarray(img.dataobj), img.affine, tuple(float(z) for z in img.header.get_zooms()[:3])


def _bsa(row: dict) -> float:
    return bsa_mosteller(float(row["height_cm"]), float(row["weight_kg"]))


def _days(dates: list[str]) -> list[float]:
    d0 = dt.date.fromisoformat(dates[0])
    return [float((dt.date.fromisoformat(d) - d0).days) for d in dates]


def _growth_params(d: dict):
    from twinflow.models.oncology.growth import GrowthParams
    return GrowthParams(**d)


def _params_dict(p) -> dict:
    from dataclasses import asdict
    return {k: float(v) for k, v in asdict(p).items()}


def arms_table_bytes(maps: dict[str, np.ndarray], spacing, params: dict, start_date: str, bsa: float,
                     arms: list[str], horizon_days: int) -> bytes:
    """The arms table (shared by ``simulate`` and ``verify``)."""
    from twinflow.models.oncology.forecast import simulate_arms

    df = simulate_arms(maps["start_density"], _growth_params(params), spacing, maps["tissue"] > 0,
                       maps["p_wm"], maps["p_gm"], start_date, bsa_m2=bsa, horizon_days=int(horizon_days),
                       arms=tuple(arms))
    return df.to_csv(sep="\t", index=False, float_format="%.8g", lineterminator="\n").encode()


def course_table_bytes(maps: dict[str, np.ndarray], spacing, params: dict, sd_log: dict[str, float],
                       treatments: list[dict], first_date: str, bsa: float, t_end: int, seed: int,
                       n_samples: int = BAND_SAMPLES) -> bytes:
    """Volume and cell count from the first visit under the actual treatment, with a band from
    ``n_samples`` log-normal draws of the estimated parameters (Laplace approximation)."""
    import pandas as pd

    from twinflow.models.oncology.forecast import THETA_CELLS_PER_MM3, voxel_ml
    from twinflow.models.oncology.growth import ReactionDiffusion
    from twinflow.models.oncology.schedule import schedule_from_treatments
    from twinflow.models.oncology.density import T2_THRESHOLD

    sched = schedule_from_treatments(treatments, first_date, bsa_m2=bsa)
    rd = ReactionDiffusion(spacing, maps["tissue"] > 0, maps["p_wm"], maps["p_gm"])
    days = list(range(0, int(t_end) + 1))
    vml = voxel_ml(spacing)
    cpu = float(np.prod(spacing)) * THETA_CELLS_PER_MM3

    def run(p: dict) -> np.ndarray:
        out = rd.simulate(maps["initial_density"], _growth_params(p), float(t_end), 0.5, schedule=sched,
                          save_days=days, transform=lambda u: (float(np.count_nonzero(u >= T2_THRESHOLD)) * vml,
                                                               float(np.sum(u, dtype=np.float64)) * cpu))
        return np.array([out[t] for t in days])

    central = run(params)
    rng = np.random.default_rng(seed)
    samples = []
    names = sorted(k for k, v in sd_log.items() if v is not None and np.isfinite(v) and v > 0)
    for _ in range(n_samples if names else 0):
        p = dict(params)
        for n in names:
            p[PARAM_FIELDS[n]] = float(p[PARAM_FIELDS[n]] * np.exp(rng.normal(0.0, min(sd_log[n], 1.0))))
        samples.append(run(p))
    d0 = dt.date.fromisoformat(first_date)
    rows = []
    for i, t in enumerate(days):
        r = {"day": t, "date": (d0 + dt.timedelta(days=t)).isoformat(), "volume_ml": central[i, 0],
             "cell_count": central[i, 1]}
        if samples:
            s = np.array([x[i] for x in samples])
            r.update({"volume_ml_p05": float(np.percentile(s[:, 0], 5)), "volume_ml_p95": float(np.percentile(s[:, 0], 95)),
                      "cell_count_p05": float(np.percentile(s[:, 1], 5)), "cell_count_p95": float(np.percentile(s[:, 1], 95))})
        rows.append(r)
    return pd.DataFrame(rows).to_csv(sep="\t", index=False, float_format="%.8g", lineterminator="\n").encode()


class OncologyTwin(TwinModel):
    name = "oncology"
    version = VERSION
    series = SEG_INPUT_SERIES + ("brain_mask", "wm_prob", "gm_prob")
    config_schema = schema_beside(__file__, "config.schema.yaml")
    results_schema = schema_beside(__file__, "results.schema.yaml")
    stage_modules = {
        "segment": ("twinflow.segment.oncology", "twinflow.io.imaging"),
        "estimate": ("twinflow.models.oncology.calibrate", "twinflow.models.oncology.density",
                     "twinflow.models.oncology.forecast", "twinflow.models.oncology.schedule"),
        "simulate": ("twinflow.models.oncology.forecast", "twinflow.models.oncology.schedule",
                     "twinflow.models.oncology.density"),
        "twin": ("twinflow.models.oncology.forecast", "twinflow.models.oncology.schedule",
                 "twinflow.models.oncology.density"),
    }
    description = "3D reaction-diffusion tumour model with LQ radiotherapy and PK-driven drug kill"
    uses_previous_segmentation = True

    # ------------------------------------------------------------------ segment
    def segment_visits(self, ctx: PatientContext) -> list[str]:
        return [v for v, _ in ctx.visits() if any(s in ctx.series_of(v) for s in TUMOUR_SERIES)]

    def _brain_mask_path(self, ctx: PatientContext, visit: str) -> Path | None:
        if "brain_mask" in ctx.series_of(visit):
            return ctx.image_path(visit, "brain_mask")
        return None

    def segment(self, ctx: PatientContext, visit: str, out_dir: Path) -> None:
        import SimpleITK as sitk

        from twinflow.segment.oncology import overlay_png, segment_tumour

        series = ctx.series_of(visit)
        images = {s: sitk.ReadImage(str(ctx.image_path(visit, s))) for s in SEG_INPUT_SERIES if s in series}
        bm = self._brain_mask_path(ctx, visit)
        brain = sitk.ReadImage(str(bm)) if bm else None
        expert = None
        for s in TUMOUR_SERIES:
            if s in series and series[s].label_path:
                expert = sitk.ReadImage(str(ctx.label_path(visit, s)))
                break
        prior = None
        visits = self.segment_visits(ctx)
        i = visits.index(visit)
        if i > 0:
            prev = ctx.segment_dir(visits[i - 1]) / "segmentation.nii.gz"
            if prev.is_file():
                prior = sitk.ReadImage(str(prev))
        roi = next((r.roi for r in series.values() if r.roi), None)
        res = segment_tumour(images, brain_mask=brain, roi_lps_mm=roi, prior_mask=prior, expert_label=expert,
                             label_convention=ctx.config.get("label_convention", "twinflow"))
        from twinflow.io.imaging import write_nifti

        out_dir.mkdir(parents=True, exist_ok=True)
        write_nifti(res.label, out_dir / "segmentation.nii.gz")
        write_nifti(res.automatic, out_dir / "automatic.nii.gz")
        base = next(images[s] for s in TUMOUR_SERIES if s in images)
        png = overlay_png(base, res.label, out_dir / "overlay.png", expert=expert)
        write_json(out_dir / "segmentation.json", {
            "patient_id": ctx.patient_id, "visit": visit, "source": res.source,
            "volumes_ml": res.volumes_ml, "automatic_volumes_ml": res.automatic_volumes_ml,
            "scores_vs_expert": getattr(res, "scores", None), "notes": res.notes, "overlay": png,
            "labels": {"1": "enhancing tumour", "2": "non-enhancing tumour / oedema", "3": "necrosis"}})

    # ------------------------------------------------------------------ estimate
    def _observations(self, ctx: PatientContext):
        from twinflow.models.oncology.density import observation_from_adc, observation_from_labels

        visits = self.segment_visits(ctx)
        dates = dict(ctx.visits())
        days = _days([dates[v] for v in visits])
        obs, sources = [], []
        affine = spacing = None
        for v, day in zip(visits, days):
            lab, affine, spacing = _load(ctx.segment_dir(v) / "segmentation.nii.gz")
            lab = lab.astype(np.int16)
            if "ADC" in ctx.series_of(v):
                adc, _, _ = _load(ctx.image_path(v, "ADC"))
                obs.append(observation_from_adc(day, adc.astype(np.float32), lab > 0, labels=lab))
                sources.append("adc")
            else:
                obs.append(observation_from_labels(day, lab))
                sources.append("labels")
        return visits, [dates[v] for v in visits], days, obs, sources, affine, spacing

    def _tissue(self, ctx: PatientContext, visits: list[str], shape) -> tuple[dict[str, np.ndarray], list[str]]:
        notes = []
        wm = gm = None
        for v, _ in ctx.visits():
            s = ctx.series_of(v)
            if "wm_prob" in s and "gm_prob" in s:
                wm = _load(ctx.image_path(v, "wm_prob"))[0].astype(np.float32)
                gm = _load(ctx.image_path(v, "gm_prob"))[0].astype(np.float32)
                notes.append(f"tissue maps from the wm_prob/gm_prob series of visit {v}")
                break
        if wm is None:
            brain = None
            for v, _ in ctx.visits():
                if "brain_mask" in ctx.series_of(v):
                    brain = _load(ctx.image_path(v, "brain_mask"))[0] > 0
                    break
            if brain is None:
                import SimpleITK as sitk

                from twinflow.segment.oncology import estimate_brain_mask
                v0 = visits[0]
                s0 = next(s for s in SEG_INPUT_SERIES if s in ctx.series_of(v0))
                m = estimate_brain_mask(sitk.ReadImage(str(ctx.image_path(v0, s0))))
                brain = sitk.GetArrayFromImage(m).transpose(2, 1, 0) > 0
                notes.append("no tissue maps and no brain mask: brain estimated from the first visit's image")
            wm = brain.astype(np.float32)
            gm = np.zeros_like(wm)
            notes.append("no wm_prob/gm_prob series: homogeneous diffusivity D_w inside the brain")
        tissue = ((wm + gm) >= 0.5).astype(np.uint8)
        if wm.shape != tuple(shape):
            raise InputError(f"tissue maps have shape {wm.shape}, segmentations {tuple(shape)}: all series of a "
                             "patient must be co-registered on one grid", patient=ctx.patient_id)
        return {"p_wm": wm, "p_gm": gm, "tissue": tissue}, notes

    def estimate(self, ctx: PatientContext, out_dir: Path) -> None:
        from twinflow.models.oncology.calibrate import DEFAULT_START, calibrate_patient
        from twinflow.models.oncology.density import initial_density
        from twinflow.models.oncology.forecast import holdout_metrics
        from twinflow.models.oncology.schedule import schedule_from_treatments

        visits, dates, days, obs, sources, affine, spacing = self._observations(ctx)
        if len(visits) < 2:
            raise InputError("the oncology twin needs at least two imaging visits with tumour series",
                             patient=ctx.patient_id)
        maps, notes = self._tissue(ctx, visits, obs[0].value.shape)
        bsa = _bsa(ctx.row)
        sched = schedule_from_treatments(ctx.treatments, dates[0], bsa_m2=bsa, weight_kg=float(ctx.row["weight_kg"]),
                                         patient=ctx.patient_id)
        start, shifts = DEFAULT_START, []
        if ctx.pgx_record.is_file():
            rec = json.loads(ctx.pgx_record.read_text())
            shifts = (rec.get("somatic") or {}).get("prior_shifts") or []
            kw = {}
            for s in shifts:
                field = s.get("parameter")
                if field in ("d_w_mm2_day", "k_per_day", "alpha_per_gy", "kappa_l_per_mg_h"):
                    kw[field] = kw.get(field, getattr(start, field)) * float(s.get("factor", 1.0))
            if kw:
                from dataclasses import replace
                start = replace(start, **kw)
        holdout = ctx.config.get("holdout_visits")
        res, cal, held = calibrate_patient(obs, spacing, maps["tissue"] > 0, maps["p_wm"], maps["p_gm"], sched,
                                           holdout_visits=holdout, start=start)
        forecast = holdout_metrics(obs, held, visits, res.params, spacing, maps["tissue"] > 0, maps["p_wm"],
                                   maps["p_gm"], sched)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_bytes(out_dir / "initial_density.nii.gz", _nifti_bytes(initial_density(obs[0]), affine))
        write_bytes(out_dir / "start_density.nii.gz", _nifti_bytes(initial_density(obs[-1]), affine))
        for k in ("p_wm", "p_gm", "tissue"):
            write_bytes(out_dir / f"{k}.nii.gz", _nifti_bytes(maps[k], affine))
        for v, o in zip(visits, obs):
            write_bytes(out_dir / f"observed_{v}.nii.gz", _nifti_bytes(o.point_density(), affine))
        write_json(out_dir / "estimate.json", {
            "patient_id": ctx.patient_id, "visits": visits, "dates": dates, "days": days,
            "observation_sources": sources, "calibration_visits": [visits[i] for i in cal],
            "holdout_visits": [visits[i] for i in held], "calibration": res.to_dict(),
            "params": _params_dict(res.params), "forecast": forecast, "bsa_m2": bsa,
            "spacing_mm": list(spacing), "start": _params_dict(start), "prior_shifts": shifts,
            "assumptions": notes + [
                "temozolomide PK: population CL/F 5.5 L/h/m2, V/F 12.7 L/m2, ka 5.8 1/h scaled by Mosteller BSA",
                "radiation field: the whole tissue mask; alpha/beta fixed at 10 Gy; D_grey/D_white fixed at 0.1",
                "initial condition: density visible at the first visit (u >= 0.16), 0 elsewhere",
                "cell density from ADC: u = (ADC_w - ADC)/(ADC_w - ADC_min), ADC_w 3000, ADC_min 600 (1e-6 mm2/s)"
                if "adc" in sources else "cell density from labels: interval observations per label"]})

    # ------------------------------------------------------------------ simulate
    def _maps(self, d: Path) -> dict[str, np.ndarray]:
        import nibabel as nib
        out = {}
        for k in ("initial_density", "start_density", "p_wm", "p_gm", "tissue"):
            a = np.asarray(nib.load(str(d / f"{k}.nii.gz")).dataobj)
            out[k] = a.astype(np.float32) if k != "tissue" else a.astype(np.uint8)
        return out

    def simulate(self, ctx: PatientContext, estimate_dir: Path, out_dir: Path) -> None:
        est = json.loads((estimate_dir / "estimate.json").read_text())
        maps = self._maps(estimate_dir)
        spacing = tuple(est["spacing_mm"])
        arms = list(ctx.config.get("arms") or DEFAULT_ARMS)
        horizon = int(ctx.config.get("horizon_days", 180))
        sd_log = {k: v.get("log_sd") for k, v in est["calibration"]["parameters"].items() if v.get("estimated")}
        t_end = int(est["days"][-1]) + horizon
        spec = {"params": est["params"], "sd_log": sd_log, "bsa_m2": est["bsa_m2"], "spacing_mm": list(spacing),
                "first_date": est["dates"][0], "last_date": est["dates"][-1], "arms": arms, "horizon_days": horizon,
                "course_days": t_end, "band_seed": BAND_SEED, "band_samples": BAND_SAMPLES,
                "treatments": [{k: t[k] for k in ("date", "kind", "agent", "dose", "unit")} for t in ctx.treatments]}
        out_dir.mkdir(parents=True, exist_ok=True)
        write_bytes(out_dir / "results/arms.tsv", arms_table_bytes(maps, spacing, est["params"], est["dates"][-1],
                                                                    est["bsa_m2"], arms, horizon))
        write_bytes(out_dir / "results/course.tsv", course_table_bytes(
            maps, spacing, est["params"], sd_log, spec["treatments"], est["dates"][0], est["bsa_m2"], t_end, BAND_SEED))
        write_json(out_dir / "simulation.json", spec)

    # ------------------------------------------------------------------ twin
    def build_twin(self, ctx: PatientContext, builder: Any, estimate_dir: Path, simulate_dir: Path) -> dict:
        est = json.loads((estimate_dir / "estimate.json").read_text())
        spec = json.loads((simulate_dir / "simulation.json").read_text())
        cal = est["calibration"]
        params = {}
        for short, v in cal["parameters"].items():
            field = PARAM_FIELDS[short]
            sd = v["value"] * v["log_sd"] if v.get("estimated") and v.get("log_sd") is not None else None
            params[field] = {"value": v["value"], "unit": v["unit"], "estimated": bool(v["estimated"]),
                             "identifiable": bool(v["identifiable"]) if v["estimated"] else False,
                             "sd": sd, "ci95": v.get("ci95"),
                             "source": "calibrated (Levenberg-Marquardt, Laplace uncertainty)" if v["estimated"]
                             else (v.get("note") or "not estimated")}
        for k, val in cal["fixed"].items():
            params[k] = {"value": val, "estimated": False, "identifiable": None, "unit": "1" if k == "gm_ratio" else "Gy",
                         "source": "fixed model constant"}
        maps = {}
        for k in ("initial_density", "start_density", "p_wm", "p_gm", "tissue"):
            maps[k] = builder.add_file(f"maps/{k}.nii.gz", estimate_dir / f"{k}.nii.gz")
        builder.add_json("inputs/simulation.json", spec)
        for rel in ("results/arms.tsv", "results/course.tsv"):
            builder.add_file(rel, simulate_dir / rel)
        builder.add_json("results/calibration.json", cal)
        for v in est["visits"]:
            ov = ctx.segment_dir(v) / "overlay.png"
            if ov.is_file():
                builder.add_file(f"plots/segmentation_{v}.png", ov)
        self._plots(ctx, est, simulate_dir, estimate_dir, builder)
        flags = list(cal.get("flags") or [])
        return {
            "parameters": params,
            "maps": maps,
            "simulations": [
                {"name": "arms", "kind": "treatment arms from the last visit", "outputs": ["results/arms.tsv"]},
                {"name": "course", "kind": "course under the actual treatment from the first visit with a "
                                            "Laplace parameter band", "outputs": ["results/course.tsv"]}],
            "model_results": {
                "forecast": est["forecast"],
                "calibration": {k: cal[k] for k in ("n_forward_solves", "n_tangent_solves", "n_iterations", "converged",
                                                    "sigma_u", "calibration_days", "correlation", "flags")},
                "visits": [{"visit": v, "date": d, "day": day, "calibration": v in est["calibration_visits"],
                            "observation": s} for v, d, day, s in zip(est["visits"], est["dates"], est["days"],
                                                                      est["observation_sources"])],
                "arms_summary": _arm_summary(simulate_dir / "results/arms.tsv"),
            },
            "flags": [f"calibration: {f}" for f in flags],
            "assumptions": est["assumptions"],
            "seeds": {"uncertainty_band": BAND_SEED},
        }

    def _plots(self, ctx, est, simulate_dir: Path, estimate_dir: Path, builder) -> None:
        import nibabel as nib
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import pandas as pd

        from twinflow.models.oncology.forecast import tumour_volume_ml

        course = pd.read_csv(simulate_dir / "results/course.tsv", sep="\t")
        arms = pd.read_csv(simulate_dir / "results/arms.tsv", sep="\t")
        spacing = tuple(est["spacing_mm"])
        obs_v = []
        for v, day in zip(est["visits"], est["days"]):
            u = np.asarray(nib.load(str(estimate_dir / f"observed_{v}.nii.gz")).dataobj)
            obs_v.append((day, tumour_volume_ml(u, spacing), v in est["holdout_visits"]))
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
        ax.plot(course["day"], course["volume_ml"], color="C0", label="twin (actual treatment)")
        if "volume_ml_p05" in course:
            ax.fill_between(course["day"], course["volume_ml_p05"], course["volume_ml_p95"], color="C0", alpha=0.2,
                            label="5-95 % parameter band")
        for day, vol, held in obs_v:
            ax.plot([day], [vol], "o" if not held else "s", color="k" if not held else "C3")
        ax.plot([], [], "ko", label="observed (calibration)")
        ax.plot([], [], "s", color="C3", label="observed (held out)")
        last = est["days"][-1]
        for i, (arm, g) in enumerate(arms.groupby("arm", sort=True)):
            ax.plot(last + g["day"], g["volume_ml"], "--", color=f"C{i + 4}", lw=1, label=f"arm: {arm}")
        ax.set_xlabel(f"days since {est['dates'][0]}")
        ax.set_ylabel("tumour volume (ml, u >= 0.16)")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(builder.path("plots/growth.png"), format="png", metadata={"Software": None})
        plt.close(fig)
        # observed vs predicted mid-slice for held-out visits
        if est["forecast"]:
            from twinflow.models.oncology.growth import ReactionDiffusion
            from twinflow.models.oncology.schedule import schedule_from_treatments

            maps = self._maps(estimate_dir)
            sched = schedule_from_treatments(ctx.treatments, est["dates"][0], bsa_m2=est["bsa_m2"])
            rd = ReactionDiffusion(spacing, maps["tissue"] > 0, maps["p_wm"], maps["p_gm"])
            held = [(v, day) for v, day in zip(est["visits"], est["days"]) if v in est["holdout_visits"]]
            pred = rd.simulate(maps["initial_density"], _growth_params(est["params"]), max(d for _, d in held), 0.5,
                               schedule=sched, save_days=[d for _, d in held])
            fig, axes = plt.subplots(len(held), 2, figsize=(7, 3.4 * len(held)), dpi=100, squeeze=False)
            for r, (v, day) in enumerate(held):
                u_obs = np.asarray(nib.load(str(estimate_dir / f"observed_{v}.nii.gz")).dataobj)
                z = int(np.argmax((u_obs > 0).sum(axis=(0, 1)))) if u_obs.any() else u_obs.shape[2] // 2
                for c, (a, title) in enumerate(((u_obs, f"{v} observed"), (pred[day], f"{v} predicted"))):
                    axes[r, c].imshow(np.flipud(a[:, :, z].T)[:, ::-1], vmin=0, vmax=1, cmap="magma")
                    axes[r, c].set_title(title, fontsize=9)
                    axes[r, c].axis("off")
            fig.tight_layout()
            fig.savefig(builder.path("plots/forecast_slices.png"), format="png", metadata={"Software": None})
            plt.close(fig)

    # ------------------------------------------------------------------ verify / what-if
    def _spec_maps(self, twin_dir: Path) -> tuple[dict, dict]:
        spec = json.loads((Path(twin_dir) / "inputs/simulation.json").read_text())
        return spec, self._maps(Path(twin_dir) / "maps")

    def resimulate(self, twin_dir: Path, doc: dict, sim_name: str) -> dict[str, bytes]:
        spec, maps = self._spec_maps(twin_dir)
        sp = tuple(spec["spacing_mm"])
        if sim_name == "arms":
            return {"results/arms.tsv": arms_table_bytes(maps, sp, spec["params"], spec["last_date"], spec["bsa_m2"],
                                                         spec["arms"], spec["horizon_days"])}
        if sim_name == "course":
            return {"results/course.tsv": course_table_bytes(maps, sp, spec["params"], spec["sd_log"], spec["treatments"],
                                                             spec["first_date"], spec["bsa_m2"], spec["course_days"],
                                                             spec["band_seed"], spec["band_samples"])}
        raise KeyError(sim_name)

    def simulate_arm(self, twin_dir: Path, doc: dict, arm: dict | str) -> dict[str, bytes]:
        from twinflow.models.oncology.forecast import ARMS

        spec, maps = self._spec_maps(twin_dir)
        name = arm if isinstance(arm, str) else arm["name"]
        if name not in ARMS:
            raise KeyError(f"unknown arm {name!r}; known: {', '.join(ARMS)}")
        return {f"arm_{name}.tsv": arms_table_bytes(maps, tuple(spec["spacing_mm"]), spec["params"], spec["last_date"],
                                                    spec["bsa_m2"], [name], spec["horizon_days"])}

    # ------------------------------------------------------------------ in-silico trials
    def trial(self):
        from twinflow.models.oncology.trial import OncologyTrial

        return OncologyTrial()

    # ------------------------------------------------------------------ reporting
    def summary(self, doc: dict) -> dict[str, Any]:
        res = doc["model_results"]
        visits = res["visits"]
        row: dict[str, Any] = {"n_visits": len(visits),
                               "n_calibration_visits": sum(1 for v in visits if v["calibration"])}
        arms = {a["arm"]: a for a in res["arms_summary"]}
        row["volume_ml_last_visit"] = next(iter(arms.values()))["volume_ml_day0"] if arms else None
        for field in PARAM_FIELDS.values():
            p = doc["parameters"].get(field) or {}
            row[field] = p.get("value")
            row[f"{field}_identifiable"] = p.get("identifiable")
        fc = res["forecast"][-1] if res["forecast"] else {}
        for k in ("dice", "ccc", "volume_rel_error"):
            row[f"forecast_{k}"] = fc.get(k)
        for arm in sorted(arms):
            row[f"volume_ml_end_{arm}"] = arms[arm]["volume_ml_end"]
        return row

    def report_sections(self, twin_dir: Path, doc: dict) -> list[ReportSection]:
        res = doc["model_results"]
        d = Path(twin_dir) / "plots"
        growth = [(str(d / "growth.png"), "Tumour volume: observed visits, the calibrated twin under the actual "
                                          "treatment with its 5-95 % parameter band, and the treatment arms from the last visit")]
        held = [(str(d / "forecast_slices.png"), "Held-out visit: observed vs predicted cell density (slice with most tumour)")] \
            if (d / "forecast_slices.png").is_file() else []
        segs = [(str(p), f"Segmentation {p.stem.split('_', 1)[1]} (red enhancing, green oedema, blue necrosis, yellow expert)")
                for p in sorted(d.glob("segmentation_*.png"))]
        return [
            ReportSection("Visits", table=res["visits"], columns=["visit", "date", "day", "calibration", "observation"]),
            ReportSection("Forecast of held-out visits", table=res["forecast"], figures=held),
            ReportSection("Treatment arms from the last visit", table=res["arms_summary"], figures=growth),
            ReportSection("Segmentations", figures=segs),
        ]


def _arm_summary(path: Path) -> list[dict]:
    import pandas as pd

    df = pd.read_csv(path, sep="\t")
    out = []
    for arm, g in df.groupby("arm", sort=True):
        g = g.sort_values("day")
        out.append({"arm": arm, "volume_ml_day0": float(g["volume_ml"].iloc[0]),
                    "volume_ml_end": float(g["volume_ml"].iloc[-1]), "cell_count_end": float(g["cell_count"].iloc[-1]),
                    "min_volume_ml": float(g["volume_ml"].min()), "horizon_days": int(g["day"].iloc[-1])})
    return out
