"""Toy twin: a lesion's volume grows exponentially, V(t) = V0 exp(r t); treatment removes a
fraction of it.  It exists to prove that a kind of twin plugs into twinflow through the
``twinflow.models`` entry-point group alone (tests/test_plugin.py): nothing outside this
package names it.

* segment   voxels above half the image maximum -> lesion volume (ml)
* estimate  least squares of log volume against days -> r with its standard error
* simulate  arms: ``{"name", "kill_fraction"}`` applied at the last visit, volume at +horizon days
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from twinflow.io.atomic import write_json
from twinflow.models.base import PatientContext, ReportSection, TwinModel


def _arms_tsv(v_last: float, r: float, arms: list[dict], horizon: float) -> bytes:
    lines = ["arm\tkill_fraction\tvolume_ml_end"]
    for a in arms:
        end = v_last * (1.0 - float(a["kill_fraction"])) * math.exp(r * horizon)
        lines.append(f"{a['name']}\t{float(a['kill_fraction']):.6g}\t{end:.8g}")
    return ("\n".join(lines) + "\n").encode()


class ToyTwin(TwinModel):
    name = "toy"
    version = "0.1.0"
    description = "exponential lesion growth (a test plug-in)"
    series = ("LESION",)
    stage_modules = {"segment": ("twinflow.io.atomic",)}
    config_schema = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "segment": {"type": "object", "additionalProperties": False},
            "estimate": {"type": "object", "additionalProperties": False},
            "simulate": {"type": "object", "additionalProperties": False, "properties": {
                "horizon_days": {"type": "number", "exclusiveMinimum": 0, "default": 30},
                "arms": {"type": "array", "items": {
                    "type": "object", "required": ["name", "kill_fraction"], "additionalProperties": False,
                    "properties": {"name": {"type": "string"}, "kill_fraction": {"type": "number", "minimum": 0, "maximum": 1}}}}}},
        },
    }
    results_schema = {"type": "object", "required": ["volumes_ml", "arms"],
                      "properties": {"volumes_ml": {"type": "object"}, "arms": {"type": "array"}}}

    def segment_visits(self, ctx: PatientContext) -> list[str]:
        return [v for v, _ in ctx.visits() if "LESION" in ctx.series_of(v)]

    def segment(self, ctx: PatientContext, visit: str, out_dir: Path) -> None:
        import nibabel as nib
        import numpy as np

        img = nib.load(str(ctx.image_path(visit, "LESION")))
        a = np.asarray(img.dataobj, dtype=float)
        n = int(np.count_nonzero(a > 0.5 * a.max()))
        ml = n * float(np.prod(img.header.get_zooms()[:3])) / 1000.0
        write_json(Path(out_dir) / "lesion.json", {"visit": visit, "volume_ml": ml})

    def estimate(self, ctx: PatientContext, out_dir: Path) -> None:
        import datetime as dt

        import numpy as np

        dates = dict(ctx.visits())
        visits = self.segment_visits(ctx)
        vol = {v: json.loads((ctx.segment_dir(v) / "lesion.json").read_text())["volume_ml"] for v in visits}
        d0 = dt.date.fromisoformat(dates[visits[0]])
        t = np.array([(dt.date.fromisoformat(dates[v]) - d0).days for v in visits], float)
        y = np.log([vol[v] for v in visits])
        A = np.vstack([np.ones_like(t), t]).T
        coef, res, *_ = np.linalg.lstsq(A, y, rcond=None)
        dof = max(len(t) - 2, 1)
        s2 = float(res[0]) / dof if len(res) else 0.0
        se = math.sqrt(s2 * np.linalg.inv(A.T @ A)[1, 1])
        write_json(Path(out_dir) / "estimate.json", {"r_per_day": float(coef[1]), "r_se": se, "volumes_ml": vol,
                                                     "last_day": float(t[-1]), "v_last_ml": vol[visits[-1]]})

    def simulate(self, ctx: PatientContext, estimate_dir: Path, out_dir: Path) -> None:
        est = json.loads((Path(estimate_dir) / "estimate.json").read_text())
        arms = ctx.config.get("arms") or [{"name": "none", "kill_fraction": 0.0}]
        spec = {"v_last_ml": est["v_last_ml"], "r_per_day": est["r_per_day"], "arms": arms,
                "horizon_days": ctx.config.get("horizon_days", 30)}
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "arms.tsv").write_bytes(_arms_tsv(spec["v_last_ml"], spec["r_per_day"], arms, spec["horizon_days"]))
        write_json(out / "spec.json", spec)

    def build_twin(self, ctx: PatientContext, builder: Any, estimate_dir: Path, simulate_dir: Path) -> dict:
        est = json.loads((Path(estimate_dir) / "estimate.json").read_text())
        builder.add_file("inputs/spec.json", Path(simulate_dir) / "spec.json")
        builder.add_file("results/arms.tsv", Path(simulate_dir) / "arms.tsv")
        return {
            "parameters": {"r_per_day": {"value": est["r_per_day"], "sd": est["r_se"], "unit": "1/day",
                                         "estimated": True, "identifiable": est["r_se"] < 0.5 * abs(est["r_per_day"]),
                                         "source": "least squares of log volume"}},
            "maps": {},
            "simulations": [{"name": "arms", "outputs": ["results/arms.tsv"]}],
            "assumptions": ["exponential growth"],
            "seeds": {},
            "model_results": {"volumes_ml": est["volumes_ml"],
                              "arms": [line.split("\t")[0] for line in (Path(simulate_dir) / "arms.tsv").read_text().splitlines()[1:]]},
        }

    def resimulate(self, twin_dir: Path, doc: dict, sim_name: str) -> dict[str, bytes]:
        spec = json.loads((Path(twin_dir) / "inputs/spec.json").read_text())
        return {"results/arms.tsv": _arms_tsv(spec["v_last_ml"], spec["r_per_day"], spec["arms"], spec["horizon_days"])}

    def simulate_arm(self, twin_dir: Path, doc: dict, arm: dict | str) -> dict[str, bytes]:
        spec = json.loads((Path(twin_dir) / "inputs/spec.json").read_text())
        arm = arm if isinstance(arm, dict) else next(a for a in spec["arms"] if a["name"] == arm)
        return {f"arm_{arm['name']}.tsv": _arms_tsv(spec["v_last_ml"], spec["r_per_day"], [arm], spec["horizon_days"])}

    def summary(self, doc: dict) -> dict[str, Any]:
        return {"growth_rate_per_day": doc["parameters"]["r_per_day"]["value"],
                "n_visits": len(doc["model_results"]["volumes_ml"])}

    def trial(self):
        from toytwin.trial import ToyTrial

        return ToyTrial()

    def report_sections(self, twin_dir: Path, doc: dict) -> list[ReportSection]:
        return [ReportSection("Lesion volumes", items=doc["model_results"]["volumes_ml"]),
                ReportSection("Nothing to show")]
