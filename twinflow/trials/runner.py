"""Running a whole trial in one process (or a pool of processes) with the same stage
functions and the same folder layout as the Snakemake rules: for tests, benchmarks, replays
and notebooks.  ``workers > 1`` simulates chunks in parallel processes (one solver thread
each)."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Mapping

from twinflow.layout import Layout
from twinflow.trials import stages
from twinflow.trials.sampling import chunk_jobs


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"


def _simulate(args) -> float:
    cfg, pop, sources, arm, k, out, tm = args
    t = time.perf_counter()
    stages.simulate(cfg, pop, sources, arm, k, out, tm=tm)
    return time.perf_counter() - t


def run_trial(name: str, cfg: Mapping[str, Any], sources: list, results: str | Path, *, workers: int = 1,
              tm: Any = None, report: bool = True) -> dict[str, Any]:
    """Sample, simulate every chunk and assemble ``<results>/trials/<name>/``; returns
    ``{"doc": trial.json, "seconds": {stage: wall seconds}}``."""
    L = Layout(str(results))
    secs: dict[str, float] = {}
    t = time.perf_counter()
    pop = L.trial(name, "population.parquet")
    stages.sample(cfg, sources, pop, L.trial(name, "sample.json"), tm=tm)
    secs["sample"] = time.perf_counter() - t
    jobs = [(cfg, pop, sources, arm, k, L.trial_chunk(name, arm, k), tm) for arm, k in chunk_jobs(cfg)]
    t = time.perf_counter()
    if workers > 1:
        with ProcessPoolExecutor(workers, initializer=_init_worker) as pool:
            secs["chunk_cpu"] = sum(pool.map(_simulate, jobs))
    else:
        secs["chunk_cpu"] = sum(_simulate(j) for j in jobs)
    secs["simulate"] = time.perf_counter() - t
    t = time.perf_counter()
    doc = stages.assemble(name, cfg, pop, [j[5] for j in jobs], sources, L.trial(name, "trial"),
                          L.trial(name, "report.html") if report else None, tm=tm)
    secs["assemble"] = time.perf_counter() - t
    return {"doc": doc, "seconds": secs}
