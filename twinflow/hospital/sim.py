"""One replication of a hospital model, in SimPy.

The model (a dict, see docs/hospital.md "Model"; :mod:`~twinflow.hospital.fit` writes it,
Nelson's treatment centre is written by hand in :mod:`~twinflow.hospital.nelson`):

* ``arrivals``: a non-homogeneous Poisson process, piecewise constant by hour over a cycle
  of ``period_h`` hours (168 = hour of week), times ``exp(trend_per_week * weeks)``;
  generated up front by thinning (Lewis and Shedler) with the rate at each candidate time;
* ``classes``: each arrival's patient class (probabilities), and its queue ``priority``;
* ``routing``: per class, a first-order Markov chain over activities from ``__start__`` to
  ``__end__``;
* ``activities``: per activity an optional ``resource`` (a SimPy ``PriorityResource``, served
  by class priority then first come first served), a ``service`` time (holding the
  resource) and a ``delay`` before it (not holding anything: transport, waiting for a
  result; transition-specific delays in ``delays[from][to]`` take precedence);
* ``resources``: capacity per resource, an integer or 24 hourly values (shifts); capacity
  is taken away at a shift change by high-priority requests that wait for a unit to free
  (no pre-emption of a patient in service).

Random numbers: one ``numpy.random.Generator`` per purpose (arrivals, classes, routing,
each activity's service and delay), each seeded from ``SeedSequence(seed, spawn_key=(rep,
crc32(purpose)))``.  A replication is therefore a pure function of (model, run, seed, rep),
and scenarios share the streams of the baseline (common random numbers).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import simpy

from twinflow.hospital.distributions import sampler

START, END = "__start__", "__end__"
MAX_VISITS = 500  # per case: a guard against routing loops that never reach __end__


@dataclass
class Trajectories:
    """What happened to every case (simulated or observed), times in hours from t = 0."""

    activities: list[str]
    classes: list[str]
    case_class: np.ndarray  # int index into classes
    arrival: np.ndarray
    case_end: np.ndarray  # NaN: still in the system at the horizon
    v_case: np.ndarray  # visits (activity instances), sorted by case then start
    v_act: np.ndarray
    v_ready: np.ndarray  # when the patient was ready for it (after any delay)
    v_start: np.ndarray
    v_end: np.ndarray  # NaN: still in service at the horizon
    horizon: float


def stream(seed: int, rep: int, purpose: str) -> np.random.Generator:
    ss = np.random.SeedSequence(int(seed), spawn_key=(int(rep), zlib.crc32(purpose.encode())))
    return np.random.default_rng(ss)


def capacity_profile(cap) -> np.ndarray:
    """24 hourly capacities from an integer or a list of 24 integers."""
    if isinstance(cap, (int, float)):
        return np.full(24, int(cap))
    arr = np.asarray(cap, int)
    if arr.shape != (24,):
        raise ValueError("a capacity schedule has 24 hourly values")
    return arr


def arrival_rate(spec: dict, run: dict, t: np.ndarray) -> np.ndarray:
    a = spec["arrivals"]
    rates = np.asarray(a["rate_per_h"], float)
    idx = np.floor(run.get("phase_h", 0.0) + t).astype(np.int64) % int(a["period_h"])
    lam = rates[idx] * np.exp(a.get("trend_per_week", 0.0) * (run.get("trend_weeks0", 0.0) + t / 168.0))
    for s in a.get("surges", []):  # scenario: factor on [from_h, to_h) of run time
        lam = np.where((t >= s.get("from_h", 0.0)) & (t < s.get("to_h", math.inf)), lam * s["factor"], lam)
    return lam


def arrival_times(spec: dict, run: dict, rng: np.random.Generator) -> np.ndarray:
    """Arrival times on [0, stop) by thinning a homogeneous process at the maximal rate."""
    stop = float(run.get("stop_arrivals_h", run["horizon_h"]))
    a = spec["arrivals"]
    trend = a.get("trend_per_week", 0.0) * (run.get("trend_weeks0", 0.0) + np.array([0.0, stop / 168.0]))
    surge = max([1.0] + [s["factor"] for s in a.get("surges", [])])
    lam_max = float(np.max(a["rate_per_h"])) * float(np.exp(trend.max())) * surge * (1 + 1e-9)
    if lam_max <= 0:
        return np.empty(0)
    out, t = [], 0.0
    chunk = max(64, int(lam_max * stop * 0.25))
    while t < stop:
        cand = t + np.cumsum(rng.exponential(1.0 / lam_max, chunk))
        u = rng.random(chunk)
        t = cand[-1]
        cand_in = cand < stop
        keep = cand_in & (u * lam_max < arrival_rate(spec, run, cand))
        out.append(cand[keep])
    return np.concatenate(out)


class _Model:
    def __init__(self, spec: dict, run: dict, seed: int, rep: int):
        self.spec, self.run = spec, run
        self.env = simpy.Environment()
        acts = spec["activities"]
        self.activities = sorted(acts)
        self.act_index = {a: i for i, a in enumerate(self.activities)}
        self.classes = list(spec["classes"]["names"])
        prio = spec["classes"].get("priority", {})
        self.priority = [int(prio.get(c, 0)) for c in self.classes]
        # resources and shift schedules
        self.pools: dict[str, simpy.PriorityResource] = {}
        self.schedules: dict[str, np.ndarray] = {}
        for name, r in sorted(spec.get("resources", {}).items()):
            prof = capacity_profile(r["capacity"])
            self.schedules[name] = prof
            self.pools[name] = simpy.PriorityResource(self.env, capacity=max(1, int(prof.max())))
        self.act_pool = [self.pools.get(acts[a].get("resource")) if acts[a].get("resource") else None
                         for a in self.activities]
        # random streams and samplers
        self.rng_routing = stream(seed, rep, "routing")
        self.service = []
        self.delay_default = []
        for a in self.activities:
            g_s, g_d = stream(seed, rep, f"service:{a}"), stream(seed, rep, f"delay:{a}")
            self.service.append(sampler(acts[a].get("service"), g_s))
            self.delay_default.append((sampler(acts[a].get("delay"), g_d), g_d))
        self.delay_pair: dict[tuple[int, int], object] = {}
        for src, row in spec.get("delays", {}).items():
            for dst, d in row.items():
                if dst in self.act_index:
                    g = self.delay_default[self.act_index[dst]][1]
                    self.delay_pair[(self._node(src), self.act_index[dst])] = sampler(d, g)
        # routing tables: per class, per node -> (cumulative probabilities, targets)
        self.routes: list[dict[int, tuple[np.ndarray, list[int]]]] = []
        for c in self.classes:
            table = {}
            for src, row in spec["routing"][c].items():
                targets = sorted(row)
                p = np.array([row[t] for t in targets], float)
                table[self._node(src)] = (np.cumsum(p / p.sum()), [self._node(t) for t in targets])
            self.routes.append(table)
        # records
        self.v_case: list[int] = []
        self.v_act: list[int] = []
        self.v_ready: list[float] = []
        self.v_start: list[float] = []
        self.v_end: list[float] = []
        self.case_end: np.ndarray | None = None
        self.seed, self.rep = seed, rep

    def _node(self, name: str) -> int:
        if name == START:
            return -1
        if name == END:
            return -2
        return self.act_index[name]

    def route(self, cls: int, node: int) -> int:
        table = self.routes[cls]
        if node not in table:
            return -2
        cum, targets = table[node]
        return targets[min(int(np.searchsorted(cum, self.rng_routing.random(), side="right")), len(targets) - 1)]

    def _record(self, i: int, node: int, ready: float, start: float) -> int:
        self.v_case.append(i)
        self.v_act.append(node)
        self.v_ready.append(ready)
        self.v_start.append(start)
        self.v_end.append(math.nan)
        return len(self.v_end) - 1

    def patient(self, i: int, cls: int):
        env = self.env
        prev, node, n = -1, self.route(cls, -1), 0
        while node != -2 and n < MAX_VISITS:
            # the first activity starts at arrival (the fit defines arrival as the first event);
            # an activity's own delay is for reaching it from another one
            f = self.delay_pair.get((prev, node)) or (self.delay_default[node][0] if prev != -1 else None)
            d = f() if f is not None else 0.0
            if d > 0:
                yield env.timeout(d)
            ready = env.now
            pool = self.act_pool[node]
            if pool is not None:
                with pool.request(priority=self.priority[cls]) as req:
                    yield req
                    k = self._record(i, node, ready, env.now)
                    s = self.service[node]()
                    if s > 0:
                        yield env.timeout(s)
            else:
                k = self._record(i, node, ready, ready)
                s = self.service[node]()
                if s > 0:
                    yield env.timeout(s)
            self.v_end[k] = env.now
            prev, node, n = node, self.route(cls, node), n + 1
        self.case_end[i] = env.now

    def source(self, times: np.ndarray, classes: np.ndarray):
        env = self.env
        for i, t in enumerate(times):
            if t > env.now:
                yield env.timeout(t - env.now)
            env.process(self.patient(i, int(classes[i])))

    def shifts(self, name: str):
        """Take capacity away (and give it back) at the hours where the schedule changes."""
        prof = self.schedules[name]
        pool = self.pools[name]
        cap_max = pool.capacity
        held: list = []
        phase = self.run.get("phase_h", 0.0)
        t = 0.0
        while True:
            hour = int(math.floor(phase + t)) % 24
            want = cap_max - int(prof[hour])
            while len(held) < want:
                held.append(pool.request(priority=-10 ** 6))
            while len(held) > want:
                req = held.pop()
                if req.triggered:
                    pool.release(req)
                else:
                    req.cancel()
            nxt = math.floor(phase + t) + 1 - phase
            yield self.env.timeout(max(nxt - t, 1e-9))
            t = self.env.now


def simulate(spec: dict, run: dict, seed: int, rep: int) -> Trajectories:
    """Run one replication of ``spec`` over ``[0, run['horizon_h'])``."""
    m = _Model(spec, run, seed, rep)
    times = arrival_times(spec, run, stream(seed, rep, "arrivals"))
    p = np.asarray(spec["classes"]["p"], float)
    cls = np.searchsorted(np.cumsum(p / p.sum()), stream(seed, rep, "classes").random(times.size), side="right")
    cls = np.minimum(cls, len(p) - 1)
    m.case_end = np.full(times.size, np.nan)
    m.env.process(m.source(times, cls))
    for name, prof in m.schedules.items():
        if prof.min() != prof.max():
            m.env.process(m.shifts(name))
    horizon = float(run["horizon_h"])
    m.env.run(until=horizon)
    v_case = np.asarray(m.v_case, np.int64)
    v_start = np.asarray(m.v_start, float)
    order = np.lexsort((v_start, v_case))
    return Trajectories(
        activities=m.activities, classes=m.classes, case_class=cls.astype(np.int64), arrival=times,
        case_end=m.case_end, v_case=v_case[order], v_act=np.asarray(m.v_act, np.int64)[order],
        v_ready=np.asarray(m.v_ready, float)[order], v_start=v_start[order],
        v_end=np.asarray(m.v_end, float)[order], horizon=horizon)
