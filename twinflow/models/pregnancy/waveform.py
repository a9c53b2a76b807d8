"""Doppler velocity waveform indices: cardiac cycles, PSV, EDV, TAMAX, PI, RI, early-diastolic notch.

Input: the maximum-velocity envelope ``v(t)`` (cm/s, magnitude) sampled at times ``t`` (s).

* **Smoothing.**  Savitzky-Golay (quadratic) over 25 ms against tracing noise.
* **Cycles.**  Systolic peaks are found with :func:`scipy.signal.find_peaks` (prominence at least
  40 % of the envelope's range, spacing at least 0.55 x the cycle length estimated from the
  autocorrelation); each cycle runs from the *foot* before one systolic upstroke (the minimum
  between the previous peak and this one, i.e. end-diastole) to the foot before the next.
  The foot is sought only in the last 35 % of a cycle before the peak, so that a dip of
  reversed flow after systole is not taken for end-diastole.  Only complete cycles (a foot
  on both sides) are measured.
* **Per cycle** (the standard definitions, Gosling and King 1974; Pourcelot 1974):
  ``PSV`` = maximum velocity; ``EDV`` = velocity at the end of the cycle (the next foot);
  ``TAMAX`` = time average of the envelope over the cycle (trapezoid rule);
  ``PI = (PSV - EDV) / TAMAX``, ``RI = (PSV - EDV) / PSV``.
  The reported values are the means over complete cycles (their SD is reported too).
* **Early-diastolic notch.**  After the systolic peak the envelope falls; a notch is a local
  minimum followed, within the first 45 % of the cycle after the peak, by a local maximum (the
  early-diastolic peak) that is higher than the minimum by at least ``NOTCH_MIN_DEPTH`` x PSV.
  Notch depth index = (early-diastolic peak - notch minimum) / PSV.  The waveform is *notched*
  when at least half of its cycles have a notch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.signal import find_peaks, savgol_filter

NOTCH_MIN_DEPTH = 0.03       # fraction of PSV
SMOOTH_S = 0.025             # Savitzky-Golay window (s) against tracing noise
NOTCH_SEARCH = 0.45          # fraction of the cycle after the systolic peak
FOOT_WINDOW = 0.35           # the foot is sought in this fraction of a cycle before the peak


class WaveformError(ValueError):
    """The envelope has no measurable cardiac cycle."""


@dataclass
class CycleIndices:
    start_s: float
    end_s: float
    psv_cm_s: float
    edv_cm_s: float
    tamax_cm_s: float
    pi: float
    ri: float
    notch: bool
    notch_depth: float
    peak_s: float
    onset_s: float = 0.0          # half-height crossing of the systolic upstroke


@dataclass
class WaveformIndices:
    n_cycles: int
    heart_rate_bpm: float
    psv_cm_s: float
    edv_cm_s: float
    tamax_cm_s: float
    pi: float
    ri: float
    pi_sd: float
    notch: bool
    notch_depth: float
    cycles: list[CycleIndices] = field(default_factory=list)
    onsets_s: list[float] = field(default_factory=list)   # consecutive systolic onsets

    def onset_cycles(self) -> list[tuple[float, float]]:
        """(onset, next onset) of consecutive cycles: the cycle boundaries least moved by noise."""
        return list(zip(self.onsets_s[:-1], self.onsets_s[1:]))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _period_samples(v: np.ndarray) -> int:
    """Dominant cycle length (samples) from the autocorrelation's first peak after lag 0."""
    x = v - v.mean()
    n = x.size
    ac = np.correlate(x, x, mode="full")[n - 1:]
    ac = ac / ac[0] if ac[0] > 0 else ac
    peaks, _ = find_peaks(ac, height=0.2)
    peaks = peaks[peaks > 3]
    if peaks.size == 0:
        raise WaveformError("no periodic cardiac cycle in the envelope")
    return int(peaks[0])


def cycle_indices(t: np.ndarray, v: np.ndarray, i0: int, i1: int, ip: int) -> CycleIndices:
    """Indices of one cycle running from sample ``i0`` to ``i1`` (both feet) with peak ``ip``."""
    tt, vv = t[i0:i1 + 1], v[i0:i1 + 1]
    dur = float(tt[-1] - tt[0])
    tamax = float(np.trapezoid(vv, tt) / dur)
    psv, edv = float(v[ip]), float(v[i1])
    notch, depth = False, 0.0
    j1 = min(i1, ip + max(2, int(round(NOTCH_SEARCH * (i1 - i0)))))
    seg = v[ip:j1 + 1]
    if seg.size >= 3:
        mins, _ = find_peaks(-seg)
        for m in mins:
            rest = seg[m:]
            later_max = float(rest.max())
            d = (later_max - float(seg[m])) / psv
            if d >= NOTCH_MIN_DEPTH and int(np.argmax(rest)) > 0:
                notch, depth = True, max(depth, d)
    return CycleIndices(start_s=float(tt[0]), end_s=float(tt[-1]), psv_cm_s=psv, edv_cm_s=edv, tamax_cm_s=tamax,
                        pi=(psv - edv) / tamax, ri=(psv - edv) / psv, notch=notch, notch_depth=depth,
                        peak_s=float(t[ip]), onset_s=upstroke_time(t, v, i0, ip))


