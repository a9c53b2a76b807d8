"""0D closed-loop circulation: four time-varying-elastance chambers, valves, Windkessels.

State (volumes, ml): ``[V_la, V_lv, V_sa, V_sv, V_ra, V_rv, V_pa, V_pv]`` -- left atrium,
left ventricle, systemic arteries, systemic veins, right atrium, right ventricle, pulmonary
arteries, pulmonary veins.  Time in seconds, pressures in mmHg, flows in ml/s.

Chambers (linear end-systolic and end-diastolic pressure-volume relations)::

    P_ch(t) = E_ch(t) (V_ch - V0_ch),    E_ch(t) = Emin + (Emax - Emin) e_ch(t)

Ventricular activation ``e_v`` is the normalised double-Hill function (Stergiopulos et al.
1996; time constants of Mynard et al. 2012)::

    g1 = (t/tau1)^m1,  g2 = (t/tau2)^m2,  e_v = k g1/(1+g1) * 1/(1+g2)   (max e_v = 1)
    tau1 = 0.269 T0 s,  tau2 = 0.452 T0 s,  m1 = 1.32,  m2 = 27.4,  T0 = 0.8 s

where ``s = sqrt(T / T0)`` and ``T = 60 / HR``: systole shortens with the square root of the
cycle length (Bazett-like), so most of a heart-rate change goes into diastole.  Atrial
activation is a raised cosine of duration ``0.20 s * s`` starting ``0.16 s * s`` before
ventricular activation (PR interval), wrapping round the cycle.  ``t = 0`` is the onset of
ventricular activation (the R wave), i.e. end diastole.

Vessels are linear compliances with zero unstressed volume, so the total volume in the loop
is the *stressed* blood volume ``v_stressed_ml`` (the unstressed volume does not take part
in the haemodynamics).  Flows::

    Q_mv = max(P_la - P_lv, 0) / R_mv                        mitral valve (diode)
    Q_av = max(P_lv - P_sa, 0) / (R_av + Zc_sys)             aortic valve + characteristic
    P_ao = P_sa + Zc_sys Q_av                                impedance: 3-element Windkessel
    Q_sys = (P_sa - P_sv) / R_sys                            (Zc_sys, R_sys, C_sa)
    Q_ven = (P_sv - P_ra) / R_sv                             venous return
    Q_tv, Q_pv (pulmonary valve + Zc_pul), Q_pul, Q_pven      the same on the right side

and ``dV/dt`` = inflow - outflow for every compartment, so the total volume is conserved
exactly by any Runge-Kutta scheme (the invariant is linear).

Numerics: classical RK4 with a fixed step ``T / steps_per_cycle`` (default 200, 4.3 ms at
70/min); activations are tabulated once per heart rate on the half-step grid.  The periodic
steady state is found by Newton (chord) iteration on the one-cycle map ``x -> Phi(x)`` in
the 7 volume-conserving coordinates, with a finite-difference monodromy Jacobian that is
cached and reused for nearby parameters (warm start); convergence means the end-of-cycle
volumes differ from the start-of-cycle volumes by less than ``tol_ml`` in every compartment.
The fixed-step scheme is checked against ``scipy.integrate.solve_ivp`` (Radau, rtol 1e-8)
in the tests.

``SBP`` is the (parabola-refined) maximum of the aortic-root pressure ``P_ao``; ``DBP`` its
minimum, i.e. ``P_sa`` at the instant the aortic valve opens (interpolated between samples so
that it is smooth in the parameters).  No peripheral pulse amplification: a cuff pressure is
taken to equal the aortic-root pressure.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

import numpy as np

T0_S = 0.8  # reference cycle length of the activation time constants (75/min)

STATE_NAMES = ("la", "lv", "sa", "sv", "ra", "rv", "pa", "pv")
_SV = 3  # index of the systemic venous reservoir (eliminated coordinate for conservation)


@dataclass(frozen=True)
class CirculationParams:
    """Parameters of the closed loop.  Units are in the names (mmHg, ml, s, /min).

    Defaults: a resting healthy adult (see ``docs/cardiac-model.md`` for sources).  Chamber
    elastances follow Regazzoni et al. 2022 (Table 1) with the LV re-tuned to reference
    adult volumes; vascular values follow Regazzoni 2022, Ursino 1998 and Stergiopulos 1999.
    """
    hr_bpm: float = 70.0
    # left ventricle
    lv_emax_mmhg_ml: float = 2.8
    lv_emin_mmhg_ml: float = 0.065
    lv_v0_ml: float = 10.0
    # left atrium
    la_emax_mmhg_ml: float = 0.16
    la_emin_mmhg_ml: float = 0.09
    la_v0_ml: float = 4.0
    # right ventricle
    rv_emax_mmhg_ml: float = 0.60
    rv_emin_mmhg_ml: float = 0.05
    rv_v0_ml: float = 10.0
    # right atrium
    ra_emax_mmhg_ml: float = 0.13
    ra_emin_mmhg_ml: float = 0.07
    ra_v0_ml: float = 4.0
    # valves (open resistance; closed = no flow)
    r_mv_mmhg_s_ml: float = 0.005
    r_av_mmhg_s_ml: float = 0.005
    r_tv_mmhg_s_ml: float = 0.005
    r_pv_mmhg_s_ml: float = 0.005
    # systemic circulation (3-element Windkessel + venous compartment)
    zc_sys_mmhg_s_ml: float = 0.04
    r_sys_mmhg_s_ml: float = 1.0
    c_sa_ml_mmhg: float = 1.55
    c_sv_ml_mmhg: float = 60.0
    r_sv_mmhg_s_ml: float = 0.05
    # pulmonary circulation
    zc_pul_mmhg_s_ml: float = 0.01
    r_pul_mmhg_s_ml: float = 0.10
    c_pa_ml_mmhg: float = 4.0
    c_pv_ml_mmhg: float = 16.0
    r_pven_mmhg_s_ml: float = 0.01
    # stressed blood volume in the loop
    v_stressed_ml: float = 1180.0

    def with_(self, **kw: float) -> "CirculationParams":
        return replace(self, **kw)

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


DEFAULT_PARAMS = CirculationParams()


# ---------------------------------------------------------------------------- activation
def _double_hill(t, tau1: float, tau2: float, m1: float = 1.32, m2: float = 27.4):
    g1 = (t / tau1) ** m1
    g2 = (t / tau2) ** m2
    return g1 / (1 + g1) / (1 + g2)


@lru_cache(maxsize=256)
def _hill_norm(period_s: float) -> tuple[float, float, float]:
    s = math.sqrt(period_s / T0_S)
    tau1, tau2 = 0.269 * T0_S * s, 0.452 * T0_S * s
    tt = np.linspace(0.0, period_s, 20001)
    return tau1, tau2, 1.0 / float(_double_hill(tt, tau1, tau2).max())


def ventricular_activation(t_s: np.ndarray, period_s: float) -> np.ndarray:
    """Normalised double-Hill activation (0..1) at times ``t_s`` (taken modulo the period)."""
    tau1, tau2, k = _hill_norm(float(period_s))
    t = np.mod(np.asarray(t_s, float), period_s)
    return k * _double_hill(t, tau1, tau2)


def atrial_activation(t_s: np.ndarray, period_s: float) -> np.ndarray:
    """Raised-cosine atrial twitch starting 0.16 s*s before ventricular onset, lasting 0.2 s*s."""
    s = math.sqrt(period_s / T0_S)
    dur, lead = 0.20 * s, 0.16 * s
    u = np.mod(np.asarray(t_s, float) + lead, period_s)  # time since atrial onset
    return np.where(u < dur, 0.5 * (1 - np.cos(2 * np.pi * u / dur)), 0.0)


# ---------------------------------------------------------------------------- integration
@dataclass
class CycleResult:
    """One cardiac cycle at periodic steady state (arrays sampled every step, N+1 points)."""
    params: CirculationParams
    t_s: np.ndarray
    volumes_ml: np.ndarray        # (N+1, 8), columns STATE_NAMES
    pressures_mmhg: np.ndarray    # (N+1, 8) chamber / vessel pressures
    p_ao_mmhg: np.ndarray         # aortic root pressure
    q_av_ml_s: np.ndarray         # aortic valve flow
    cycles: int                   # cycles integrated to reach the steady state (incl. Jacobians)
    residual_ml: float            # max |V(T) - V(0)|
    metrics: dict = field(default_factory=dict)

    @property
    def lv_volume_ml(self) -> np.ndarray:
        return self.volumes_ml[:, 1]

    @property
    def lv_pressure_mmhg(self) -> np.ndarray:
        return self.pressures_mmhg[:, 1]


class Circulation:
    """Solver for the periodic steady state; keep one instance to reuse warm starts."""

    def __init__(self, steps_per_cycle: int = 200, tol_ml: float = 1e-6, max_cycles: int = 400):
        self.n = int(steps_per_cycle)
        self.tol = float(tol_ml)
        self.max_cycles = int(max_cycles)
        self._act_cache: dict[float, tuple[list, list, list, list]] = {}
        self._x: np.ndarray | None = None      # last steady state
        self._jac: np.ndarray | None = None    # last monodromy Jacobian (reduced coordinates)
        self.n_cycles_total = 0
        self.n_solves = 0

    # -- activation tables on the half-step grid
    def _tables(self, period: float):
        tab = self._act_cache.get(period)
        if tab is None:
            t = np.linspace(0.0, period, 2 * self.n + 1)
            ev = ventricular_activation(t, period)
            ea = atrial_activation(t, period)
            tab = (ev.tolist(), ea.tolist())
            if len(self._act_cache) > 32:
                self._act_cache.clear()
            self._act_cache[period] = tab
        return tab

    def _cycle(self, x, p: CirculationParams, record: bool = False):
        """Integrate one cycle from state ``x`` (RK4); return end state (and traces)."""
        T = 60.0 / p.hr_bpm
        n = self.n
        dt = T / n
        ev, ea = self._tables(T)
        lvA, lvB, lv0 = p.lv_emax_mmhg_ml - p.lv_emin_mmhg_ml, p.lv_emin_mmhg_ml, p.lv_v0_ml
        rvA, rvB, rv0 = p.rv_emax_mmhg_ml - p.rv_emin_mmhg_ml, p.rv_emin_mmhg_ml, p.rv_v0_ml
        laA, laB, la0 = p.la_emax_mmhg_ml - p.la_emin_mmhg_ml, p.la_emin_mmhg_ml, p.la_v0_ml
        raA, raB, ra0 = p.ra_emax_mmhg_ml - p.ra_emin_mmhg_ml, p.ra_emin_mmhg_ml, p.ra_v0_ml
        g_mv, g_tv = 1.0 / p.r_mv_mmhg_s_ml, 1.0 / p.r_tv_mmhg_s_ml
        g_av = 1.0 / (p.r_av_mmhg_s_ml + p.zc_sys_mmhg_s_ml)
        g_pv = 1.0 / (p.r_pv_mmhg_s_ml + p.zc_pul_mmhg_s_ml)
        g_sys, g_sv = 1.0 / p.r_sys_mmhg_s_ml, 1.0 / p.r_sv_mmhg_s_ml
        g_pul, g_pven = 1.0 / p.r_pul_mmhg_s_ml, 1.0 / p.r_pven_mmhg_s_ml
        e_sa, e_sv, e_pa, e_pv = 1.0 / p.c_sa_ml_mmhg, 1.0 / p.c_sv_ml_mmhg, 1.0 / p.c_pa_ml_mmhg, 1.0 / p.c_pv_ml_mmhg

        def f(vla, vlv, vsa, vsv, vra, vrv, vpa, vpv, a_v, a_a):
            pla = (laB + laA * a_a) * (vla - la0)
            plv = (lvB + lvA * a_v) * (vlv - lv0)
            pra = (raB + raA * a_a) * (vra - ra0)
            prv = (rvB + rvA * a_v) * (vrv - rv0)
            psa = e_sa * vsa
            psv = e_sv * vsv
            ppa = e_pa * vpa
            ppv = e_pv * vpv
            d = pla - plv
            qmv = d * g_mv if d > 0.0 else 0.0
            d = plv - psa
            qav = d * g_av if d > 0.0 else 0.0
            d = pra - prv
            qtv = d * g_tv if d > 0.0 else 0.0
            d = prv - ppa
            qpv = d * g_pv if d > 0.0 else 0.0
            qsys = (psa - psv) * g_sys
            qven = (psv - pra) * g_sv
            qpul = (ppa - ppv) * g_pul
            qpven = (ppv - pla) * g_pven
            return (qpven - qmv, qmv - qav, qav - qsys, qsys - qven,
                    qven - qtv, qtv - qpv, qpv - qpul, qpul - qpven)

        v0, v1, v2, v3, v4, v5, v6, v7 = (float(a) for a in x)
        traj = [(v0, v1, v2, v3, v4, v5, v6, v7)] if record else None
        h2 = 0.5 * dt
        h6 = dt / 6.0
        for i in range(n):
            j = 2 * i
            evm, eam = ev[j + 1], ea[j + 1]
            a0, a1, a2, a3, a4, a5, a6, a7 = f(v0, v1, v2, v3, v4, v5, v6, v7, ev[j], ea[j])
            b0, b1, b2, b3, b4, b5, b6, b7 = f(v0 + h2 * a0, v1 + h2 * a1, v2 + h2 * a2, v3 + h2 * a3,
                                               v4 + h2 * a4, v5 + h2 * a5, v6 + h2 * a6, v7 + h2 * a7,
                                               evm, eam)
            c0, c1, c2, c3, c4, c5, c6, c7 = f(v0 + h2 * b0, v1 + h2 * b1, v2 + h2 * b2, v3 + h2 * b3,
                                               v4 + h2 * b4, v5 + h2 * b5, v6 + h2 * b6, v7 + h2 * b7,
                                               evm, eam)
            d0, d1, d2, d3, d4, d5, d6, d7 = f(v0 + dt * c0, v1 + dt * c1, v2 + dt * c2, v3 + dt * c3,
                                               v4 + dt * c4, v5 + dt * c5, v6 + dt * c6, v7 + dt * c7,
                                               ev[j + 2], ea[j + 2])
            v0 += h6 * (a0 + 2.0 * (b0 + c0) + d0)
            v1 += h6 * (a1 + 2.0 * (b1 + c1) + d1)
            v2 += h6 * (a2 + 2.0 * (b2 + c2) + d2)
            v3 += h6 * (a3 + 2.0 * (b3 + c3) + d3)
            v4 += h6 * (a4 + 2.0 * (b4 + c4) + d4)
            v5 += h6 * (a5 + 2.0 * (b5 + c5) + d5)
            v6 += h6 * (a6 + 2.0 * (b6 + c6) + d6)
            v7 += h6 * (a7 + 2.0 * (b7 + c7) + d7)
            if record:
                traj.append((v0, v1, v2, v3, v4, v5, v6, v7))
        v = (v0, v1, v2, v3, v4, v5, v6, v7)
        self.n_cycles_total += 1
        if record:
            return np.asarray(v), np.asarray(traj)
        return np.asarray(v)

    def initial_state(self, p: CirculationParams) -> np.ndarray:
        """A rough start: the stressed volume shared out in proportion to typical volumes."""
        frac = np.array([70.0, 120.0, 130.0, 600.0, 60.0, 130.0, 60.0, 200.0])
        base = np.array([p.la_v0_ml, p.lv_v0_ml, 0, 0, p.ra_v0_ml, p.rv_v0_ml, 0, 0])
        return base + p.v_stressed_ml * frac / frac.sum()

    @staticmethod
    def stressed_volume(x: np.ndarray, p: CirculationParams) -> float:
        return float(np.sum(x) - p.la_v0_ml - p.lv_v0_ml - p.ra_v0_ml - p.rv_v0_ml)

    def _basis(self) -> np.ndarray:
        idx = [i for i in range(8) if i != _SV]
        b = np.zeros((8, 7))
        for j, i in enumerate(idx):
            b[i, j] = 1.0
            b[_SV, j] = -1.0
        return b

    def steady_state(self, p: CirculationParams, x0: np.ndarray | None = None) -> CycleResult:
        """Periodic steady state of ``p`` (warm-started from the previous solve)."""
        self.n_solves += 1
        c0 = self.n_cycles_total
        warm = x0 is not None or self._x is not None
        if x0 is None:
            x0 = self._x if self._x is not None else self.initial_state(p)
        x = np.array(x0, float)
        x[_SV] += p.v_stressed_ml - self.stressed_volume(x, p)  # match this p's volume
        if np.any(x - np.array([p.la_v0_ml, p.lv_v0_ml, 0, 0, p.ra_v0_ml, p.rv_v0_ml, 0, 0]) < -1e-9):
            x = self.initial_state(p)
        idx = [i for i in range(8) if i != _SV]
        B = self._basis()
        # from a cold start a couple of plain cycles settle the valve timing first
        for _ in range(0 if warm else 2):
            x = self._cycle(x, p)
        xe, traj = self._cycle(x, p, record=True)
        r = xe - x
        rn = float(np.max(np.abs(r)))
        jac = self._jac
        fresh = False
        it = 0
        while rn > self.tol:
            it += 1
            if self.n_cycles_total - c0 > self.max_cycles:
                raise RuntimeError(f"circulation: no periodic steady state after {self.max_cycles} cycles "
                                   f"(residual {rn:.3g} ml)")
            if jac is None:
                h = 1e-3
                jac = np.empty((7, 7))
                for j in range(7):
                    xp = x + h * B[:, j]
                    jac[:, j] = ((self._cycle(xp, p) - xp) - r)[idx] / h
                fresh = True
            try:
                y = np.linalg.solve(jac, -r[idx])
            except np.linalg.LinAlgError:
                jac, fresh = None, False
                continue
            # keep volumes above their unstressed values: damp the step if needed
            step = B @ y
            lam = 1.0
            floor = np.array([p.la_v0_ml, p.lv_v0_ml, 0, 0, p.ra_v0_ml, p.rv_v0_ml, 0, 0]) + 1e-3
            while np.any(x + lam * step < floor) and lam > 1e-3:
                lam *= 0.5
            xn = x + lam * step
            xe, trajn = self._cycle(xn, p, record=True)
            rnew = xe - xn
            rnn = float(np.max(np.abs(rnew)))
            if rnn > 0.5 * rn and not fresh:
                jac = None  # stale Jacobian: rebuild at the current point
                if rnn < rn:
                    x, r, rn, traj = xn, rnew, rnn, trajn
                continue
            if rnn > rn and fresh:
                # Newton failed even with a fresh Jacobian: take plain cycles instead
                for _ in range(5):
                    x = self._cycle(x, p)
                xe, traj = self._cycle(x, p, record=True)
                r = xe - x
                rn = float(np.max(np.abs(r)))
                jac, fresh = None, False
                continue
            x, r, rn, traj = xn, rnew, rnn, trajn
            fresh = False
        self._x, self._jac = x.copy(), jac
        res = CycleResult(params=p, t_s=np.linspace(0, 60.0 / p.hr_bpm, self.n + 1), volumes_ml=traj,
                          pressures_mmhg=None, p_ao_mmhg=None, q_av_ml_s=None,
                          cycles=self.n_cycles_total - c0, residual_ml=rn)
        _fill(res)
        return res


def pressures(p: CirculationParams, t_s: np.ndarray, vol: np.ndarray) -> np.ndarray:
    """Pressures (mmHg) of all compartments for volume traces ``vol`` (M, 8) at ``t_s``."""
    T = 60.0 / p.hr_bpm
    ev, ea = ventricular_activation(t_s, T), atrial_activation(t_s, T)
    out = np.empty_like(vol)
    out[:, 0] = (p.la_emin_mmhg_ml + (p.la_emax_mmhg_ml - p.la_emin_mmhg_ml) * ea) * (vol[:, 0] - p.la_v0_ml)
    out[:, 1] = (p.lv_emin_mmhg_ml + (p.lv_emax_mmhg_ml - p.lv_emin_mmhg_ml) * ev) * (vol[:, 1] - p.lv_v0_ml)
    out[:, 2] = vol[:, 2] / p.c_sa_ml_mmhg
    out[:, 3] = vol[:, 3] / p.c_sv_ml_mmhg
    out[:, 4] = (p.ra_emin_mmhg_ml + (p.ra_emax_mmhg_ml - p.ra_emin_mmhg_ml) * ea) * (vol[:, 4] - p.ra_v0_ml)
    out[:, 5] = (p.rv_emin_mmhg_ml + (p.rv_emax_mmhg_ml - p.rv_emin_mmhg_ml) * ev) * (vol[:, 5] - p.rv_v0_ml)
    out[:, 6] = vol[:, 6] / p.c_pa_ml_mmhg
    out[:, 7] = vol[:, 7] / p.c_pv_ml_mmhg
    return out


def _peak(y: np.ndarray, fn) -> float:
    """Extremum of a sampled curve refined by a parabola through the extreme sample."""
    i = int(fn(y))
    if 0 < i < len(y) - 1:
        a, b, c = y[i - 1], y[i], y[i + 1]
        den = a - 2 * b + c
        if den != 0:
            off = 0.5 * (a - c) / den
            if abs(off) <= 1:
                return float(b - 0.25 * (a - c) * off)
    return float(y[i])


def _valve_opening_pressure(res: CycleResult) -> float:
    """Diastolic pressure: arterial pressure at the instant the aortic valve opens.

    The aortic pressure falls until the valve opens and rises after it, so its minimum is
    ``P_sa`` at the opening instant; the crossing of ``P_lv - P_sa`` through zero is located
    by linear interpolation between samples (smooth in the parameters, unlike a sampled min).
    """
    d = res.pressures_mmhg[:, 1] - res.pressures_mmhg[:, 2]
    psa = res.pressures_mmhg[:, 2]
    up = np.nonzero((d[:-1] <= 0) & (d[1:] > 0))[0]
    if up.size == 0:
        return float(np.min(res.p_ao_mmhg))
    i = int(up[np.argmin(psa[up])])
    w = -d[i] / (d[i + 1] - d[i])
    return float(psa[i] + w * (psa[i + 1] - psa[i]))


def _fill(res: CycleResult) -> None:
    p = res.params
    pr = pressures(p, res.t_s, res.volumes_ml)
    q_av = np.maximum(pr[:, 1] - pr[:, 2], 0.0) / (p.r_av_mmhg_s_ml + p.zc_sys_mmhg_s_ml)
    p_ao = pr[:, 2] + p.zc_sys_mmhg_s_ml * q_av
    res.pressures_mmhg, res.q_av_ml_s, res.p_ao_mmhg = pr, q_av, p_ao
    res.metrics = summarize(res)


def summarize(res: CycleResult) -> dict[str, float]:
    """Clinical summary of one steady-state cycle (units in the keys)."""
    p = res.params
    v = res.volumes_ml
    t = res.t_s
    T = t[-1]
    # LV volume is constant during the isovolumic phases that follow end diastole and end
    # systole, so the sampled extremes are exact plateaus (no sub-grid refinement needed)
    edv = float(v[:, 1].max())
    esv = float(v[:, 1].min())
    sv = edv - esv
    # trapezoid over one period (first and last samples are the same phase)
    mean = lambda y: float(np.trapezoid(y, t) / T)
    sbp = _peak(res.p_ao_mmhg, np.argmax)
    dbp = _valve_opening_pressure(res)
    rv_edv, rv_esv = float(v[:, 5].max()), float(v[:, 5].min())
    i_ed = int(np.argmax(v[:, 1]))
    return {
        "hr_bpm": p.hr_bpm,
        "edv_ml": edv, "esv_ml": esv, "sv_ml": sv, "ef_pct": 100.0 * sv / edv,
        "co_l_min": sv * p.hr_bpm / 1000.0,
        "co_from_flow_l_min": mean(res.q_av_ml_s) * 60.0 / 1000.0,
        "sbp_mmhg": sbp, "dbp_mmhg": dbp, "map_mmhg": mean(res.p_ao_mmhg),
        "pulse_pressure_mmhg": sbp - dbp,
        "lvedp_mmhg": float(res.pressures_mmhg[i_ed, 1]),
        "lv_peak_pressure_mmhg": float(res.pressures_mmhg[:, 1].max()),
        "la_mean_mmhg": mean(res.pressures_mmhg[:, 0]),
        "ra_mean_mmhg": mean(res.pressures_mmhg[:, 4]),
        "pa_mean_mmhg": mean(res.pressures_mmhg[:, 6]),
        "rv_edv_ml": rv_edv, "rv_esv_ml": rv_esv, "rv_ef_pct": 100.0 * (rv_edv - rv_esv) / rv_edv,
        "stroke_work_mmhg_ml": float(-np.trapezoid(res.pressures_mmhg[:, 1], v[:, 1])),
        "total_volume_ml": float(v[0].sum()),
        "steady_state_residual_ml": res.residual_ml,
        "cycles_to_steady_state": res.cycles,
    }


def simulate(p: CirculationParams = DEFAULT_PARAMS, solver: Circulation | None = None) -> CycleResult:
    """Periodic steady state of ``p`` (a fresh solver unless one is given)."""
    return (solver or Circulation()).steady_state(p)


def pv_loop(res: CycleResult, n_points: int = 100) -> dict[str, list[float]]:
    """LV pressure-volume loop resampled to ``n_points`` equally spaced times (for plots/JSON)."""
    tt = np.linspace(0.0, res.t_s[-1], n_points + 1)[:-1]
    return {"t_s": tt.tolist(),
            "lv_volume_ml": np.interp(tt, res.t_s, res.lv_volume_ml).tolist(),
            "lv_pressure_mmhg": np.interp(tt, res.t_s, res.lv_pressure_mmhg).tolist(),
            "aortic_pressure_mmhg": np.interp(tt, res.t_s, res.p_ao_mmhg).tolist()}
