"""Speed and screening performance of the pregnancy twin.

    python benchmarks/pregnancy.py [--repeat 3] [--population 60000]

Prints two Markdown tables: timings (best of ``--repeat``: FMF screening of one woman and of a
vectorised population, the ``pe-risk`` command per row, one Doppler DICOM read and traced,
one visit calibrated, the forecast and arms of one twin) and the screening performance of a
population drawn from the model's own distributions (detection rates at a 10 % screen-positive
rate and at the 1-in-100 cut-off, beside the published ones).  Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from twinflow.demo import pregnancy as demo  # noqa: E402
from twinflow.io.doppler import analyse_dicom  # noqa: E402
from twinflow.models.pregnancy import batch, population, screening as S  # noqa: E402
from twinflow.models.pregnancy.calibrate import calibrate_visit  # noqa: E402
from twinflow.models.pregnancy.forecast import DEFAULT_ARMS, simulation_outputs  # noqa: E402


def timed(fn, repeat):
    best_w = best_c = float("inf")
    out = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        best_w = min(best_w, time.perf_counter() - w)
        best_c = min(best_c, time.process_time() - c)
    return best_w, best_c, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--population", type=int, default=60000)
    args = ap.parse_args()
    rows = []
    m = S.Maternal(age_years=37, weight_kg=88, height_cm=158, ethnicity="black", parous=True, previous_pe=True,
                   previous_ga_weeks=33)
    k = S.Markers(ga_weeks=12.4, map_mmhg=96, uta_pi=2.2, plgf_pg_ml=20, plgf_assay="kryptor")
    w, c, _ = timed(lambda: S.screen(m, k), args.repeat * 20)
    rows.append(("FMF screening, one woman (MoMs, prior, 4 risks)", w, c, "1 woman"))
    rng = np.random.default_rng(0)
    mu, x = rng.normal(54, 6, 100000), rng.normal(0, 0.1, (100000, 3))
    w, c, _ = timed(lambda: S.risks_many(mu, x, [32, 34, 37]), args.repeat)
    rows.append(("FMF risks, vectorised", w, c, "100,000 women"))
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        n = 2000
        lines = ["\t".join(batch.INPUT_COLUMNS)]
        for i in range(n):
            r = dict(id=f"w{i}", ga_weeks="12.5", age_years=str(25 + i % 20), weight_kg=str(55 + i % 50),
                     height_cm="164", ethnicity="white", smoker="no", conception="spontaneous",
                     chronic_hypertension="no", diabetes="none", sle="no", aps="no", mother_had_pe="no",
                     parous="no", map_mmhg=str(75 + i % 25), uta_pi=f"{1.0 + (i % 30) / 20:.2f}",
                     plgf=str(20 + i % 40), plgf_assay="delfia")
            lines.append("\t".join(r.get(col, "") for col in batch.INPUT_COLUMNS))
        (td / "in.tsv").write_text("\n".join(lines) + "\n")
        w, c, _ = timed(lambda: batch.run(td / "in.tsv", td / "out.tsv"), 1)
        rows.append(("twinflow pe-risk (read, screen, write)", w, c, f"{n} rows"))
        p = demo.PREGNANCIES[1]
        w, c, _ = timed(lambda: demo.generate(td / "data", (p,)), 1)
        rows.append(("demo pregnancy generated (4 DICOMs, labs)", w, c, "1 pregnancy"))
        dcm = td / "data" / demo.pregnancy_files(td, p)[("V1", "UTA_DOPPLER_LEFT")]
        w, c, res = timed(lambda: analyse_dicom(dcm), args.repeat)
        rows.append(("Doppler DICOM: read, trace, indices, QC PNG", w, c, "720x360 region"))
        env = res["envelope"]
        t = np.array(env["t_s"])
        v = np.array([np.nan if e is None else e for e in env["v_cm_s"]])
        v = np.interp(t, t[np.isfinite(v)], v[np.isfinite(v)])
        w, c, cal = timed(lambda: calibrate_visit(t, v, res["indices"].onset_cycles(), 95.0, demo.ga_weeks(p, "V1")),
                          args.repeat)
        rows.append(("visit calibration (MAP + envelope, identifiability)", w, c,
                     f"{cal.n_model_evaluations} envelope evaluations"))
    side = {"log_offset": 1.0, "log_offset_sd": 0.1, "tau_ratio": 0.25, "wave_speed_cm_s": 900.0, "radius_factor": 1.0}
    spec = {"sides": {"LEFT": side, "RIGHT": side}, "r_sys_factor": 1.2, "hr_offset_bpm": 8.0,
            "posterior": {"mu": 40.0, "log10_moms": {"map": 0.03, "uta_pi": 0.12, "plgf": -0.4}},
            "arms": list(DEFAULT_ARMS), "n_samples": 40, "seed": 1}
    w, c, _ = timed(lambda: simulation_outputs(spec), 1)
    rows.append(("forecast 11-40 weeks (40-draw band) + 3 arms", w, c, "1 twin"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print()
    print("| step | wall (s) | CPU (s) | size |")
    print("|---|---:|---:|---|")
    for name, w, c, size in rows:
        print(f"| {name} | {w:.4f} | {c:.4f} | {size} |")
    print()
    pop = population.simulate(args.population, seed=1)
    print(f"Simulated population: {args.population} women, PE {100 * pop.pe.mean():.2f} %, "
          f"preterm PE {100 * (pop.pe & (pop.g < 37)).mean():.2f} %")
    print()
    print("| markers | SPR at 1/100 | DR <32 @10 % | DR <37 @10 % | DR >=37 @10 % | DR <37 @1/100 | published @10 % |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, mk in (("maternal factors", (False, False, False)), ("+ MAP + UtA-PI", (True, True, False)),
                     ("+ MAP + UtA-PI + PlGF", (True, True, True))):
        r = population.performance(pop, markers=mk)
        pub = "90 / 75 / 41 % (Tan 2018)" if all(mk) else ""
        print(f"| {name} | {100 * r['screen_positive_rate_at_1_in_100']:.1f} % | {100 * r['dr_pe_lt_32']:.0f} % | "
              f"{100 * r['dr_pe_lt_37']:.0f} % | {100 * r['dr_pe_ge_37']:.0f} % | "
              f"{100 * r['dr_pe_lt_37_at_1_in_100']:.0f} % | {pub} |")


if __name__ == "__main__":
    main()