def find_cycles(t: np.ndarray, v: np.ndarray, *, with_onsets: bool = False):
    """(foot, next foot, systolic peak) sample indices of every complete cycle (and, with
    ``with_onsets``, the times of the half-height upstroke after every foot)."""
    rng = float(np.ptp(v))
    if v.size < 8 or rng <= 0:
        raise WaveformError("the envelope is flat: no Doppler signal")
    period = _period_samples(v)
    peaks, _ = find_peaks(v, prominence=0.4 * rng, distance=max(1, int(0.55 * period)))
    if peaks.size < 2:
        raise WaveformError("fewer than two systolic peaks in the envelope")
    feet = []
    for a, b in zip(peaks[:-1], peaks[1:]):
        # the foot is the last sample before the systolic upstroke: the minimum within
        # FOOT_WINDOW of a cycle before the peak (not an earlier post-systolic dip), taking the
        # latest of (near-)equal minima
        a = max(a, b - max(2, int(FOOT_WINDOW * period)))
        seg = v[a:b + 1]
        mn = seg.min()
        cand = np.nonzero(seg <= mn + 1e-9 * max(1.0, abs(mn)))[0]
        feet.append(a + int(cand[-1]))
    out = []
    for k in range(len(feet) - 1):
        i0, i1 = feet[k], feet[k + 1]
        ip = int(peaks[k + 1])
        if i0 < ip < i1:
            out.append((i0, i1, ip))
    if not out:
        raise WaveformError("no complete cardiac cycle in the envelope")
    if with_onsets:
        onsets = [upstroke_time(t, v, f, int(p)) for f, p in zip(feet, peaks[1:]) if f < p]
        return out, onsets
    return out


def smooth(t: np.ndarray, v: np.ndarray, window_s: float = SMOOTH_S) -> np.ndarray:
    """Savitzky-Golay smoothing (quadratic) over ``window_s``; no-op when that is < 5 samples."""
    dt = float(np.median(np.diff(t)))
    w = int(round(window_s / dt)) | 1
    return savgol_filter(v, w, 2, mode="interp") if w >= 5 and v.size > w else v


def analyse(t: np.ndarray, v: np.ndarray, smooth_s: float = SMOOTH_S) -> WaveformIndices:
    """Cycle-averaged indices of a maximum-velocity envelope (see the module docstring).

    The envelope is first smoothed over ``smooth_s`` seconds (0: not at all) so that tracing
    noise neither moves the feet nor biases EDV low.
    """
    t = np.asarray(t, float)
    v = np.asarray(v, float)
    ok = np.isfinite(v)
    if ok.sum() < 8:
        raise WaveformError("too few valid envelope samples")
    if not ok.all():                     # fill gaps (columns without signal) by interpolation
        v = np.interp(t, t[ok], v[ok])
    if smooth_s > 0:
        v = smooth(t, v, smooth_s)
    found, onsets = find_cycles(t, v, with_onsets=True)
    cycles = [cycle_indices(t, v, *c) for c in found]
    pis = np.array([c.pi for c in cycles])
    durations = np.array([c.end_s - c.start_s for c in cycles])
    n_notched = sum(c.notch for c in cycles)
    return WaveformIndices(
        n_cycles=len(cycles), heart_rate_bpm=float(60.0 / durations.mean()),
        psv_cm_s=float(np.mean([c.psv_cm_s for c in cycles])), edv_cm_s=float(np.mean([c.edv_cm_s for c in cycles])),
        tamax_cm_s=float(np.mean([c.tamax_cm_s for c in cycles])), pi=float(pis.mean()),
        ri=float(np.mean([c.ri for c in cycles])), pi_sd=float(pis.std(ddof=1)) if pis.size > 1 else 0.0,
        notch=n_notched * 2 >= len(cycles),
        notch_depth=float(np.mean([c.notch_depth for c in cycles])), cycles=cycles, onsets_s=onsets)


def upstroke_time(t: np.ndarray, v: np.ndarray, i0: int, ip: int) -> float:
    """Time at which the upstroke from the foot ``i0`` to the peak ``ip`` crosses half its height
    (linear interpolation): a cycle marker robust to noise at the foot."""
    half = 0.5 * (v[i0] + v[ip])
    seg = v[i0:ip + 1]
    k = int(np.nonzero(seg >= half)[0][0])
    if k == 0:
        return float(t[i0])
    a, b = seg[k - 1], seg[k]
    return float(t[i0 + k - 1] + (half - a) / (b - a) * (t[i0 + k] - t[i0 + k - 1]))
