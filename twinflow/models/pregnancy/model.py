"""Pregnancy twin: uterine-artery Doppler + BP + biomarkers -> FMF screening -> calibrated
uteroplacental circulation -> forecasts through gestation and aspirin / antihypertensive arms.

Stages (see :class:`twinflow.models.base.TwinModel`; equations in docs/pregnancy-model.md):

* segment   every visit with a ``UTA_DOPPLER_LEFT`` / ``UTA_DOPPLER_RIGHT`` series: the spectral
            Doppler DICOM is traced (:mod:`twinflow.io.doppler`) and measured (PSV, EDV, TAMAX,
            PI, RI, notch per cycle), with a QC image of the spectral region; a series whose
            path is a JSON file ``{"pi": ...}`` is a PI measured on the scanner (no image).
* estimate  the pregnancy's sheet row (maternal history, dating), the visits' MAP and
            biomarkers from the labs -> FMF first-trimester screening; each imaged side of each
            calibration visit -> :func:`twinflow.models.pregnancy.calibrate.calibrate_visit`;
            the patient's remodelling state; held-out visits forecast and scored against the
            naive baseline (the first PI's centile carried forward, the first MAP carried
            forward).
* simulate  :func:`twinflow.models.pregnancy.forecast.simulation_outputs`: weekly forecast and
            the arms.

The plug-in class :class:`PregnancyTwin` (entry point ``twinflow.models: pregnancy``). The
pregnancy's row comes from the model's own sheet, ``pregnancies.tsv`` (config
``sheets.pregnancies``; schema ``pregnancies.schema.yaml`` beside this module): of the patient's
rows, the pregnancy whose dating covers the first Doppler visit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from twinflow.errors import InputError
from twinflow.io.atomic import write_bytes, write_json
from twinflow.models.base import PatientContext, ReportSection, TwinModel, schema_beside

VERSION = "1.0.0"
SIDES = ("LEFT", "RIGHT")
SERIES = {s: f"UTA_DOPPLER_{s}" for s in SIDES}
FIRST_TRIMESTER_DAYS = (77.0, 99.0)


def _read_measured_pi(path: Path, patient: str, display: str) -> dict:
    try:
        d = json.loads(Path(path).read_text())
        pi = float(d["pi"])
    except FileNotFoundError:
        raise InputError("file not found", patient=patient, path=display) from None
    except (ValueError, KeyError, TypeError):
        raise InputError('a measured-PI file must be JSON with a number "pi"', patient=patient, path=display) from None
    if not (0.1 <= pi <= 10.0):
        raise InputError(f"measured PI {pi:g} is not plausible (0.1-10)", patient=patient, path=display)
    return {"source": "measured PI (no image)", "pi": pi}


class PregnancyTwin(TwinModel):
    name = "pregnancy"
    version = VERSION
    series = tuple(SERIES.values())
    raw_series = tuple(SERIES.values())        # ultrasound DICOM (or a measured-PI JSON), read by segment
    sheets = {"pregnancies": schema_beside(__file__, "pregnancies.schema.yaml")}
    config_schema = schema_beside(__file__, "config.schema.yaml")
    results_schema = schema_beside(__file__, "results.schema.yaml")
    description = ("FMF competing-risks pre-eclampsia screening; uterine-artery Doppler ingest; uteroplacental "
                   "transmission-line model driven by the pregnancy-adapted circulation; aspirin and "
                   "antihypertensive arms")
    stage_modules = {
        "segment": ("twinflow.io.doppler", "twinflow.models.pregnancy.waveform"),
        "estimate": ("twinflow.models.pregnancy.screening", "twinflow.models.pregnancy.calibrate",
                     "twinflow.models.pregnancy.forecast", "twinflow.models.pregnancy.sheet",
                     "twinflow.models.pregnancy.measurements", "twinflow.models.pregnancy.dating"),
        "simulate": ("twinflow.models.pregnancy.forecast",),
        "twin": ("twinflow.models.pregnancy.forecast",),
    }

    # ------------------------------------------------------------------ inputs
    def pregnancy(self, ctx: PatientContext):
        """The patient's pregnancy that the imaging visits belong to (pregnancies.tsv)."""
        from .sheet import select_pregnancy

        visits = self.segment_visits(ctx)
        first = dict(ctx.visits())[visits[0]] if visits else None
        return select_pregnancy(ctx.sheets.get("pregnancies") or [], ctx.patient_id, first)

    def _labs(self, ctx: PatientContext):
        import pandas as pd

        p = ctx.labs_table
        if not p.is_file():
            return None
        return pd.read_csv(p, sep="\t", dtype={"loinc": str, "analyser": str, "body_site": str},
                           keep_default_na=False, na_values={"value": [""]})

    # ------------------------------------------------------------------ segment
    def segment_visits(self, ctx: PatientContext) -> list[str]:
        return [v for v, _ in ctx.visits() if any(SERIES[s] in ctx.series_of(v) for s in SIDES)]

    def segment(self, ctx: PatientContext, visit: str, out_dir: Path) -> None:
        from twinflow.io.doppler import analyse_dicom

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        series = ctx.series_of(visit)
        sides = {}
        for side in SIDES:
            row = series.get(SERIES[side])
            if row is None:
                continue
            if str(row.path).lower().endswith(".json"):
                sides[side] = _read_measured_pi(Path(row.path), ctx.patient_id, row.path_display)
                continue
            res = analyse_dicom(row.path, patient=ctx.patient_id, display_path=row.path_display)
            ind = res["indices"]
            write_bytes(out_dir / f"qc_{side.lower()}.png", res["qc_png"])
            sides[side] = {"source": "spectral Doppler image", "pi": ind.pi, "ri": ind.ri, "psv_cm_s": ind.psv_cm_s,
                           "edv_cm_s": ind.edv_cm_s, "tamax_cm_s": ind.tamax_cm_s, "pi_sd": ind.pi_sd,
                           "notch": ind.notch, "notch_depth": ind.notch_depth, "n_cycles": ind.n_cycles,
                           "heart_rate_bpm": ind.heart_rate_bpm, "cycles": [c.__dict__ for c in ind.cycles],
                           "onsets_s": ind.onsets_s, "region": res["region"], "side_of_baseline": res["side"],
                           "envelope": res["envelope"], "qc": f"qc_{side.lower()}.png"}
        pis = [s["pi"] for s in sides.values()]
        write_json(out_dir / "segmentation.json", {
            "patient_id": ctx.patient_id, "visit": visit, "date": dict(ctx.visits())[visit], "sides": sides,
            "mean_pi": float(np.mean(pis)) if pis else None,
            "bilateral_notch": bool(len(sides) == 2 and all(s.get("notch") for s in sides.values())),
            "notes": [] if len(sides) == 2 else ["one side only: the mean UtA-PI is that side's PI"]})

    # ------------------------------------------------------------------ estimate
    def estimate(self, ctx: PatientContext, out_dir: Path) -> None:
        from .calibrate import calibrate_visit
        from .measurements import biomarker, protocol_map
        from .screening import Maternal, Markers, screen, sflt_plgf_interpretation

        rec = self.pregnancy(ctx)
        if rec.fetuses != 1:
            raise InputError(f"{rec.fetuses} fetuses: the FMF model used here is for singleton pregnancies",
                             patient=ctx.patient_id)
        dating = rec.dating()
        labs = self._labs(ctx)
        visits = self.segment_visits(ctx)
        if not visits:
            raise InputError("the pregnancy twin needs a UTA_DOPPLER_LEFT or UTA_DOPPLER_RIGHT series",
                             patient=ctx.patient_id)
        dates = dict(ctx.visits())
        notes: list[str] = [f"dating: {dating.source}"]
        vrecs = []
        for v in visits:
            seg = json.loads((ctx.segment_dir(v) / "segmentation.json").read_text())
            bp = protocol_map(labs, dates[v])
            bio = {k: biomarker(labs, dates[v], k) for k in ("plgf", "sflt1", "sflt1_plgf_ratio", "papp_a",
                                                             "papp_a_mass")}
            r = {"visit": v, "date": dates[v], "ga_weeks": dating.ga_weeks(dates[v]), "mean_pi": seg["mean_pi"],
                 "sides": {s: {k: x for k, x in d.items() if k not in ("envelope", "cycles", "region")}
                           for s, d in seg["sides"].items()},
                 "bilateral_notch": seg["bilateral_notch"], "map": bp,
                 "biomarkers": {k: b for k, b in bio.items() if b is not None}}
            if bio["sflt1"] and bio["plgf"]:
                r["sflt1_plgf"] = sflt_plgf_interpretation(bio["sflt1"]["value"], bio["plgf"]["value"])
            vrecs.append(r)
            for n in (bp or {}).get("notes", []):
                notes.append(f"visit {v}: {n}")
        # ---- first-trimester screening
        mat = Maternal(age_years=float(ctx.row["age_years"]), weight_kg=float(ctx.row["weight_kg"]),
                       height_cm=float(ctx.row["height_cm"]), ethnicity=rec.ethnicity, smoker=rec.smoker,
                       conception=rec.conception, chronic_hypertension=rec.chronic_hypertension,
                       diabetes=rec.diabetes, sle=rec.sle, aps=rec.aps, mother_had_pe=rec.mother_had_pe,
                       parous=rec.parous, previous_pe=rec.previous_pe, previous_ga_weeks=rec.previous_ga_weeks,
                       interval_years=rec.interval_years())
        first = [r for r in vrecs if FIRST_TRIMESTER_DAYS[0] <= r["ga_weeks"] * 7 <= FIRST_TRIMESTER_DAYS[1]]
        cutoff = 1.0 / float(ctx.config.get("screen_cutoff_one_in", 100.0))
        sle_aps = str(ctx.config.get("sle_aps", "both"))
        if first:
            f = first[0]
            plgf = f["biomarkers"].get("plgf")
            markers = Markers(ga_weeks=f["ga_weeks"], map_mmhg=(f["map"] or {}).get("map_mmhg"),
                              uta_pi=f["mean_pi"],
                              plgf_pg_ml=plgf["value"] if plgf else None, plgf_assay=plgf["analyser"] if plgf else None,
                              biochemical_ga_weeks=dating.ga_weeks(plgf["date"]) if plgf else None,
                              biophysical_ga_weeks=dating.ga_weeks((f["map"] or {}).get("date") or f["date"]))
            scr = screen(mat, markers, cutoff=cutoff, sle_aps=sle_aps)
            screening = {"visit": f["visit"], "ga_weeks": f["ga_weeks"], "result": scr.to_dict(),
                         "markers": {"map_mmhg": markers.map_mmhg, "uta_pi": markers.uta_pi,
                                     "plgf_pg_ml": markers.plgf_pg_ml, "plgf_assay": markers.plgf_assay},
                         "posterior": {"mu": scr.prior_mean_weeks, "log10_moms": scr.log10_moms_used}}
        else:
            scr = screen(mat, None, cutoff=cutoff, sle_aps=sle_aps)
            screening = {"visit": None, "ga_weeks": None, "result": scr.to_dict(), "markers": {},
                         "posterior": {"mu": scr.prior_mean_weeks, "log10_moms": {}}}
            notes.append("no visit at 11+0 to 14+1 weeks: risk from maternal factors only")
        # ---- calibration and held-out visits
        doppler_visits = [r for r in vrecs if any("spectral" in s["source"] for s in r["sides"].values())]
        n_hold = ctx.config.get("holdout_visits")
        n_hold = (1 if len(vrecs) >= 2 else 0) if n_hold is None else int(n_hold)
        n_hold = min(n_hold, len(vrecs) - 1)
        held = vrecs[len(vrecs) - n_hold:] if n_hold > 0 else []
        cal_visits = [r for r in doppler_visits if r not in held and r["map"]]
        if not cal_visits:
            raise InputError("no visit with a spectral Doppler image and a blood pressure to calibrate the "
                             "uteroplacental model", patient=ctx.patient_id)
        calib: dict[str, dict[str, Any]] = {}
        for r in cal_visits:
            seg = json.loads((ctx.segment_dir(r["visit"]) / "segmentation.json").read_text())
            calib[r["visit"]] = {}
            for side, d in seg["sides"].items():
                if "envelope" not in d:
                    continue
                t = np.array(d["envelope"]["t_s"], float)
                v = np.array([np.nan if x is None else x for x in d["envelope"]["v_cm_s"]], float)
                ok = np.isfinite(v)
                v = np.interp(t, t[ok], v[ok])
                cyc = list(zip(d["onsets_s"][:-1], d["onsets_s"][1:]))
                c = calibrate_visit(t, v, cyc, r["map"]["map_mmhg"], r["ga_weeks"], side)
                calib[r["visit"]][side] = c.to_dict()
        state = self._state(calib, cal_visits)
        holdout = self._score_holdout(state, screening, vrecs, held, cal_visits)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / "estimate.json", {
            "patient_id": ctx.patient_id, "pregnancy": {k: x for k, x in rec.to_dict().items() if k != "patient_id"},
            "dating": {"source": dating.source, "start_date": dating.start_date().isoformat()},
            "maternal": {k: getattr(mat, k) for k in mat.__dataclass_fields__},
            "visits": vrecs, "screening": screening, "calibration": calib,
            "calibration_visits": [r["visit"] for r in cal_visits], "holdout_visits": [r["visit"] for r in held],
            "state": state, "holdout": holdout,
            "assumptions": notes + [
                "maternal circulation: the cardiac twin's closed loop adapted to gestation (heart rate +15/min by "
                "term, stressed volume +25 %, systemic resistance -40 % at 22 weeks, arterial compliance +30 %)",
                "uterine artery: lossy transmission line, effective length 66 cm, blood density 1.06 g/ml, "
                "viscosity 3.5 mPa s, max/mean velocity 1.5; placental bed: matched three-element Windkessel",
                "remodelling state held through gestation: ln placental-bed resistance offset from the normal "
                "trajectory (fitted to Gomez 2008 median UtA-PI), distal time constant ratio, wave speed and "
                "radius factor stay at their calibrated values",
                "aspirin: ASPRE odds ratio 0.38 (95 % CI 0.20-0.74) on preterm PE; no effect on term PE or on "
                "the haemodynamics"]})

    @staticmethod
    def _state(calib: dict, cal_visits: list[dict]) -> dict[str, Any]:
        """Patient state from the calibrated visits: per side, the weighted mean ln R_p offset from
        the normal trajectory (weights 1/var), tau ratio, wave speed and radius factor."""
        from .uteroplacental import DISTAL_TIME_CONSTANT_S, normal_ln_rp, population_hr, radius_cm

        sides, factors, hr_off = {}, [], []
        for side in SIDES:
            rows = [(r, calib[r["visit"]][side]) for r in cal_visits if side in calib.get(r["visit"], {})]
            if not rows:
                continue
            offs = np.array([math.log(c["estimates"]["r_p_mmhg_s_ml"]) - normal_ln_rp(r["ga_weeks"]) for r, c in rows])
            sd = np.array([max(c["log_sd"]["r_p_mmhg_s_ml"], 1e-3) for _, c in rows])
            w = 1.0 / sd ** 2
            sides[side] = {
                "log_offset": float(np.sum(w * offs) / np.sum(w)), "log_offset_sd": float(1.0 / math.sqrt(np.sum(w))),
                "tau_ratio": float(np.exp(np.mean([math.log(c["estimates"]["r_p_mmhg_s_ml"] * c["estimates"]["c_d_ml_mmhg"]
                                                            / DISTAL_TIME_CONSTANT_S) for _, c in rows]))),
                "wave_speed_cm_s": float(np.exp(np.mean([math.log(c["estimates"]["wave_speed_cm_s"]) for _, c in rows]))),
                "radius_factor": float(np.exp(np.mean([math.log(c["estimates"]["radius_cm"] / radius_cm(r["ga_weeks"]))
                                                        for r, c in rows]))),
                "visits": [r["visit"] for r, _ in rows]}
            factors += [math.log(c["estimates"]["r_sys_factor"]) for _, c in rows]
            hr_off += [c["hr_bpm"] - population_hr(r["ga_weeks"]) for r, c in rows]
        if len(sides) == 1:                       # one imaged side: the other is taken as its mirror
            only = next(iter(sides.values()))
            sides = {s: dict(only, mirrored=(s not in sides)) for s in SIDES}
        return {"sides": sides, "r_sys_factor": float(math.exp(np.mean(factors))),
                "hr_offset_bpm": float(np.mean(hr_off))}

    @staticmethod
    def _score_holdout(state, screening, vrecs, held, cal_visits) -> list[dict]:
        """Forecast of each held-out visit's mean PI and MAP against the naive baselines."""
        from twinflow.models.cardiac.circulation import Circulation

        from .forecast import _course
        from .uteroplacental import gomez_median_pi

        if not held:
            return []
        first = cal_visits[0]
        spec = {"sides": state["sides"], "r_sys_factor": state["r_sys_factor"],
                "hr_offset_bpm": state["hr_offset_bpm"], "posterior": screening["posterior"],
                "ga_grid": [r["ga_weeks"] for r in held]}
        course = _course(spec, Circulation(), with_band=False)
        out = []
        for r, c in zip(held, course):
            naive_pi = gomez_median_pi(r["ga_weeks"]) * first["mean_pi"] / gomez_median_pi(first["ga_weeks"])
            meas_map = (r["map"] or {}).get("map_mmhg")
            out.append({"visit": r["visit"], "ga_weeks": r["ga_weeks"], "measured_pi": r["mean_pi"],
                        "forecast_pi": c["uta_pi"], "naive_pi": float(naive_pi),
                        "forecast_pi_error": c["uta_pi"] - r["mean_pi"], "naive_pi_error": float(naive_pi - r["mean_pi"]),
                        "measured_map_mmhg": meas_map, "forecast_map_mmhg": c["map_mmhg"],
                        "naive_map_mmhg": first["map"]["map_mmhg"],
                        "naive_baseline": "first visit's UtA-PI centile (multiple of the Gomez median) and MAP "
                                          "carried forward"})
        return out

    # ------------------------------------------------------------------ simulate
    def _spec(self, ctx: PatientContext, est: dict) -> dict:
        from .forecast import DEFAULT_ARMS, GA_GRID, N_SAMPLES, SEED

        return {"sides": est["state"]["sides"], "r_sys_factor": est["state"]["r_sys_factor"],
                "hr_offset_bpm": est["state"]["hr_offset_bpm"], "posterior": est["screening"]["posterior"],
                "arms": list(ctx.config.get("arms") or DEFAULT_ARMS), "ga_grid": list(GA_GRID),
                "n_samples": int(ctx.config.get("forecast_samples", N_SAMPLES)), "seed": SEED}

    def simulate(self, ctx: PatientContext, estimate_dir: Path, out_dir: Path) -> None:
        from .forecast import simulation_outputs

        est = json.loads((Path(estimate_dir) / "estimate.json").read_text())
        spec = self._spec(ctx, est)
        for rel, data in simulation_outputs(spec).items():
            write_bytes(Path(out_dir) / rel, data)
        write_json(Path(out_dir) / "simulation.json", spec)

    # ------------------------------------------------------------------ twin
    def build_twin(self, ctx: PatientContext, builder: Any, estimate_dir: Path, simulate_dir: Path) -> dict:
        from .forecast import read_tsv

        est = json.loads((Path(estimate_dir) / "estimate.json").read_text())
        spec = json.loads((Path(simulate_dir) / "simulation.json").read_text())
        builder.add_json("inputs/simulation.json", spec)
        for rel in ("results/forecast.tsv", "results/arms.tsv"):
            builder.add_file(rel, Path(simulate_dir) / rel)
        builder.add_json("results/screening.json", est["screening"])
        for v in est["visits"]:
            for side in SIDES:
                qc = ctx.segment_dir(v["visit"]) / f"qc_{side.lower()}.png"
                if qc.is_file():
                    builder.add_file(f"plots/doppler_{v['visit']}_{side.lower()}.png", qc)
        forecast = read_tsv((Path(simulate_dir) / "results/forecast.tsv").read_bytes())
        arms = read_tsv((Path(simulate_dir) / "results/arms.tsv").read_bytes())
        self._plots(est, forecast, arms, builder)
        params = {}
        for v, sides in est["calibration"].items():
            for side, c in sides.items():
                ident = c["identifiability"].get("identifiable", {})
                for k, val in c["estimates"].items():
                    params[f"{v}_{side.lower()}_{k}"] = {
                        "value": val, "unit": k.rsplit("_", 1)[-1] if k != "r_sys_factor" else "1", "estimated": True,
                        "identifiable": bool(ident.get(k, True)), "sd": val * c["log_sd"][k], "ci95": c["ci95"][k],
                        "source": "calibrated to the Doppler envelope" if k != "r_sys_factor" else "calibrated to MAP"}
        r = est["screening"]["result"]
        summary = []
        for arm in sorted({a["arm"] for a in arms}):
            rows = [a for a in arms if a["arm"] == arm]
            first = rows[0]
            at = {a["ga_weeks"]: a for a in rows}
            summary.append({"arm": arm, "risk_pe_lt37_from_11w": first["risk_pe_lt37_if_undelivered"],
                            "risk_lo": first["risk_pe_lt37_lo"], "risk_hi": first["risk_pe_lt37_hi"],
                            "map_mmhg_at_28w": at.get(28.0, {}).get("map_mmhg"),
                            "uta_pi_at_24w": at.get(24.0, {}).get("uta_pi"),
                            "uterine_flow_ml_min_at_28w": at.get(28.0, {}).get("uterine_flow_ml_min")})
        return {
            "parameters": params,
            "maps": {},
            "simulations": [
                {"name": "forecast", "kind": "MAP, UtA-PI and remodelling through gestation, risk if undelivered",
                 "outputs": ["results/forecast.tsv"]},
                {"name": "arms", "kind": "none, aspirin (ASPRE odds ratio with CI), antihypertensive",
                 "outputs": ["results/arms.tsv"]}],
            "model_results": {
                "screening": {"visit": est["screening"]["visit"], "ga_weeks": est["screening"]["ga_weeks"],
                              "markers": est["screening"]["markers"], "moms": r["moms"], "prior_risk": r["prior_risk"],
                              "risk": r["risk"], "screen_positive": r["screen_positive"],
                              "recommendation": r["recommendation"], "cutoff": r["cutoff"]},
                "pregnancy": est["pregnancy"]["pregnancy"],
                "visits": [{k: v[k] for k in ("visit", "date", "ga_weeks", "mean_pi", "bilateral_notch", "sides",
                                               "biomarkers")} | {"map_mmhg": (v["map"] or {}).get("map_mmhg"),
                                                                 "sflt1_plgf": v.get("sflt1_plgf")}
                           for v in est["visits"]],
                "calibration": {v: {s: {k: c[k] for k in ("ga_weeks", "fitted_pi", "measured_pi", "rms_residual_cm_s",
                                                          "remodelling_fraction", "converged", "identifiability",
                                                          "correlation", "hr_bpm", "map_mmhg")}
                                    for s, c in sides.items()} for v, sides in est["calibration"].items()},
                "state": est["state"],
                "holdout_forecast": est["holdout"],
                "arms_summary": summary,
            },
            "assumptions": est["assumptions"],
            "seeds": {"forecast_band": spec["seed"]},
        }

    @staticmethod
    def _plots(est: dict, forecast: list[dict], arms: list[dict], builder) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        ga = [r["ga_weeks"] for r in forecast]
        fig, ax = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
        ax[0].fill_between(ga, [r["uta_pi_p05"] for r in forecast], [r["uta_pi_p95"] for r in forecast], alpha=0.25,
                           color="C0", label="twin 5-95 % band")
        ax[0].plot(ga, [r["uta_pi"] for r in forecast], color="C0", label="twin: mean UtA-PI")
        ax[0].plot(ga, [r["uta_pi_ref_p50"] for r in forecast], "k--", lw=1, label="reference median (Gomez 2008)")
        ax[0].plot(ga, [r["uta_pi_ref_p95"] for r in forecast], "k:", lw=1, label="reference 95th centile")
        for v in est["visits"]:
            held = v["visit"] in est["holdout_visits"]
            ax[0].plot([v["ga_weeks"]], [v["mean_pi"]], "s" if held else "o", color="C3" if held else "k")
        ax[0].set_xlabel("gestational age (weeks)")
        ax[0].set_ylabel("mean uterine artery PI")
        ax[0].legend(fontsize=7)
        ax[1].plot(ga, [r["map_mmhg"] for r in forecast], color="C1", label="twin MAP")
        for v in est["visits"]:
            if v["map"]:
                ax[1].plot([v["ga_weeks"]], [v["map"]["map_mmhg"]], "ko")
        anti = [a for a in arms if a["arm"] == "antihypertensive"]
        if anti:
            ax[1].plot([a["ga_weeks"] for a in anti], [a["map_mmhg"] for a in anti], "--", color="C2",
                       label="antihypertensive arm")
        ax[1].set_xlabel("gestational age (weeks)")
        ax[1].set_ylabel("MAP (mmHg)")
        ax[1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(builder.path("plots/forecast.png"), format="png", metadata={"Software": None})
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for i, arm in enumerate(sorted({a["arm"] for a in arms})):
            rows = [a for a in arms if a["arm"] == arm]
            x = [a["ga_weeks"] for a in rows]
            ax.plot(x, [a["risk_pe_lt37_if_undelivered"] for a in rows], color=f"C{i}", label=arm)
            if arm == "aspirin":
                ax.fill_between(x, [a["risk_pe_lt37_lo"] for a in rows], [a["risk_pe_lt37_hi"] for a in rows],
                                color=f"C{i}", alpha=0.2, label="aspirin 95 % CI (ASPRE)")
        ax.axhline(est["screening"]["result"]["cutoff"], color="k", lw=0.8, ls=":", label="screening cut-off")
        ax.set_yscale("log")
        ax.set_xlabel("gestational age (weeks)")
        ax.set_ylabel("risk of delivery with PE < 37 weeks\n(if undelivered)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(builder.path("plots/risk_arms.png"), format="png", metadata={"Software": None})
        plt.close(fig)

    def resimulate(self, twin_dir: Path, doc: dict, sim_name: str) -> dict[str, bytes]:
        from .forecast import simulation_outputs

        if sim_name not in ("forecast", "arms"):
            raise KeyError(sim_name)
        spec = json.loads((Path(twin_dir) / "inputs/simulation.json").read_text())
        out = simulation_outputs(spec)
        rel = f"results/{sim_name}.tsv"
        return {rel: out[rel]}

    def simulate_arm(self, twin_dir: Path, doc: dict, arm: dict | str) -> dict[str, bytes]:
        from .forecast import ARM_COLUMNS, DEFAULT_ARMS, _tsv, arm_rows

        spec = json.loads((Path(twin_dir) / "inputs/simulation.json").read_text())
        if isinstance(arm, str):
            match = [a for a in list(spec.get("arms") or []) + list(DEFAULT_ARMS) if a["name"] == arm]
            if not match:
                raise KeyError(f"unknown arm {arm!r}; known: none, aspirin, antihypertensive")
            arm = match[0]
        return {f"arm_{arm['name']}.tsv": _tsv(arm_rows(spec, arm), ARM_COLUMNS)}

    # ------------------------------------------------------------------ in-silico trials
    def trial(self):
        from twinflow.models.pregnancy.trial import PregnancyTrial

        return PregnancyTrial()

    # ------------------------------------------------------------------ reporting
    def summary(self, doc: dict) -> dict[str, Any]:
        res = doc["model_results"]
        scr = res["screening"]
        moms = scr.get("moms") or {}
        first = res["visits"][0] if res["visits"] else {}
        held = res["holdout_forecast"][-1] if res["holdout_forecast"] else {}
        return {"pregnancy": res["pregnancy"], "screening_ga_weeks": scr.get("ga_weeks"),
                "prior_risk_37": (scr.get("prior_risk") or {}).get("37"), "risk_37": (scr.get("risk") or {}).get("37"),
                "risk_34": (scr.get("risk") or {}).get("34"), "risk_32": (scr.get("risk") or {}).get("32"),
                "screen_positive": scr.get("screen_positive"), "mom_map": moms.get("map"),
                "mom_uta_pi": moms.get("uta_pi"), "mom_plgf": moms.get("plgf"),
                "first_visit_mean_uta_pi": first.get("mean_pi"), "first_visit_bilateral_notch": first.get("bilateral_notch"),
                "holdout_pi_error": held.get("forecast_pi_error"), "holdout_naive_pi_error": held.get("naive_pi_error")}

    def report_sections(self, twin_dir: Path, doc: dict) -> list[ReportSection]:
        res = doc["model_results"]
        scr = res["screening"]
        d = Path(twin_dir) / "plots"
        items = {"visit": scr.get("visit"), "gestational age (weeks)": scr.get("ga_weeks"),
                 "screen positive": scr.get("screen_positive"), "cut-off": scr.get("cutoff"),
                 "recommendation": scr.get("recommendation")}
        items.update({f"prior risk < {g} weeks": v for g, v in sorted((scr.get("prior_risk") or {}).items())})
        items.update({f"risk < {g} weeks": v for g, v in sorted((scr.get("risk") or {}).items())})
        items.update({f"MoM {k}": v for k, v in sorted((scr.get("moms") or {}).items())})
        visits = [{k: v.get(k) for k in ("visit", "date", "ga_weeks", "mean_pi", "bilateral_notch", "map_mmhg")}
                  for v in res["visits"]]
        doppler = [(str(p), f"Spectral Doppler {p.stem.split('_', 1)[1].replace('_', ' ')}: traced envelope and cycles")
                   for p in sorted(d.glob("doppler_*.png"))]
        return [
            ReportSection("Pre-eclampsia screening (FMF competing-risks model)", items=items),
            ReportSection("Visits", table=visits, figures=doppler),
            ReportSection("Forecast through gestation", table=res["holdout_forecast"], figures=[
                (str(d / "forecast.png"), "Mean uterine-artery PI and MAP through gestation: twin (band: remodelling "
                                          "uncertainty), reference centiles, visits (squares: held out)")]),
            ReportSection("Treatment arms", table=res["arms_summary"], figures=[
                (str(d / "risk_arms.png"), "Risk of delivery with pre-eclampsia before 37 weeks if still undelivered, "
                                           "per arm (aspirin with the ASPRE confidence interval)")]),
        ]
