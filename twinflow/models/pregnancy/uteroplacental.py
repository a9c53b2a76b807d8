"""Uteroplacental circulation: maternal pressure -> uterine artery (transmission line) -> placental bed.

**Maternal pressure.**  The closed-loop 0D circulation of the cardiac twin
(:mod:`twinflow.models.cardiac.circulation`, imported, not copied) adapted to gestation
(:func:`pregnancy_params`; Sanghavi and Rutherford, Circulation 2014;130:1003): heart rate
+15/min by term, stressed blood volume +25 % by 32 weeks (the rest of the 40-50 % rise in blood
volume fills the enlarged venous capacitance, i.e. unstressed volume), systemic resistance down by up to
40 % (nadir at 22 weeks, partial recovery to term), arterial compliance +30 % by 20 weeks.  A
patient factor on systemic resistance is calibrated to the measured MAP; the heart rate is the
one measured on the Doppler trace.  The aortic-root pressure over one cycle drives the uterine
artery (no transfer function between aorta and the uterine artery origin: an assumption).

**Uterine artery.**  A uniform lossy transmission line (telegrapher's equations) of effective length
``length_cm`` (66 cm: the tortuous uterine artery and its arcuate/radial branches; with the
wave speed of 10 m/s the round trip of a reflection takes 0.13 s) and radius ``radius_cm`` with wave speed ``wave_speed_cm_s``: per unit length
resistance ``R' = 8 mu / (pi r^4)`` (Poiseuille), inertance ``L' = rho / (pi r^2)``, compliance
``C' = pi r^2 / (rho c^2)``; ``Zc = sqrt((R' + j w L') / (j w C'))``,
``gamma = sqrt((R' + j w L') j w C')``.  It is terminated by the **placental bed**, a three-element
Windkessel: the artery's own characteristic impedance ``Z0 = rho c / A`` (so that the
termination is matched at high frequency and reflects only what the bed's resistance makes it
reflect) in series with a resistance ``R_p`` (spiral arteries and intervillous space, draining
to ``p_out``) in parallel with a compliance ``C_d`` (arcuate/radial arteries):
``Z_L = Z0 + R_p / (1 + j w R_p C_d)``.  Input
impedance ``Z_in = Zc (Z_L + Zc tanh(gamma l)) / (Zc + Z_L tanh(gamma l))``.  The periodic
inlet flow is ``Q = (P_mean - p_out) / (R' l + Z0 + R_p) + sum_k Re(P_k / Z_in(k w0) e^{j k w0 t})``
(40 harmonics with Lanczos sigma factors against Gibbs ringing): the periodic steady state
without time stepping.  A high ``R_p`` relative to
``Zc`` reflects the pressure wave back up the artery; the reflected wave, delayed by
``2 l / c``, cuts early-diastolic flow: the early-diastolic notch and a high PI of an
unremodelled bed.  The Doppler maximum-velocity envelope is ``profile_factor * Q / (pi r^2)``
(blunt profile, assumed 1.5).

**Remodelling.**  In a normal pregnancy trophoblast invasion turns the spiral arteries into
wide, compliant conduits: ``R_p`` falls and ``C_d`` rises.  The normal trajectory is
``ln R_p(GA) = a0 + a1 d + ... + a4 d^4`` (``d`` = GA in days - 77) with the distal time constant
``R_p C_d`` fixed; ``a0..a4`` are fitted once so that the model's PI follows the median of the
published reference range (Gomez et al., Ultrasound Obstet Gynecol 2008;32:128:
``ln PI = 1.39 - 0.012 GA + 0.0000198 GA^2``, GA in days), see :func:`fit_normal_remodelling`.
The **remodelling fraction** reported is ``m = (ln R_p(11 w) - ln R_p) / (ln R_p(11 w) -
ln R_p(41 w))`` (0 unremodelled, 1 fully remodelled at term).  A pregnancy's remodelling is
the normal one delayed by ``delay_weeks`` and offset by ``log_offset`` (on ln R_p).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np

from twinflow.models.cardiac.circulation import DEFAULT_PARAMS, Circulation, CirculationParams

MMHG = 1333.22                 # dyn/cm^2 per mmHg
RHO = 1.06                     # g/cm^3
MU = 0.035                     # dyn s/cm^2 (poise)
N_HARMONICS = 40

# ----------------------------------------------------------------------------- maternal adaptation
HR_RISE_BPM = 15.0
VOLUME_RISE = 0.25
SVR_FALL = 0.40
SVR_NADIR_WEEKS = 22.0
COMPLIANCE_RISE = 0.30


def population_hr(ga_weeks: float, base: CirculationParams = DEFAULT_PARAMS) -> float:
    """Maternal heart rate of the population model at ``ga_weeks`` (/min)."""
    return base.hr_bpm + HR_RISE_BPM * min(max((float(ga_weeks) - 4.0) / 36.0, 0.0), 1.0)


def pregnancy_params(ga_weeks: float, *, hr_bpm: float | None = None, r_sys_factor: float = 1.0,
                     base: CirculationParams = DEFAULT_PARAMS) -> CirculationParams:
    """The maternal circulation at ``ga_weeks`` (see the module docstring)."""
    g = max(float(ga_weeks), 0.0)
    hr = population_hr(g, base) if hr_bpm is None else float(hr_bpm)
    vol = 1.0 + VOLUME_RISE * min(max((g - 6.0) / 26.0, 0.0), 1.0)
    u = (g / SVR_NADIR_WEEKS) * math.exp(1.0 - g / SVR_NADIR_WEEKS)       # 0 -> 1 at the nadir -> 0.8 at 40 w
    comp = 1.0 + COMPLIANCE_RISE * min(g / 20.0, 1.0)
    return base.with_(hr_bpm=hr, v_stressed_ml=base.v_stressed_ml * vol,
                      r_sys_mmhg_s_ml=base.r_sys_mmhg_s_ml * (1.0 - SVR_FALL * u) * float(r_sys_factor),
                      c_sa_ml_mmhg=base.c_sa_ml_mmhg * comp)


@dataclass
class MaternalCycle:
    t_s: np.ndarray            # uniform grid over one cycle, without the end point
    p_ao_mmhg: np.ndarray
    metrics: dict

    @property
    def period_s(self) -> float:
        return float(self.t_s[1] - self.t_s[0]) * self.t_s.size


def maternal_cycle(ga_weeks: float, *, hr_bpm: float | None = None, r_sys_factor: float = 1.0,
                   solver: Circulation | None = None) -> MaternalCycle:
    res = (solver or _solver()).steady_state(pregnancy_params(ga_weeks, hr_bpm=hr_bpm, r_sys_factor=r_sys_factor))
    return MaternalCycle(t_s=res.t_s[:-1].copy(), p_ao_mmhg=res.p_ao_mmhg[:-1].copy(), metrics=dict(res.metrics))


@lru_cache(maxsize=1)
def _shared_solver() -> Circulation:
    return Circulation()


def _solver() -> Circulation:
    return _shared_solver()


def calibrate_map(ga_weeks: float, map_mmhg: float, *, hr_bpm: float | None = None,
                  solver: Circulation | None = None) -> tuple[float, MaternalCycle]:
    """Systemic-resistance factor that gives the measured MAP at ``ga_weeks`` (secant on log)."""
    from scipy.optimize import brentq

    solver = solver or _solver()

    def f(z):
        return maternal_cycle(ga_weeks, hr_bpm=hr_bpm, r_sys_factor=math.exp(z), solver=solver).metrics["map_mmhg"] \
            - map_mmhg

    lo, hi = -1.5, 1.5
    if f(lo) > 0 or f(hi) < 0:
        raise ValueError(f"MAP {map_mmhg:g} mmHg is outside what the maternal circulation can reach at "
                         f"{ga_weeks:g} weeks")
    z = brentq(f, lo, hi, xtol=1e-10)
    return math.exp(z), maternal_cycle(ga_weeks, hr_bpm=hr_bpm, r_sys_factor=math.exp(z), solver=solver)


# ----------------------------------------------------------------------------- uterine artery
@dataclass(frozen=True)
class UterineParams:
    r_p_mmhg_s_ml: float            # placental bed resistance (one side)
    c_d_ml_mmhg: float              # distal (arcuate/radial) compliance
    wave_speed_cm_s: float = 1000.0
    radius_cm: float = 0.11
    length_cm: float = 66.0
    p_out_mmhg: float = 10.0
    profile_factor: float = 1.5

    def with_(self, **kw) -> "UterineParams":
        return replace(self, **kw)

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def characteristic_impedance(p: UterineParams) -> float:
    """Lossless characteristic impedance rho c / A of the artery (mmHg s/ml)."""
    return RHO * p.wave_speed_cm_s / (math.pi * p.radius_cm ** 2) / MMHG


def input_impedance(omega: np.ndarray, p: UterineParams) -> np.ndarray:
    """Z_in(omega) in mmHg s/ml for omega > 0 (rad/s)."""
    w = np.asarray(omega, float)
    area = math.pi * p.radius_cm ** 2
    r1 = 8.0 * MU / (math.pi * p.radius_cm ** 4) / MMHG          # mmHg s/ml per cm
    l1 = RHO / area / MMHG                                       # mmHg s^2/ml per cm
    c1 = area / (RHO * p.wave_speed_cm_s ** 2) * MMHG            # ml/mmHg per cm
    series = r1 + 1j * w * l1
    shunt = 1j * w * c1
    zc = np.sqrt(series / shunt)
    gl = np.sqrt(series * shunt) * p.length_cm
    zl = characteristic_impedance(p) + p.r_p_mmhg_s_ml / (1.0 + 1j * w * p.r_p_mmhg_s_ml * p.c_d_ml_mmhg)
    th = np.tanh(gl)
    return zc * (zl + zc * th) / (zc + zl * th)


def inlet_flow(pressure_mmhg: np.ndarray, period_s: float, p: UterineParams,
               n_harmonics: int = N_HARMONICS) -> np.ndarray:
    """Periodic inlet flow (ml/s) on the same uniform grid as ``pressure_mmhg`` (one cycle)."""
    x = np.asarray(pressure_mmhg, float)
    n = x.size
    pk = np.fft.rfft(x) / n
    k = np.arange(pk.size)
    qk = np.zeros_like(pk)
    r1 = 8.0 * MU / (math.pi * p.radius_cm ** 4) / MMHG
    qk[0] = (pk[0].real - p.p_out_mmhg) / (r1 * p.length_cm + characteristic_impedance(p) + p.r_p_mmhg_s_ml)
    kk = k[1:min(pk.size, n_harmonics + 1)]
    sigma = np.sinc(kk / (n_harmonics + 1.0))          # Lanczos factors: no Gibbs ringing
    qk[kk] = sigma * pk[kk] / input_impedance(2.0 * math.pi * kk / period_s, p)
    return np.fft.irfft(qk * n, n)


def velocity_envelope(pressure_mmhg: np.ndarray, period_s: float, p: UterineParams) -> np.ndarray:
    """Doppler maximum-velocity envelope (cm/s) at the inlet."""
    return p.profile_factor * inlet_flow(pressure_mmhg, period_s, p) / (math.pi * p.radius_cm ** 2)


def pulsatility_index(v: np.ndarray) -> float:
    """PI of one periodic cycle: (PSV - EDV) / mean, EDV being the velocity at the foot."""
    v = np.asarray(v, float)
    return float((v.max() - v[foot_index(v)]) / v.mean())


FOOT_WINDOW = 0.35          # the foot is sought in this fraction of the cycle before the peak


def foot_index(v: np.ndarray) -> int:
    """Index of the foot of a periodic cycle: the minimum within ``FOOT_WINDOW`` of a cycle
    before the systolic peak (end-diastole, just before the upstroke)."""
    v = np.asarray(v, float)
    n = v.size
    ip = int(np.argmax(v))
    w = max(2, int(FOOT_WINDOW * n))
    idx = (ip - w + np.arange(w)) % n
    return int(idx[np.argmin(v[idx])])


def align_to_foot(v: np.ndarray) -> np.ndarray:
    """Rotate a periodic cycle so that it starts at its foot."""
    return np.roll(np.asarray(v, float), -foot_index(v))


# ----------------------------------------------------------------------------- normal remodelling
#: ln R_p = a0 + a1 d + ... + a4 d^4, d = GA days - 77 (fitted by fit_normal_remodelling, see tests)
NORMAL_LN_RP = (3.5359701, -0.020855788, -1.8795012e-04, 6.0763673e-07, 1.7577910e-09)
DISTAL_TIME_CONSTANT_S = 0.09           # R_p C_d (s), fixed
NORMAL_WAVE_SPEED_CM_S = 1000.0
NORMAL_LENGTH_CM = 66.0
RADIUS_AT_11W_CM, RADIUS_SLOPE_CM_PER_WEEK = 0.11, 0.0031


def gomez_median_pi(ga_weeks: np.ndarray | float) -> np.ndarray:
    """Median mean UtA-PI (Gomez et al. 2008): ln PI = 1.39 - 0.012 GA + 0.0000198 GA^2 (days)."""
    d = np.asarray(ga_weeks, float) * 7.0
    return np.exp(1.39 - 0.012 * d + 0.0000198 * d * d)


#: 95th / 50th centile ratios published by Gomez 2008 at 11, 34 and 41 weeks (2.70/1.79,
#: 0.99/0.70, 0.89/0.65): SD of ln PI = ln(ratio) / 1.645, interpolated linearly in GA
GOMEZ_P95 = {11.0: (1.79, 2.70), 34.0: (0.70, 0.99), 41.0: (0.65, 0.89)}


def gomez_log_sd(ga_weeks: np.ndarray | float) -> np.ndarray:
    ga = np.asarray(ga_weeks, float)
    xs = sorted(GOMEZ_P95)
    sds = [math.log(GOMEZ_P95[x][1] / GOMEZ_P95[x][0]) / 1.6448536 for x in xs]
    return np.interp(ga, xs, sds)


def radius_cm(ga_weeks: float) -> float:
    """Assumed uterine artery radius growing through gestation (0.11 cm at 11 w, 0.20 cm at 40 w)."""
    return RADIUS_AT_11W_CM + RADIUS_SLOPE_CM_PER_WEEK * (float(ga_weeks) - 11.0)


def normal_ln_rp(ga_weeks: float, coeffs=NORMAL_LN_RP) -> float:
    d = float(ga_weeks) * 7.0 - 77.0
    y = 0.0
    for c in reversed(coeffs):                 # Horner
        y = y * d + c
    return y


def uterine_params(ga_weeks: float, *, delay_weeks: float = 0.0, log_offset: float = 0.0,
                   coeffs=NORMAL_LN_RP) -> UterineParams:
    """Uterine parameters at ``ga_weeks`` for a remodelling delayed by ``delay_weeks`` and offset
    by ``log_offset`` on ln R_p (0, 0 = the normal trajectory)."""
    # the fitted trajectory (11-41 weeks) is extrapolated down to 4 weeks for delayed remodelling
    ga_eff = min(max(float(ga_weeks) - float(delay_weeks), 4.0), 41.0)
    rp = math.exp(normal_ln_rp(ga_eff, coeffs) + float(log_offset))
    return UterineParams(r_p_mmhg_s_ml=rp, c_d_ml_mmhg=DISTAL_TIME_CONSTANT_S / rp,
                         wave_speed_cm_s=NORMAL_WAVE_SPEED_CM_S, radius_cm=radius_cm(ga_weeks),
                         length_cm=NORMAL_LENGTH_CM)


def remodelling_fraction(r_p: float, coeffs=NORMAL_LN_RP) -> float:
    a, b = normal_ln_rp(11.0, coeffs), normal_ln_rp(41.0, coeffs)
    return float((a - math.log(r_p)) / (a - b))


def model_pi(ga_weeks: float, p: UterineParams, *, map_mmhg: float | None = None) -> float:
    """PI of the model at ``ga_weeks`` (maternal circulation of that gestation, population MAP
    unless ``map_mmhg`` is given)."""
    mc = maternal_cycle(ga_weeks) if map_mmhg is None else calibrate_map(ga_weeks, map_mmhg)[1]
    return pulsatility_index(velocity_envelope(mc.p_ao_mmhg, mc.period_s, p))


def fit_normal_remodelling(weeks=tuple(range(11, 42))) -> tuple[tuple[float, ...], float]:
    """Fit ``a0..a4`` so that the model PI follows the Gomez median; return them and the largest
    relative deviation.  (Run once; the result is stored in :data:`NORMAL_LN_RP`.)"""
    from scipy.optimize import brentq

    cycles = {w: maternal_cycle(w) for w in weeks}
    target = {w: float(gomez_median_pi(w)) for w in weeks}

    def ln_rp_for(w):          # the R_p that reproduces the median PI at week w
        def f(z):
            p = UterineParams(r_p_mmhg_s_ml=math.exp(z), c_d_ml_mmhg=DISTAL_TIME_CONSTANT_S / math.exp(z),
                              wave_speed_cm_s=NORMAL_WAVE_SPEED_CM_S, radius_cm=radius_cm(w),
                              length_cm=NORMAL_LENGTH_CM)
            return pulsatility_index(velocity_envelope(cycles[w].p_ao_mmhg, cycles[w].period_s, p)) - target[w]
        return brentq(f, -2.0, 9.0, xtol=1e-10)

    d = np.array([w * 7.0 - 77.0 for w in weeks])
    y = np.array([ln_rp_for(w) for w in weeks])
    design = np.vander(d / 100.0, 5, increasing=True)          # quartic in d / 100 (well conditioned)
    c, *_ = np.linalg.lstsq(design, y, rcond=None)
    fit_x = c / 100.0 ** np.arange(5)
    coeffs = tuple(float(v) for v in fit_x)
    dev = max(abs(model_pi(w, uterine_params(w, coeffs=coeffs)) / target[w] - 1.0) for w in weeks)
    return coeffs, float(dev)
