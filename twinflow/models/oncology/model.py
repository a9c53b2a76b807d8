"""Oncology twin: tumour segmentation -> calibrated reaction-diffusion model -> forecasts and arms.

The plug-in class :class:`OncologyTwin` (entry point ``twinflow.models: oncology``).
Stages (see :class:`twinflow.models.base.TwinModel`; equations in docs/oncology-model.md):

* segment   every visit with a tumour-bearing series (T1post/T1c/T1Gd, FLAIR, T2) or an expert
            ``label_path`` on any series: automatic segmentation guided by the ``roi`` column
            and by the previous visit's tumour (:mod:`twinflow.segment.oncology`); an expert
            label is used instead where given (and the automatic result scored against it); a
            visit with an expert label but no tumour-bearing series (e.g. ADC + ROIs) takes the
            label as it is.
* estimate  cell fraction per visit from ADC inside the tumour (or from the labels), the organ
            domain and its tissue maps (:mod:`twinflow.models.oncology.inputs`), the treatment
            schedule from treatments.tsv, then Levenberg-Marquardt calibration with exact
            tangent sensitivities on all but the last ``holdout_visits`` visits; held-out
            visits are forecast and scored.  One imaging visit: an uncalibrated twin from the
            organ's documented priors.
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

VERSION = "1.1.0"
TUMOUR_SERIES = ("T1post", "T1c", "T1Gd", "T1ce", "FLAIR", "T2")
SEG_INPUT_SERIES = TUMOUR_SERIES + ("T1", "ADC")
#: fewer voxels than this along an axis make a 2D image (the same rule as inputs.MIN_AXIS_VOXELS; kept
#: here so that the segment stage does not depend on the estimation modules)
MIN_AXIS_VOXELS = 3
#: series that are never tumour observations themselves (masks and tissue maps)
NON_IMAGE_SERIES = ("organ_mask", "brain_mask", "wm_prob", "gm_prob", "fibroglandular_prob", "adipose_prob")
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
                     arms: list[str], horizon_days: int, pk: dict | None = None) -> bytes:
    """The arms table (shared by ``simulate`` and ``verify``)."""
    from twinflow.models.oncology.forecast import simulate_arms

    df = simulate_arms(maps["start_density"], _growth_params(params), spacing, maps["tissue"] > 0,
                       maps["p_wm"], maps["p_gm"], start_date, bsa_m2=bsa, horizon_days=int(horizon_days),
                       arms=tuple(arms), pk=pk or None)
    return df.to_csv(sep="\t", index=False, float_format="%.8g", lineterminator="\n").encode()


def course_table_bytes(maps: dict[str, np.ndarray], spacing, params: dict, sd_log: dict[str, float],
                       treatments: list[dict], first_date: str, bsa: float, t_end: int, seed: int,
                       n_samples: int = BAND_SAMPLES, pk: dict | None = None, weight_kg: float | None = None) -> bytes:
    """Volume and cell count from the first visit under the actual treatment, with a band from
    ``n_samples`` log-normal draws of the estimated parameters (Laplace approximation)."""
    import pandas as pd

    from twinflow.models.oncology.forecast import THETA_CELLS_PER_MM3, voxel_ml
    from twinflow.models.oncology.growth import ReactionDiffusion
    from twinflow.models.oncology.schedule import schedule_from_treatments
    from twinflow.models.oncology.density import T2_THRESHOLD

    sched = schedule_from_treatments(treatments, first_date, bsa_m2=bsa, weight_kg=weight_kg, pk=pk or None)
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


def _uncalibrated_doc(params, source: str) -> dict:
    """The ``calibration`` record of a twin built from priors (one imaging visit): no parameter
    is estimated, none has an uncertainty or an identifiability claim."""
    from twinflow.models.oncology.calibrate import PARAM_NAMES, PARAM_UNITS

    p = {n: {"value": float(getattr(params, PARAM_FIELDS[n])), "unit": PARAM_UNITS[n], "estimated": False,
             "log_sd": None, "ci95": None, "identifiable": None,
             "note": f"documented prior, uncalibrated (one imaging visit): {source}"} for n in PARAM_NAMES}
    return {"status": "uncalibrated: one imaging visit with tumour; parameters are documented priors",
            "parameters": p, "fixed": {"gm_ratio": params.gm_ratio, "ab_ratio_gy": params.ab_ratio_gy},
            "correlation": {"names": [], "matrix": []}, "flags": [], "sigma_u": None, "n_point_observations": 0,
            "n_residuals": 0, "cost": None, "n_iterations": 0, "converged": None, "n_forward_solves": 0,
            "n_tangent_solves": 0, "calibration_days": [], "history": []}


class OncologyTwin(TwinModel):
    name = "oncology"
    version = VERSION
    series = SEG_INPUT_SERIES + ("brain_mask", "wm_prob", "gm_prob")
    config_schema = schema_beside(__file__, "config.schema.yaml")
    results_schema = schema_beside(__file__, "results.schema.yaml")
    stage_modules = {
        "segment": ("twinflow.segment.oncology", "twinflow.io.imaging"),
        "estimate": ("twinflow.models.oncology.calibrate", "twinflow.models.oncology.density",
                     "twinflow.models.oncology.forecast", "twinflow.models.oncology.schedule",
                     "twinflow.models.oncology.inputs"),
        "simulate": ("twinflow.models.oncology.forecast", "twinflow.models.oncology.schedule",
                     "twinflow.models.oncology.density"),
        "twin": ("twinflow.models.oncology.forecast", "twinflow.models.oncology.schedule",
                 "twinflow.models.oncology.density"),
    }
    description = "3D reaction-diffusion tumour model with LQ radiotherapy and PK-driven drug kill"
    uses_previous_segmentation = True

    # ------------------------------------------------------------------ segment
    def segment_visits(self, ctx: PatientContext) -> list[str]:
        """Visits with a tumour-bearing series or an expert label on any series (date order)."""
        out = []
        for v, _ in ctx.visits():
            series = ctx.series_of(v)
            if any(s in series for s in TUMOUR_SERIES) or any(
                    r.label_path for s, r in series.items() if s not in NON_IMAGE_SERIES):
                out.append(v)
        return out

    def _brain_mask_path(self, ctx: PatientContext, visit: str) -> Path | None:
        """The visit's organ mask (``organ_mask``, or its synonym ``brain_mask``)."""
        series = ctx.series_of(visit)
        for s in ("organ_mask", "brain_mask"):
            if s in series:
                return ctx.image_path(visit, s)
        return None

    @staticmethod
    def _expert_series(series: dict) -> str | None:
        """The series whose ``label_path`` is the visit's expert label: a tumour series first,
        then any other image series (e.g. the ADC of a diffusion study), by name."""
        for s in TUMOUR_SERIES + tuple(sorted(set(series) - set(TUMOUR_SERIES))):
            if s in series and s not in NON_IMAGE_SERIES and series[s].label_path:
                return s
        return None

    @staticmethod
    def _unusable(images: dict, series: dict) -> tuple[str, str] | None:
        """(series, problem) of the first input the automatic segmentation cannot use: a 2D image,
        or an empty / constant tumour-bearing image; None when all are usable."""
        import SimpleITK as sitk

        for s, img in images.items():
            size = img.GetSize()
            if img.GetDimension() < 3 or min(size[:3]) < MIN_AXIS_VOXELS:
                return s, (f"is a 2D image (size {'x'.join(map(str, size))}): the oncology twin needs 3D images "
                           f"with at least {MIN_AXIS_VOXELS} voxels along every axis")
            a = sitk.GetArrayViewFromImage(img)
            fin = a[np.isfinite(a)]
            if s in TUMOUR_SERIES and (fin.size == 0 or float(fin.min()) == float(fin.max())):
                what = "empty (no finite value)" if fin.size == 0 else (
                    "empty (all 0)" if float(fin.max()) == 0.0 else f"constant ({float(fin.max()):g})")
                return s, f"is {what}: no contrast to segment a tumour from"
        return None

    def segment(self, ctx: PatientContext, visit: str, out_dir: Path) -> None:
        """The visit's tumour labels.  With an expert label (on any series) the model uses it on its
        own grid, and an automatic segmentation, where the visit has a tumour-bearing series, is
        only scored against it (its failure is noted, not fatal); without one the automatic result
        is used and any failure is a named error."""
        import SimpleITK as sitk

        from twinflow.io.imaging import write_nifti
        from twinflow.segment.oncology import LABEL_CONVENTIONS, convert_label_image, overlay_png, segment_tumour

        series = ctx.series_of(visit)
        conv = ctx.config.get("label_convention", "twinflow")
        if conv not in LABEL_CONVENTIONS:
            raise InputError(f"config key label_convention is {conv!r}; expected one of {', '.join(LABEL_CONVENTIONS)}",
                             patient=ctx.patient_id)
        ex = self._expert_series(series)
        expert = None
        if ex:
            try:
                expert = convert_label_image(sitk.ReadImage(str(ctx.label_path(visit, ex))), conv)
            except ValueError as exc:
                raise InputError(str(exc), patient=ctx.patient_id, path=series[ex].label_display) from None
        out_dir.mkdir(parents=True, exist_ok=True)
        res, auto_note = None, "none: the visit has no tumour-bearing series (T1post, FLAIR, T2)"
        if any(s in series for s in TUMOUR_SERIES):
            images = {s: sitk.ReadImage(str(ctx.image_path(visit, s))) for s in SEG_INPUT_SERIES if s in series}
            ref = next(s for s in TUMOUR_SERIES if s in series)
            bad = self._unusable(images, series)
            if bad and expert is None:
                raise InputError(bad[1], patient=ctx.patient_id, path=series[bad[0]].path_display)
            if bad:
                auto_note = f"not run: {bad[0]} {bad[1]}"
            else:
                bm = self._brain_mask_path(ctx, visit)
                brain = sitk.ReadImage(str(bm)) if bm else None
                prior = None
                visits = self.segment_visits(ctx)
                i = visits.index(visit)
                if i > 0:
                    prev = ctx.segment_dir(visits[i - 1]) / "segmentation.nii.gz"
                    if prev.is_file():
                        prior = sitk.ReadImage(str(prev))
                roi = next((r.roi for r in series.values() if r.roi), None)
                paths = {k: r.path_display for k, r in series.items()}
                paths.update(roi="imaging.tsv (roi)", prior=f"segment/{visits[i - 1]}" if i > 0 else "prior")
                if bm is not None:
                    paths["organ_mask"] = paths.get("organ_mask") or paths.get("brain_mask")
                try:
                    res = segment_tumour(images, organ_mask=brain, roi_lps_mm=roi, prior_mask=prior,
                                         expert_label=expert, patient=ctx.patient_id, paths=paths)
                    auto_note = "scored against the expert label" if expert is not None else "used"
                except InputError as exc:
                    if expert is None:
                        raise exc.with_context(patient=ctx.patient_id) from None
                    auto_note = f"failed ({exc.problem}); the expert label is used"
                except (ValueError, RuntimeError) as exc:
                    if expert is None:
                        raise InputError(f"visit {visit}: tumour segmentation failed: {exc}", patient=ctx.patient_id,
                                         path=series[ref].path_display) from None
                    auto_note = f"failed ({exc}); the expert label is used"
        if res is not None:
            write_nifti(res.automatic, out_dir / "automatic.nii.gz")
        if expert is None:
            label, base, notes, source = res.label, images[ref], res.notes, res.source
        else:
            label, base, source = expert, sitk.ReadImage(str(ctx.image_path(visit, ex))), "expert"
            notes = {**(res.notes if res is not None else {}), "expert_label_convention": conv}
        write_nifti(label, out_dir / "segmentation.nii.gz")
        png = overlay_png(base, label, out_dir / "overlay.png")
        write_json(out_dir / "segmentation.json", {
            "patient_id": ctx.patient_id, "visit": visit, "source": source, "labelled_series": ex,
            "volumes_ml": _label_volumes(label), "automatic": auto_note,
            "automatic_volumes_ml": res.automatic_volumes_ml if res is not None else None,
            "scores_vs_expert": res.scores if res is not None else None, "notes": notes, "overlay": png,
            "labels": {"1": "enhancing tumour", "2": "non-enhancing tumour / oedema", "3": "necrosis"}})

    # ------------------------------------------------------------------ estimate
    def _visit_files(self, ctx: PatientContext):
        from twinflow.models.oncology.inputs import VisitFiles

        dates = dict(ctx.visits())
        out = []
        for v in self.segment_visits(ctx):
            series = ctx.series_of(v)
            ex = self._expert_series(series)
            ref = ex or next((s for s in TUMOUR_SERIES if s in series), None)
            shown = (series[ex].label_display if ex else series[ref].path_display) if ref else f"segment/{v}"
            adc = "ADC" in series
            out.append(VisitFiles(v, dates[v], ctx.segment_dir(v) / "segmentation.nii.gz", str(shown),
                                  ctx.image_path(v, "ADC") if adc else None,
                                  str(series["ADC"].path_display) if adc else None))
        return out

    def _observations(self, ctx: PatientContext):
        from twinflow.models.oncology.inputs import load_observations

        return load_observations(ctx.patient_id, self._visit_files(ctx), _days,
                                 holdout_visits=ctx.config.get("holdout_visits"), config=ctx.config)

    def _domain(self, ctx: PatientContext, o):
        from twinflow.models.oncology.inputs import ORGAN_MASK_SERIES, TISSUE_SERIES, load_domain

        organ = None
        organ_name = "organ_mask"
        tissue: dict[str, tuple[Path, str]] = {}
        names = {s for pair in TISSUE_SERIES.values() for s in pair}
        for v, _ in ctx.visits():
            series = ctx.series_of(v)
            for s in ORGAN_MASK_SERIES:
                if organ is None and s in series:
                    organ, organ_name = (ctx.image_path(v, s), str(series[s].path_display)), s
            for s in sorted(names & set(series)):
                tissue.setdefault(s, (ctx.image_path(v, s), str(series[s].path_display)))
        v0 = o.visits[0]
        s0 = next((s for s in SEG_INPUT_SERIES if s in ctx.series_of(v0)), None)
        fallback = (ctx.image_path(v0, s0), str(ctx.series_of(v0)[s0].path_display)) if s0 else None
        any_t = np.zeros(o.obs[0].tumour.shape, bool)
        for ob in o.obs:
            any_t |= ob.tumour
        return load_domain(ctx.patient_id, o.obs[0].tumour.shape, o.affine, o.obs[0].tumour, any_t, organ_mask=organ,
                           tissue=tissue, fallback_image=fallback, organ_name=organ_name)

    def estimate(self, ctx: PatientContext, out_dir: Path) -> None:
        from dataclasses import replace

        from twinflow.models.oncology.calibrate import calibrate_patient, split_visits
        from twinflow.models.oncology.density import initial_density
        from twinflow.models.oncology.forecast import holdout_metrics
        from twinflow.models.oncology.inputs import PRIOR_SOURCES, prior_params
        from twinflow.models.oncology.schedule import schedule_from_treatments

        o = self._observations(ctx)
        dom = self._domain(ctx, o)
        maps = {"p_wm": dom.p_wm, "p_gm": dom.p_gm, "tissue": dom.tissue}
        tissue = dom.tissue > 0
        bsa = _bsa(ctx.row)
        pk = ctx.config.get("drug_pk") or {}
        if not isinstance(pk, dict):
            raise InputError("config key drug_pk must map drug names to PK parameters", patient=ctx.patient_id)
        sched = schedule_from_treatments(ctx.treatments, o.dates[0], bsa_m2=bsa, weight_kg=float(ctx.row["weight_kg"]),
                                         pk=pk or None, patient=ctx.patient_id)
        shifts = []
        if ctx.pgx_record.is_file():
            rec = json.loads(ctx.pgx_record.read_text())
            shifts = (rec.get("somatic") or {}).get("prior_shifts") or []
        start = replace(prior_params(dom.organ, shifts), gm_ratio=dom.ratio if dom.organ != "organ" else 0.1)
        holdout = ctx.config.get("holdout_visits")
        calibrated = len(o.visits) >= 2
        if calibrated:
            try:
                split_visits(len(o.visits), holdout)
            except ValueError:
                raise InputError(f"holdout_visits={holdout} leaves fewer than 2 of the {len(o.visits)} imaging visits "
                                 "with tumour for calibration: lower holdout_visits", patient=ctx.patient_id) from None
            try:
                res, cal, held = calibrate_patient(o.obs, o.spacing, tissue, dom.p_wm, dom.p_gm, sched,
                                                   holdout_visits=holdout, start=start)
            except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
                raise InputError(f"calibration failed: {exc}", patient=ctx.patient_id) from None
            params, cal_doc = res.params, res.to_dict()
            forecast = holdout_metrics(o.obs, held, o.visits, params, o.spacing, tissue, dom.p_wm, dom.p_gm, sched)
        else:
            cal, held, params = [0], [], start
            cal_doc = _uncalibrated_doc(params, PRIOR_SOURCES[dom.organ])
            forecast = []
        out_dir.mkdir(parents=True, exist_ok=True)
        write_bytes(out_dir / "initial_density.nii.gz", _nifti_bytes(initial_density(o.obs[0]), o.affine))
        write_bytes(out_dir / "start_density.nii.gz", _nifti_bytes(initial_density(o.obs[-1]), o.affine))
        for k in ("p_wm", "p_gm", "tissue"):
            write_bytes(out_dir / f"{k}.nii.gz", _nifti_bytes(maps[k], o.affine))
        for v, ob in zip(o.visits, o.obs):
            write_bytes(out_dir / f"observed_{v}.nii.gz", _nifti_bytes(ob.point_density(), o.affine))
        adc = o.adc
        density_note = ("cell fraction from ADC: u = (ADC_w - ADC)/(ADC_w - ADC_min), ADC_w {:g}, ADC_min {:.0f} um2/s "
                        "({}); non-enhancing region: {}".format(
                            adc["adc_w_um2_s"], adc["adc_min_um2_s"], adc["adc_min_source"],
                            "interval [0.16, 0.80], point value 0.16" if adc["nonenhancing"] == "interval"
                            else "mapped from ADC") if adc else
                        "cell fraction from labels: interval observations per label")
        tissue_note = {"brain": "D_grey/D_white fixed at 0.1", "breast": "D_adipose/D_fibroglandular fixed at 0.5",
                       "organ": "one diffusivity in the organ"}[dom.organ]
        assumptions = o.notes + dom.notes + [
            "temozolomide PK: population CL/F 5.5 L/h/m2, V/F 12.7 L/m2, ka 5.8 1/h scaled by Mosteller BSA",
            f"radiation field: the whole domain; alpha/beta fixed at 10 Gy; {tissue_note}",
            "initial condition: cell fraction visible at the first visit, 0 elsewhere",
            density_note]
        if not calibrated:
            assumptions.append("uncalibrated twin: one imaging visit with tumour, so the parameters are the documented "
                               f"priors ({PRIOR_SOURCES[dom.organ]}); no parameter is estimated or identified")
        write_json(out_dir / "estimate.json", {
            "patient_id": ctx.patient_id, "calibrated": calibrated, "organ": dom.organ, "visits": o.visits,
            "dates": o.dates, "days": o.days, "observation_sources": o.sources, "dropped_visits": o.dropped,
            "calibration_visits": [o.visits[i] for i in cal], "holdout_visits": [o.visits[i] for i in held],
            "calibration": cal_doc, "params": _params_dict(params), "forecast": forecast, "bsa_m2": bsa,
            "weight_kg": float(ctx.row["weight_kg"]), "drug_pk": pk, "adc": adc,
            "spacing_mm": list(o.spacing), "start": _params_dict(start), "prior_shifts": shifts,
            "assumptions": assumptions})

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
        pk = est.get("drug_pk") or {}
        spec = {"params": est["params"], "sd_log": sd_log, "bsa_m2": est["bsa_m2"], "spacing_mm": list(spacing),
                "first_date": est["dates"][0], "last_date": est["dates"][-1], "arms": arms, "horizon_days": horizon,
                "course_days": t_end, "band_seed": BAND_SEED, "band_samples": BAND_SAMPLES,
                "treatments": [{k: t[k] for k in ("date", "kind", "agent", "dose", "unit")} for t in ctx.treatments]}
        if pk:
            spec["drug_pk"] = pk
        if est.get("weight_kg") is not None:
            spec["weight_kg"] = est["weight_kg"]
        try:
            arms_tsv = arms_table_bytes(maps, spacing, est["params"], est["dates"][-1], est["bsa_m2"], arms, horizon, pk)
            course_tsv = course_table_bytes(maps, spacing, est["params"], sd_log, spec["treatments"], est["dates"][0],
                                            est["bsa_m2"], t_end, BAND_SEED, pk=pk, weight_kg=spec.get("weight_kg"))
        except InputError as exc:         # e.g. a drug without PK parameters
            raise exc.with_context(patient=ctx.patient_id) from None
        except ValueError as exc:         # e.g. an unknown arm name in the config
            raise InputError(f"simulation failed: {exc}", patient=ctx.patient_id) from None
        out_dir.mkdir(parents=True, exist_ok=True)
        write_bytes(out_dir / "results/arms.tsv", arms_tsv)
        write_bytes(out_dir / "results/course.tsv", course_tsv)
        write_json(out_dir / "simulation.json", spec)

    # ------------------------------------------------------------------ twin
    def build_twin(self, ctx: PatientContext, builder: Any, estimate_dir: Path, simulate_dir: Path) -> dict:
        est = json.loads((estimate_dir / "estimate.json").read_text())
        spec = json.loads((simulate_dir / "simulation.json").read_text())
        cal = est["calibration"]
        calibrated = bool(est.get("calibrated", True))
        params = {}
        for short, v in cal["parameters"].items():
            field = PARAM_FIELDS[short]
            sd = v["value"] * v["log_sd"] if v.get("estimated") and v.get("log_sd") is not None else None
            params[field] = {"value": v["value"], "unit": v["unit"], "estimated": bool(v["estimated"]),
                             "identifiable": (bool(v["identifiable"]) if v["estimated"] else False) if calibrated
                             else None,
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
            "calibrated": calibrated,
            "maps": maps,
            "simulations": [
                {"name": "arms", "kind": "treatment arms from the last visit", "outputs": ["results/arms.tsv"]},
                {"name": "course", "kind": "course under the actual treatment from the first visit" + (
                    " with a Laplace parameter band" if calibrated else " (uncalibrated: prior parameters, no band)"),
                 "outputs": ["results/course.tsv"]}],
            "model_results": {
                "organ": est.get("organ", "brain"),
                "forecast": est["forecast"],
                "calibration": {k: cal[k] for k in ("n_forward_solves", "n_tangent_solves", "n_iterations", "converged",
                                                    "sigma_u", "calibration_days", "correlation", "flags", "status")
                                if k in cal},
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
            sched = schedule_from_treatments(ctx.treatments, est["dates"][0], bsa_m2=est["bsa_m2"],
                                             weight_kg=est.get("weight_kg"), pk=est.get("drug_pk") or None)
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
        pk = spec.get("drug_pk")
        if sim_name == "arms":
            return {"results/arms.tsv": arms_table_bytes(maps, sp, spec["params"], spec["last_date"], spec["bsa_m2"],
                                                         spec["arms"], spec["horizon_days"], pk)}
        if sim_name == "course":
            return {"results/course.tsv": course_table_bytes(maps, sp, spec["params"], spec["sd_log"], spec["treatments"],
                                                             spec["first_date"], spec["bsa_m2"], spec["course_days"],
                                                             spec["band_seed"], spec["band_samples"], pk=pk,
                                                             weight_kg=spec.get("weight_kg"))}
        raise KeyError(sim_name)

    def simulate_arm(self, twin_dir: Path, doc: dict, arm: dict | str) -> dict[str, bytes]:
        from twinflow.models.oncology.forecast import ARMS

        spec, maps = self._spec_maps(twin_dir)
        name = arm if isinstance(arm, str) else arm["name"]
        if name not in ARMS:
            raise KeyError(f"unknown arm {name!r}; known: {', '.join(ARMS)}")
        return {f"arm_{name}.tsv": arms_table_bytes(maps, tuple(spec["spacing_mm"]), spec["params"], spec["last_date"],
                                                    spec["bsa_m2"], [name], spec["horizon_days"], spec.get("drug_pk"))}

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
        row["baseline_dice"] = (fc.get("baseline_locf") or {}).get("dice")
        row["organ"] = res.get("organ")
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
            ReportSection("Forecast of held-out visits (beside the naive baseline: the last calibration visit "
                          "carried forward)", table=[_forecast_row(r) for r in res["forecast"]], figures=held),
            ReportSection("Treatment arms from the last visit", table=res["arms_summary"], figures=growth),
            ReportSection("Segmentations", figures=segs),
        ]


def _label_volumes(label) -> dict[str, float]:
    """Volumes (ml) of a twinflow label image: 1 enhancing, 2 non-enhancing / oedema, 3 necrosis."""
    import SimpleITK as sitk

    a = sitk.GetArrayViewFromImage(label)
    vml = float(np.prod(label.GetSpacing()[:3])) / 1000.0
    vols = {f"{name}_ml": float((a == code).sum()) * vml
            for code, name in ((1, "enhancing"), (2, "nonenhancing_oedema"), (3, "necrosis"))}
    vols["tumour_core_ml"] = vols["enhancing_ml"] + vols["necrosis_ml"]
    vols["whole_tumour_ml"] = float((a > 0).sum()) * vml
    return vols


def _forecast_row(r: dict) -> dict:
    """A held-out visit's scores with the naive baseline's beside them (flat, for a table)."""
    keys = ("dice", "ccc", "volume_rel_error", "cell_count_rel_error")
    row = {"visit": r["visit"], **{k: r.get(k) for k in keys}}
    row.update({f"baseline_{k}": (r.get("baseline_locf") or {}).get(k) for k in keys})
    return row


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
