"""3D reaction-diffusion model of tumour cell density with radiotherapy and drug kill.

State: ``u(x, t) = N(x, t) / theta``, the tumour cell density as a fraction of the voxel
carrying capacity ``theta``.  Equation (time in days, lengths in mm)::

    du/dt = div( D(x) grad u ) + k u (1 - u)                    (growth and invasion)
    u(t_f+) = u(t_f-) * exp(-alpha d_f - beta d_f^2)             (radiotherapy fraction, LQ)
    du/dt = -kappa * C(t) * u                                    (drug, log-kill)

* ``D(x)`` is tissue dependent: ``D_w`` in white matter, ``D_g = D_w * gm_ratio`` in grey
  matter (tissue maps are probabilities: ``D = D_w (p_wm + gm_ratio p_gm)``), zero outside
  the tissue mask.  Face diffusivities are harmonic means of the two voxels, so a face with a
  non-tissue voxel carries no flux: the no-flux boundary condition at the tissue boundary.
* Radiotherapy follows the linear-quadratic model with ``beta = alpha / ab_ratio``
  (``ab_ratio`` = 10 Gy for tumour by default); a fraction of ``d`` Gy multiplies ``u`` by the
  surviving fraction inside the radiation field (``rt_mask``, default: the tissue mask).
* The drug term is a log-kill driven by the tissue concentration ``C(t)`` (mg/L) from a body
  PK model: over a step, ``u *= exp(-kappa * AUC_step)`` with the exact AUC of the PK model
  (operator splitting), so an hours-scale PK needs no hours-scale grid.

Numerics: explicit Euler, 7-point finite-volume stencil, whole-array numpy updates into
preallocated buffers.  Sub-steps are inserted automatically when ``dt`` exceeds the explicit
stability limit ``1 / (2 max(D) sum(1/h^2))``.  Logistic growth is integrated exactly over
a step given the post-diffusion state (``u e^{k dt} / (1 + u (e^{k dt} - 1))``), which is
unconditionally positive and bounded by 1.

Speed.  The solver works on the bounding box of the tissue mask only (outside tissue ``u``
is 0 and no face carries flux, so this is exact), on *flattened* C-ordered arrays: a
neighbour along axis ``a`` is a fixed offset ``s_a`` in the flat array, so every stencil
operation is a contiguous 1D slice (about 6x faster than strided 3D slices).  Faces that
wrap around a row in the flat layout get a zero coefficient.  One step is 12 whole-array
passes for diffusion (two ping-pong buffers, no temporaries) and 3 for logistic growth and
drug kill together; a radiotherapy fraction is one more pass.

Sensitivities.  :meth:`ReactionDiffusion.simulate_sensitivities` integrates the tangent
linear model of exactly this discrete scheme alongside the state: the derivatives of ``u``
with respect to ``log D_w``, ``log k``, ``log alpha`` and ``log kappa``.  Because the
stencil is linear in ``D_w``, ``d(L u)/d log D_w = L u``; the logistic step, the LQ factor
and the drug factor are differentiated in closed form.  These are exact derivatives of the
computed trajectory (up to float32 rounding), which is what Gauss-Newton needs.  The state
and the tangents are advanced together, chunk by chunk.

Threads.  Every sub-step is split into contiguous flat ranges (whole x-planes), one per
thread (``threads``, default :func:`default_threads`: min(2, CPUs, ``OMP_NUM_THREADS``));
numpy releases the GIL, so the ranges run in parallel.  A range reads its neighbours one
plane beyond its ends and writes only itself, and every voxel sees the same operations in
the same order, so the results are bit-identical for any number of threads (tested).  The
pointwise growth, drug and tangent updates run in the same per-range task; the only
synchronisation is one barrier per sub-step.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

#: names of the parameters that :meth:`ReactionDiffusion.simulate_sensitivities` differentiates
SENSITIVITY_PARAMS = ("d_w", "k", "alpha", "kappa")


@dataclass(frozen=True)
class GrowthParams:
    d_w_mm2_day: float        # diffusivity in white matter
    k_per_day: float          # proliferation rate
    alpha_per_gy: float = 0.0  # LQ radiosensitivity
    kappa_l_per_mg_h: float = 0.0  # drug log-kill per unit exposure (1 / (mg*h/L))
    gm_ratio: float = 0.1     # D_grey / D_white
    ab_ratio_gy: float = 10.0  # alpha / beta


@dataclass
class Schedule:
    """Treatment events on the model clock (days from the simulation start)."""
    rt_days: np.ndarray = field(default_factory=lambda: np.zeros(0))        # fraction times
    rt_dose_gy: np.ndarray = field(default_factory=lambda: np.zeros(0))     # dose per fraction
    drug_exposure: "callable | None" = None   # (t0_day, t1_day) -> AUC mg*h/L over the window

    def shifted(self, t0_day: float) -> "Schedule":
        """The same schedule on a clock that starts at ``t0_day`` (events before it dropped)."""
        keep = np.asarray(self.rt_days, float) >= t0_day - 1e-9
        f = self.drug_exposure
        return Schedule(rt_days=np.asarray(self.rt_days, float)[keep] - t0_day,
                        rt_dose_gy=np.asarray(self.rt_dose_gy, float)[keep],
                        drug_exposure=None if f is None else (lambda a, b: f(a + t0_day, b + t0_day)))


def default_threads() -> int:
    """Solver threads: at most 2 (the stencil is memory-bound beyond that), at most the CPUs,
    and at most ``OMP_NUM_THREADS`` when set -- Snakemake sets it to the job's ``threads``, so
    a job never uses more cores than the scheduler (or SLURM) gave it."""
    import os
    n = min(2, os.cpu_count() or 1)
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        n = min(n, int(env))
    return max(1, n)


def diffusivity(params: GrowthParams, p_wm: np.ndarray, p_gm: np.ndarray, mask: np.ndarray) -> np.ndarray:
    d = params.d_w_mm2_day * (p_wm + params.gm_ratio * p_gm)
    return np.where(mask, d, 0.0).astype(np.float32)


def _bbox(mask: np.ndarray) -> tuple[slice, ...]:
    if not mask.any():
        return tuple(slice(0, n) for n in mask.shape)
    idx = np.argwhere(mask)
    lo, hi = idx.min(0), idx.max(0) + 1
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


class ReactionDiffusion:
    """Forward solver on a fixed grid; reuse one instance for many solves.

    Arrays passed in and returned have the full grid shape; internally the solver works on
    the tissue bounding box.  ``n_solves`` counts state trajectories computed
    (:meth:`simulate` and :meth:`simulate_sensitivities` each add one), ``n_tangent_solves``
    counts tangent-linear trajectories (one per differentiated parameter).
    """

    #: below this many voxels in the tissue box a forward solve runs on one thread (the
    #: hand-off between threads costs more than it saves)
    PARALLEL_MIN_VOXELS = 65536

    def __init__(self, spacing_mm: tuple[float, float, float], mask: np.ndarray,
                 p_wm: np.ndarray, p_gm: np.ndarray, dtype=np.float32, threads: int | None = None):
        self.threads = default_threads() if threads is None else max(1, int(threads))
        self.h = tuple(float(s) for s in spacing_mm)
        self.mask = np.asarray(mask, bool)
        self.shape = self.mask.shape
        self.dtype = dtype
        self.box = _bbox(self.mask)
        self._m = np.ascontiguousarray(self.mask[self.box])
        self.p_wm = np.ascontiguousarray(np.asarray(p_wm, dtype)[self.box])
        self.p_gm = np.ascontiguousarray(np.asarray(p_gm, dtype)[self.box])
        self.sub_shape = self._m.shape
        nx, ny, nz = self.sub_shape
        self.n = nx * ny * nz
        self.strides = (ny * nz, nz, 1)
        self._coeff_cache: dict = {}
        self._f = np.empty(self.n, dtype)
        self._t = np.empty(self.n, dtype)
        self.n_solves = 0
        self.n_tangent_solves = 0

    # ------------------------------------------------------------------ set-up
    def _face_coeffs(self, params: GrowthParams, dt: float) -> list[tuple[int, np.ndarray]]:
        """Per axis: (flat offset, flat array of face coefficients ``D_face dt / h^2``)."""
        key = (params.d_w_mm2_day, params.gm_ratio, dt)
        hit = self._coeff_cache.get(key)
        if hit is not None:
            return hit
        dmap = np.where(self._m, params.d_w_mm2_day * (self.p_wm.astype(np.float64)
                                                     + params.gm_ratio * self.p_gm.astype(np.float64)), 0.0)
        out = []
        for ax in range(3):
            n_ax = dmap.shape[ax]
            a = np.take(dmap, np.arange(n_ax - 1), axis=ax)
            b = np.take(dmap, np.arange(1, n_ax), axis=ax)
            with np.errstate(invalid="ignore", divide="ignore"):
                hm = np.where((a > 0) & (b > 0), 2 * a * b / (a + b), 0.0)
            full = np.zeros(self.sub_shape, self.dtype)
            sl = [slice(None)] * 3
            sl[ax] = slice(0, n_ax - 1)
            full[tuple(sl)] = hm * dt / self.h[ax] ** 2
            s = self.strides[ax]
            out.append((s, np.ascontiguousarray(full.ravel()[: self.n - s])))
        if len(self._coeff_cache) > 8:
            self._coeff_cache.clear()
        self._coeff_cache[key] = out
        return out

    def stable_dt(self, params: GrowthParams) -> float:
        dmax = params.d_w_mm2_day * max(1.0, params.gm_ratio)
        if dmax <= 0:
            return float("inf")
        return 1.0 / (2 * dmax * sum(1 / h ** 2 for h in self.h))

    def _plan(self, params: GrowthParams, t_end_day: float, dt_day: float, schedule: Schedule | None,
              save_days, rt_mask):
        schedule = schedule or Schedule()
        n_sub = max(1, int(np.ceil(dt_day / self.stable_dt(params) - 1e-12)))
        n_steps = int(round(t_end_day / dt_day))
        save_steps: dict[int, float] = {}
        for t in (save_days if save_days is not None else [t_end_day]):
            save_steps[int(round(t / dt_day))] = t
        beta = params.alpha_per_gy / params.ab_ratio_gy
        rt_steps: dict[int, float] = {}   # step -> alpha d + beta d^2 (summed), = -log SF
        for t, d in zip(np.asarray(schedule.rt_days, float), np.asarray(schedule.rt_dose_gy, float)):
            s = int(np.ceil(t / dt_day - 1e-9))
            if 0 <= s < n_steps:
                rt_steps[s] = rt_steps.get(s, 0.0) + params.alpha_per_gy * d + beta * d * d
        auc = np.zeros(n_steps)
        if schedule.drug_exposure is not None and params.kappa_l_per_mg_h > 0:
            for step in range(n_steps):
                auc[step] = float(schedule.drug_exposure(step * dt_day, (step + 1) * dt_day))
        field_flat = None
        if rt_mask is not None:
            fm = np.asarray(rt_mask, bool)
            if not np.array_equal(fm | ~self.mask, np.ones_like(fm)):   # field does not cover the tissue
                field_flat = np.ascontiguousarray(fm[self.box]).ravel()
        return n_sub, n_steps, save_steps, rt_steps, auc, field_flat

    def _to_flat(self, u0: np.ndarray) -> np.ndarray:
        u = np.array(np.asarray(u0)[self.box], dtype=self.dtype, copy=True)
        u[~self._m] = 0
        return u.ravel()

    def _to_full(self, flat: np.ndarray) -> np.ndarray:
        out = np.zeros(self.shape, self.dtype)
        out[self.box] = flat.reshape(self.sub_shape)
        return out

    # ------------------------------------------------------------------ kernels
    def _diffuse(self, src: np.ndarray, base: np.ndarray, out: np.ndarray, coeffs, f: np.ndarray | None = None,
                 lo: int = 0, hi: int | None = None) -> None:
        """``out[lo:hi] = (base + L src)[lo:hi]`` (``L``: the finite-volume diffusion operator
        times dt).  Reads ``src`` on ``[lo - s, hi + s)`` only, so disjoint ranges can run on
        different threads; every element sees the same operations in the same order whatever
        the range, so the result does not depend on how the array is split."""
        f = self._f if f is None else f
        n = self.n
        hi = n if hi is None else hi
        first = True
        for s, c in coeffs:
            # fluxes F[j] = c[j] (src[j+s] - src[j]) for the faces touching [lo, hi)
            j0, j1 = max(lo - s, 0), min(hi, n - s)
            if j1 <= j0:                       # no face of this axis touches the range
                if first:
                    out[lo:hi] = base[lo:hi]
                    first = False
                continue
            fs = f[: j1 - j0]
            np.subtract(src[j0 + s:j1 + s], src[j0:j1], out=fs)
            fs *= c[j0:j1]
            a1 = max(min(hi, n - s), lo)       # out[i] += F[i],    i in [lo, a1)
            if first:
                np.add(base[lo:a1], fs[lo - j0:a1 - j0], out=out[lo:a1])
                out[a1:hi] = base[a1:hi]
                first = False
            else:
                out[lo:a1] += fs[lo - j0:a1 - j0]
            b0 = max(lo, s)                    # out[i] -= F[i - s], i in [b0, hi)
            if b0 < hi:
                out[b0:hi] -= fs[b0 - s - j0:hi - s - j0]

    def _chunks(self, parts: int) -> list[tuple[int, int]]:
        """``parts`` contiguous flat ranges of about equal size, cut at x-plane boundaries."""
        planes = self.sub_shape[0]
        parts = max(1, min(parts, planes))
        cuts = [round(i * planes / parts) * self.strides[0] for i in range(parts + 1)]
        return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]

    def _ranges(self) -> tuple[list[tuple[int, int]], list[np.ndarray]]:
        """The flat ranges of one solve (one per thread, one below PARALLEL_MIN_VOXELS) and a
        flux scratch buffer per range."""
        chunks = self._chunks(self.threads if self.n >= self.PARALLEL_MIN_VOXELS else 1)
        return chunks, [self._f] + [np.empty(self.n, self.dtype) for _ in chunks[1:]]

    @contextmanager
    def _runner(self, n_chunks: int):
        """``run(fn, *args)`` calls ``fn(i, *args)`` for every range ``i``: range 0 on this
        thread, the others on a pool, and returns when all are done (the per-sub-step barrier)."""
        if n_chunks <= 1:
            yield lambda fn, *args: fn(0, *args)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(n_chunks - 1) as pool:
            def run(fn, *args):
                futs = [pool.submit(fn, i, *args) for i in range(1, n_chunks)]
                fn(0, *args)
                for fu in futs:
                    fu.result()

            yield run

    # ------------------------------------------------------------------ forward
    def simulate(self, u0: np.ndarray, params: GrowthParams, t_end_day: float, dt_day: float = 0.5,
                 schedule: Schedule | None = None, save_days: list[float] | None = None,
                 rt_mask: np.ndarray | None = None, transform=None) -> dict[float, np.ndarray]:
        """Integrate from t=0 to ``t_end_day``; return ``{t: u(t)}`` for each requested save time
        (``{t: transform(u(t))}`` when ``transform`` is given, e.g. a summary, to save memory).

        Save times are rounded to the step grid (``dt``); a treatment event at time ``t`` acts
        at the start of the step that begins at ``t`` (events between grid points act at the
        next grid point).
        """
        n_sub, n_steps, save_steps, rt_steps, auc, field_flat = self._plan(
            params, t_end_day, dt_day, schedule, save_days, rt_mask)
        coeffs = self._face_coeffs(params, dt_day / n_sub)
        growth = float(np.exp(params.k_per_day * dt_day))
        kappa = params.kappa_l_per_mg_h
        self.n_solves += 1

        u = self._to_flat(u0)
        v = np.empty_like(u)
        t = self._t
        out: dict[float, np.ndarray] = {}
        keep = transform or (lambda a: a)
        if 0 in save_steps:
            out[save_steps[0]] = keep(self._to_full(u))
        chunks, scratch = self._ranges()

        def advance(i: int, src: np.ndarray, dst: np.ndarray, logistic: tuple[float, float] | None) -> None:
            # one diffusion sub-step on chunk i; after the last one, the exact logistic step and
            # the drug's log-kill over the step in 3 passes:
            # u <- G e u / (1 + (G - 1) u) = u / (a u + b),  a = (G - 1) / (G e), b = 1 / (G e)
            lo, hi = chunks[i]
            self._diffuse(src, src, dst, coeffs, scratch[i], lo, hi)
            if logistic is not None:
                d, tt = dst[lo:hi], t[lo:hi]
                np.multiply(d, self.dtype(logistic[0]), out=tt)
                tt += self.dtype(logistic[1])
                d /= tt

        with self._runner(len(chunks)) as run:
            for step in range(n_steps):
                if step in rt_steps:
                    sf = self.dtype(np.exp(-rt_steps[step]))
                    if field_flat is None:
                        u *= sf
                    else:
                        np.multiply(u, sf, out=u, where=field_flat)
                ge = growth * np.exp(-kappa * auc[step])
                for sub in range(n_sub):
                    logistic = ((growth - 1.0) / ge, 1.0 / ge) if sub == n_sub - 1 else None
                    run(advance, u, v, logistic)
                    u, v = v, u
                if step + 1 in save_steps:
                    out[save_steps[step + 1]] = keep(self._to_full(u))
        return out

    # ------------------------------------------------------------------ tangent linear
    def simulate_sensitivities(self, u0: np.ndarray, params: GrowthParams, t_end_day: float,
                               dt_day: float = 0.5, schedule: Schedule | None = None,
                               save_days: list[float] | None = None, rt_mask: np.ndarray | None = None,
                               wrt: tuple[str, ...] = SENSITIVITY_PARAMS,
                               ) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """Like :meth:`simulate`, also returning ``du/d log p`` for each ``p`` in ``wrt``.

        Returns ``{t: (u, S)}`` with ``S`` of shape ``(len(wrt),) + grid shape``.  The initial
        condition does not depend on the parameters.  The trajectory ``u`` is bit-identical
        to :meth:`simulate`.
        """
        bad = set(wrt) - set(SENSITIVITY_PARAMS)
        if bad:
            raise ValueError(f"unknown parameters {sorted(bad)}; expected some of {SENSITIVITY_PARAMS}")
        n_sub, n_steps, save_steps, rt_steps, auc, field_flat = self._plan(
            params, t_end_day, dt_day, schedule, save_days, rt_mask)
        coeffs = self._face_coeffs(params, dt_day / n_sub)
        k = params.k_per_day
        growth = float(np.exp(k * dt_day))
        kappa = params.kappa_l_per_mg_h
        self.n_solves += 1
        self.n_tangent_solves += len(wrt)
        ip = {name: i for i, name in enumerate(wrt)}

        u = self._to_flat(u0)
        v = np.empty_like(u)
        t = self._t
        den = np.empty_like(u)
        gp = np.empty_like(u)
        S = [np.zeros_like(u) for _ in wrt]
        Sv = [np.empty_like(u) for _ in wrt]
        out: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        chunks, scratch = self._ranges()
        i_dw, i_k, i_kappa = ip.get("d_w"), ip.get("k"), ip.get("kappa")

        def save(tt):
            out[tt] = (self._to_full(u), np.stack([self._to_full(s) for s in S]) if S else
                       np.zeros((0,) + self.shape, self.dtype))

        def advance(i, u, v, S, Sv, last, ge, auc_step):
            """One diffusion sub-step of the state and every tangent on chunk i, then (after the
            last sub-step) the logistic + drug step and its derivatives, all pointwise."""
            lo, hi = chunks[i]
            f = scratch[i]
            self._diffuse(u, u, v, coeffs, f, lo, hi)
            for j in range(len(S)):
                self._diffuse(S[j], S[j], Sv[j], coeffs, f, lo, hi)
            if i_dw is not None:               # d(L u)/d log D_w = L u = v - u
                fs = f[: hi - lo]
                np.subtract(v[lo:hi], u[lo:hi], out=fs)
                Sv[i_dw][lo:hi] += fs
            if not last:
                return
            # logistic + drug: u <- G e u / den = u / tt, den = 1 + u (G - 1), tt = den / (G e)
            # (same passes as simulate); d/du = G e / den^2 = 1 / (G e tt^2);
            # d/dlog k = k dt u (1 - u) * d/du
            un, dn, g, tc = v[lo:hi], den[lo:hi], gp[lo:hi], t[lo:hi]
            np.multiply(un, self.dtype((growth - 1.0) / ge), out=dn)
            dn += self.dtype(1.0 / ge)                  # tt
            np.multiply(dn, dn, out=g)
            g *= self.dtype(ge)
            np.reciprocal(g, out=g)                     # e * g'(u)
            if i_k is not None:
                np.subtract(1.0, un, out=tc)
                tc *= un
                tc *= self.dtype(k * dt_day)
                tc *= g
            for sj in Sv:
                sj[lo:hi] *= g
            if i_k is not None:
                Sv[i_k][lo:hi] += tc
            un /= dn
            if i_kappa is not None and auc_step > 0:
                np.multiply(un, self.dtype(-kappa * auc_step), out=tc)
                Sv[i_kappa][lo:hi] += tc

        with self._runner(len(chunks)) as run:
            if 0 in save_steps:
                save(save_steps[0])
            for step in range(n_steps):
                if step in rt_steps:
                    q = rt_steps[step]                    # alpha d + beta d^2 = d(q)/d log alpha
                    sf = self.dtype(np.exp(-q))
                    where = True if field_flat is None else field_flat
                    np.multiply(u, sf, out=u, where=where)
                    for sj in S:
                        np.multiply(sj, sf, out=sj, where=where)
                    if "alpha" in ip:
                        np.multiply(u, self.dtype(-q), out=t)
                        np.add(S[ip["alpha"]], t, out=S[ip["alpha"]], where=where)
                ge = growth * np.exp(-kappa * auc[step])
                for sub in range(n_sub):
                    args = (u, v, S, Sv, sub == n_sub - 1, ge, auc[step])
                    run(advance, *args)
                    u, v = v, u
                    S, Sv = Sv, S
                if step + 1 in save_steps:
                    save(save_steps[step + 1])
        return out
