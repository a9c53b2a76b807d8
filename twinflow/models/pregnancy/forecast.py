"""Forecasts through gestation and treatment arms, from a pregnancy twin's state.

State (``spec``, written to the twin as ``inputs/simulation.json``; everything here is a pure
function of it, so ``twinflow verify`` re-creates the tables byte for byte):

* per side (``LEFT``, ``RIGHT``): ``log_offset`` (ln of the placental-bed resistance relative to
  the normal remodelling trajectory, with its SD), ``tau_ratio`` (distal time constant
  relative to normal), ``wave_speed_cm_s`` and ``radius_factor`` -- held at their calibrated
  values through gestation (documented assumption: an impaired remodelling stays impaired by
  the same factor);
* ``r_sys_factor`` and ``hr_offset_bpm``: the maternal circulation's patient factors (the
  heart rate follows the population course plus the offset measured on the Doppler traces);
* ``posterior``: prior mean and the truncated log10 MoMs of the first-trimester screening.

Outputs: ``results/forecast.tsv`` (weekly: MAP, mean UtA-PI with a 5-95 % band from
``n_samples`` draws of the offsets with a fixed seed, the published reference centiles,
placental-bed resistance, remodelling fraction, uterine blood flow, and the risk of delivery
with PE before 37 weeks given no delivery yet) and ``results/arms.tsv`` (the same per arm).

Arms:

* ``none``;
* ``aspirin``: 150 mg at night from the first-trimester visit to 36 weeks; the odds of preterm
  PE are multiplied by the ASPRE odds ratio 0.38 (95 % CI 0.20-0.74; Rolnik et al., N Engl J
  Med 2017) -- the interval is propagated exactly (the risk is monotone in the odds ratio);
  term PE and the haemodynamics are unchanged (ASPRE found no significant effect on term PE;
  aspirin does not change UtA-PI measurably);
* ``antihypertensive``: from ``start_weeks`` the systemic resistance is lowered so that MAP is
  ``map_reduction_mmhg`` below the untreated course; the uteroplacental flow and PI follow
  from the lower driving pressure; the PE risk is reported unchanged (lowering the pressure
  treats hypertension, it does not change the placental disease the risk describes).
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from twinflow.models.cardiac.circulation import Circulation

from .screening import LOWER_GA_WEEKS, Posterior
from .uteroplacental import (DISTAL_TIME_CONSTANT_S, gomez_log_sd, gomez_median_pi, maternal_cycle,
                             population_hr, pulsatility_index, radius_cm, remodelling_fraction, uterine_params,
                             velocity_envelope)

SIDES = ("LEFT", "RIGHT")
ASPRE_OR = (0.38, 0.20, 0.74)
DEFAULT_ARMS = (
    {"name": "none"},
    {"name": "aspirin", "odds_ratio": list(ASPRE_OR), "until_weeks": 36.0},
    {"name": "antihypertensive", "map_reduction_mmhg": 10.0, "start_weeks": 20.0},
)
GA_GRID = tuple(float(w) for w in range(11, 41))
N_SAMPLES = 40
SEED = 20240518


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{float(v):.6g}"


def _tsv(rows: list[dict], cols: list[str]) -> bytes:
    buf = io.StringIO()
    buf.write("\t".join(cols) + "\n")
    for r in rows:
        buf.write("\t".join(_fmt(r.get(c)) for c in cols) + "\n")
    return buf.getvalue().encode()


def side_params(ga: float, side: dict, log_offset: float | None = None):
    up = uterine_params(ga, log_offset=side["log_offset"] if log_offset is None else log_offset)
    return up.with_(c_d_ml_mmhg=DISTAL_TIME_CONSTANT_S * side["tau_ratio"] / up.r_p_mmhg_s_ml,
                    wave_speed_cm_s=side["wave_speed_cm_s"], radius_cm=radius_cm(ga) * side["radius_factor"])


def _uterine(mc, up) -> tuple[float, float]:
    """(PI, flow ml/min) of one side under the maternal cycle ``mc``."""
    v = velocity_envelope(mc.p_ao_mmhg, mc.period_s, up)
    flow = float(np.mean(v)) / up.profile_factor * math.pi * up.radius_cm ** 2 * 60.0
    return pulsatility_index(v), flow


def conditional_risk(post: Posterior, ga: float, horizon: float = 37.0) -> float:
    """Risk of delivery with PE before ``horizon`` given no delivery with PE before ``ga``."""
    lo = max(ga, LOWER_GA_WEEKS)
    if lo >= horizon:
        return 0.0
    return float(math.exp(post.log_mass(lo, horizon) - post.log_mass(lo, math.inf)))


def _with_or(p: float, odds_ratio: float) -> float:
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    o = odds_ratio * p / (1.0 - p)
    return o / (1.0 + o)


def _maternal(spec: dict, ga: float, solver: Circulation, factor: float | None = None):
    """The maternal cycle at ``ga``: population course with the patient's heart-rate offset and
    systemic-resistance factor (or ``factor``)."""
    hr = population_hr(ga) + float(spec.get("hr_offset_bpm", 0.0))
    return maternal_cycle(ga, hr_bpm=hr, r_sys_factor=spec["r_sys_factor"] if factor is None else factor,
                          solver=solver)


def _course(spec: dict, solver: Circulation, map_reduction: float = 0.0, start_weeks: float = 99.0,
            with_band: bool = True) -> list[dict]:
    post = Posterior.build(spec["posterior"]["mu"], spec["posterior"]["log10_moms"])
    rng = np.random.default_rng(int(spec.get("seed", SEED)))
    n = int(spec.get("n_samples", N_SAMPLES)) if with_band else 0
    draws = {s: rng.normal(0.0, 1.0, n) for s in SIDES}
    rows = []
    for ga in spec.get("ga_grid", GA_GRID):
        mc = _maternal(spec, ga, solver)
        base_map = float(mc.metrics["map_mmhg"])
        if map_reduction > 0 and ga >= start_weeks:
            from scipy.optimize import brentq

            target = base_map - map_reduction
            z = brentq(lambda z: _maternal(spec, ga, solver, spec["r_sys_factor"] * math.exp(z)).metrics["map_mmhg"]
                       - target, -1.5, 0.5, xtol=1e-9)
            mc = _maternal(spec, ga, solver, spec["r_sys_factor"] * math.exp(z))
        pis, flows, rps = [], [], []
        for s in SIDES:
            up = side_params(ga, spec["sides"][s])
            pi, fl = _uterine(mc, up)
            pis.append(pi)
            flows.append(fl)
            rps.append(up.r_p_mmhg_s_ml)
        row = {"ga_weeks": ga, "map_mmhg": float(mc.metrics["map_mmhg"]), "uta_pi": float(np.mean(pis)),
               "uta_pi_left": pis[0], "uta_pi_right": pis[1],
               "uta_pi_ref_p50": float(gomez_median_pi(ga)),
               "uta_pi_ref_p95": float(gomez_median_pi(ga) * math.exp(1.6448536 * float(gomez_log_sd(ga)))),
               "r_p_left_mmhg_s_ml": rps[0], "r_p_right_mmhg_s_ml": rps[1],
               "remodelling_fraction": float(np.mean([remodelling_fraction(r) for r in rps])),
               "uterine_flow_ml_min": float(np.sum(flows)),
               "risk_pe_lt37_if_undelivered": conditional_risk(post, ga)}
        if n:
            samples = []
            for k in range(n):
                sp = []
                for s in SIDES:
                    sd = spec["sides"][s]
                    off = sd["log_offset"] + sd.get("log_offset_sd", 0.0) * draws[s][k]
                    sp.append(_uterine(mc, side_params(ga, sd, off))[0])
                samples.append(np.mean(sp))
            row["uta_pi_p05"] = float(np.percentile(samples, 5))
            row["uta_pi_p95"] = float(np.percentile(samples, 95))
        rows.append(row)
    return rows


FORECAST_COLUMNS = ["ga_weeks", "map_mmhg", "uta_pi", "uta_pi_p05", "uta_pi_p95", "uta_pi_left", "uta_pi_right",
                    "uta_pi_ref_p50", "uta_pi_ref_p95", "r_p_left_mmhg_s_ml", "r_p_right_mmhg_s_ml",
                    "remodelling_fraction", "uterine_flow_ml_min", "risk_pe_lt37_if_undelivered"]
ARM_COLUMNS = ["arm", "ga_weeks", "map_mmhg", "uta_pi", "uterine_flow_ml_min", "risk_pe_lt37_if_undelivered",
               "risk_pe_lt37_lo", "risk_pe_lt37_hi"]


def arm_rows(spec: dict, arm: dict, solver: Circulation | None = None) -> list[dict]:
    solver = solver or Circulation()
    name = arm["name"]
    if name == "antihypertensive":
        course = _course(spec, solver, float(arm.get("map_reduction_mmhg", 10.0)),
                         float(arm.get("start_weeks", 20.0)), with_band=False)
    elif name in ("none", "aspirin"):
        course = _course(spec, solver, with_band=False)
    else:
        raise KeyError(f"unknown arm {name!r}; known: none, aspirin, antihypertensive")
    out = []
    for r in course:
        p = r["risk_pe_lt37_if_undelivered"]
        lo = hi = p
        if name == "aspirin":
            orc, orl, orh = (float(x) for x in arm.get("odds_ratio", ASPRE_OR))
            p, lo, hi = _with_or(p, orc), _with_or(p, orl), _with_or(p, orh)
        out.append({"arm": name, "ga_weeks": r["ga_weeks"], "map_mmhg": r["map_mmhg"], "uta_pi": r["uta_pi"],
                    "uterine_flow_ml_min": r["uterine_flow_ml_min"], "risk_pe_lt37_if_undelivered": p,
                    "risk_pe_lt37_lo": lo, "risk_pe_lt37_hi": hi})
    return out


def simulation_outputs(spec: dict) -> dict[str, bytes]:
    """``results/forecast.tsv`` and ``results/arms.tsv`` (deterministic; fresh solvers)."""
    forecast = _course(spec, Circulation())
    arms = []
    for arm in spec.get("arms") or DEFAULT_ARMS:
        arms += arm_rows(spec, arm, Circulation())
    return {"results/forecast.tsv": _tsv(forecast, FORECAST_COLUMNS), "results/arms.tsv": _tsv(arms, ARM_COLUMNS)}


def read_tsv(data: bytes) -> list[dict]:
    lines = data.decode().splitlines()
    cols = lines[0].split("\t")
    out = []
    for ln in lines[1:]:
        vals = ln.split("\t")
        out.append({c: (v if c == "arm" else (float(v) if v else None)) for c, v in zip(cols, vals)})
    return out
