"""Cardiac twin: cine MRI -> LV function -> calibrated 0D circulation -> metoprolol arms.

The plug-in class :class:`CardiacTwin` (entry point ``twinflow.models: cardiac``).

Stages (see :class:`twinflow.models.base.TwinModel`):

* segment   every visit with a ``CINE_SAX`` series: automatic LV blood pool and myocardium
            (:mod:`twinflow.segment.cardiac`), EDV/ESV/SV/EF/mass by summation of discs.
            Expert contours (``label_path`` = a folder with ``i-contours/`` and optionally
            ``o-contours/``, one ``IM-0001-NNNN-icontour-manual.txt`` per DICOM image number,
            which needs the cine as a DICOM directory) replace the automatic masks where they
            exist and the automatic result is scored against them.
* estimate  the latest visit's EDV/ESV plus the latest blood pressure and heart rate from the
            labs -> :func:`twinflow.models.cardiac.calibrate.calibrate`.
* simulate  the configured arms (``models.cardiac.arms``) with the patient's CYP2D6 phenotype
            from the pharmacogenomic record -> haemodynamics per arm and time point, PV loops.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from twinflow.io.atomic import dumps_json, write_bytes, write_json
from twinflow.models.base import PatientContext, ReportSection, TwinModel, schema_beside

if TYPE_CHECKING:      # imported where used: the workflow imports this plug-in at parse time
    import SimpleITK as sitk

VERSION = "1.0.0"
DEFAULT_ARMS = [
    {"name": "no_drug", "dose_mg": 0.0, "interval_h": 24.0},
    {"name": "metoprolol_50mg_bid", "dose_mg": 50.0, "interval_h": 12.0},
    {"name": "metoprolol_100mg_bid", "dose_mg": 100.0, "interval_h": 12.0},
    {"name": "metoprolol_200mg_daily", "dose_mg": 200.0, "interval_h": 24.0},
]
UNITS = {"hr_bpm": "/min", "lv_emax_mmhg_ml": "mmHg/ml", "v_stressed_ml": "ml", "r_sys_mmhg_s_ml": "mmHg s/ml",
         "c_sa_ml_mmhg": "ml/mmHg"}


def _contour_dir(row: Any) -> Path | None:
    if row.label_path and Path(row.label_path).is_dir() and (Path(row.label_path) / "i-contours").is_dir():
        return Path(row.label_path)
    return None


def _labels_image(seg, cine: sitk.Image) -> sitk.Image:
    """Masks [T, Z, R, C] back onto the cine's voxel grid as a 4D uint8 label image."""
    import SimpleITK as sitk
    lab = np.zeros(seg.blood.shape, np.uint8)
    lab[seg.myocardium] = 2
    lab[seg.blood] = 1
    np_axis = 3 - seg.slice_axis
    inplane = [a for a in (1, 2, 3) if a != np_axis]
    perm = (0, np_axis, *inplane)
    inv = np.argsort(perm)
    arr = np.ascontiguousarray(np.transpose(lab, inv))
    img = sitk.GetImageFromArray(arr, isVector=False)
    img.CopyInformation(cine)
    return img


def arms_outputs(params: dict, arms: list[dict], phenotype: str | None) -> dict[str, bytes]:
    """Deterministic files of the arm simulation (shared by ``simulate`` and ``verify``)."""
    from twinflow.models.cardiac.arms import simulate_arms
    from twinflow.models.cardiac.circulation import DEFAULT_PARAMS, Circulation

    p = DEFAULT_PARAMS.with_(**params)
    out = simulate_arms(p, arms, phenotype, solver=Circulation())
    import pandas as pd

    table = pd.DataFrame(out["table"])
    buf = table.to_csv(sep="\t", index=False, float_format="%.6g", lineterminator="\n")
    return {
        "results/arms.tsv": buf.encode(),
        "results/pv_loops.json": dumps_json(out["pv_loops"], ndigits=8).encode(),
        "results/pk.json": dumps_json({"pk": out["pk"], "assumptions": out["assumptions"]}, ndigits=8).encode(),
    }


class CardiacTwin(TwinModel):
    name = "cardiac"
    version = VERSION
    series = ("CINE_SAX",)
    config_schema = schema_beside(__file__, "config.schema.yaml")
    results_schema = schema_beside(__file__, "results.schema.yaml")
    stage_modules = {
        "segment": ("twinflow.segment.cardiac", "twinflow.segment.cardiac_qc", "twinflow.io.contours",
                    "twinflow.io.imaging"),
        "estimate": ("twinflow.models.cardiac.calibrate",),
        "simulate": ("twinflow.models.cardiac.arms",),
        "twin": ("twinflow.models.cardiac.arms",),
    }
    description = "LV function from cine MRI; closed-loop 0D circulation; metoprolol PK/PD by CYP2D6"

    # ------------------------------------------------------------------ segment
    def segment_visits(self, ctx: PatientContext) -> list[str]:
        return [v for v, _ in ctx.visits() if "CINE_SAX" in ctx.series_of(v)]

    def segment(self, ctx: PatientContext, visit: str, out_dir: Path) -> None:
        import nibabel as nib
        import SimpleITK as sitk
        from twinflow.io.imaging import read_image_with_info, write_nifti
        from twinflow.segment import cardiac as cs
        from twinflow.segment.cardiac_qc import qc_record

        row = ctx.series_of(visit)["CINE_SAX"]
        contours = _contour_dir(row)
        if contours is not None:
            cine, _ = read_image_with_info(row.path, patient=ctx.patient_id, display_path=row.path_display)
        else:
            cine = sitk.ReadImage(str(ctx.image_path(visit, "CINE_SAX")))
        seg = cs.segment_lv(cine)
        if contours is None:
            # ITK reports a NIfTI time step in seconds whatever the header's unit: take it from
            # the header (ingest writes milliseconds)
            hdr = nib.load(str(ctx.image_path(visit, "CINE_SAX"))).header
            dt = float(hdr.get_zooms()[3]) if len(hdr.get_zooms()) > 3 else None
            unit = hdr.get_xyzt_units()[1]
            if dt is not None:
                seg.frame_interval_ms = dt * {"sec": 1000.0, "msec": 1.0, "usec": 1e-3}.get(unit, float("nan"))
        image = cs.cine_array(cine, seg.slice_axis)
        auto_fn = cs.lv_function(seg)
        auto_qc = qc_record(seg, image, auto_fn)
        score, expert, source = None, None, "automatic"
        if contours is not None:
            from twinflow.io.contours import dicom_slice_phase_index, read_polygons_per_image

            frames = dicom_slice_phase_index(row.path)
            shape = image.shape[2:]
            endo = cs.expert_masks(read_polygons_per_image(contours / "i-contours", patient=ctx.patient_id), frames, shape)
            epi = (cs.expert_masks(read_polygons_per_image(contours / "o-contours", patient=ctx.patient_id), frames, shape)
                   if (contours / "o-contours").is_dir() else None)
            score = cs.score_against_contours(seg, endo, epi)
            seg = cs.apply_expert_contours(seg, endo, epi)
            cs.add_myocardium(seg, image, [seg.ed_frame, seg.es_frame])
            expert, source = endo, "expert contours where given, automatic elsewhere"
        fn = cs.lv_function(seg)
        qc = qc_record(seg, image, fn) if contours is not None else auto_qc
        rec = cs.cardiac_function_record(fn, source=source, score=score)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_nifti(_labels_image(seg, cine), out_dir / "segmentation.nii.gz")
        curve = cs.volume_curve_ml(seg.blood, seg.spacing_mm, fn.get("slices_used"))
        write_json(out_dir / "segmentation.json", {
            "patient_id": ctx.patient_id, "visit": visit, "cardiac_function": rec,
            "automatic_function": {k: v for k, v in auto_fn.items()},
            "expert_agreement": score, "lv_volume_curve_ml": [float(x) for x in curve],
            "frame_interval_ms": seg.frame_interval_ms, "labels": {"1": "LV blood pool", "2": "LV myocardium"},
            "qc": qc, "qc_automatic": auto_qc, "notes": seg.notes})
        cs.overlay_png(image, seg, seg.ed_frame, out_dir / "overlay_ed.png", expert=expert)
        cs.overlay_png(image, seg, seg.es_frame, out_dir / "overlay_es.png", expert=expert)

    # ------------------------------------------------------------------ estimate
    def estimate(self, ctx: PatientContext, out_dir: Path) -> None:
        import pandas as pd

        from twinflow.models.cardiac.calibrate import calibrate, targets_from_labs

        visits = self.segment_visits(ctx)
        if not visits:
            from twinflow.errors import InputError
            raise InputError("cardiac twin needs a CINE_SAX series", patient=ctx.patient_id)
        seg = json.loads((ctx.segment_dir(visits[-1]) / "segmentation.json").read_text())
        fn = seg["cardiac_function"]
        labs_tsv = ctx.labs_table
        labs = pd.read_csv(labs_tsv, sep="\t", dtype={"loinc": str}) if labs_tsv.is_file() else None
        t = targets_from_labs(labs, patient=ctx.patient_id)
        cal = calibrate(fn["edv_ml"], fn["esv_ml"], t["sbp_mmhg"], t["dbp_mmhg"], t["hr_bpm"], patient=ctx.patient_id)
        out_dir.mkdir(parents=True, exist_ok=True)
        qc = seg.get("qc") or {}
        write_json(out_dir / "estimate.json", {
            "patient_id": ctx.patient_id, "visit": visits[-1], "cardiac_function": fn,
            "segmentation_qc": qc, "targets_from_labs": t, "calibration": cal.to_dict()})

    # ------------------------------------------------------------------ simulate
    def _phenotype(self, ctx: PatientContext) -> tuple[str | None, str]:
        if ctx.pgx_record.is_file():
            from twinflow.pgx.record import gene_call

            call = gene_call(json.loads(ctx.pgx_record.read_text()), "CYP2D6")
            if call is not None:
                return call.get("phenotype"), "CYP2D6 phenotype from the germline VCF (copy number and hybrid alleles are not visible in a VCF)"
        return None, "no CYP2D6 call: population (normal metaboliser) metoprolol clearance"

    def simulate(self, ctx: PatientContext, estimate_dir: Path, out_dir: Path) -> None:
        est = json.loads((estimate_dir / "estimate.json").read_text())
        arms = ctx.config.get("arms") or DEFAULT_ARMS
        phenotype, note = self._phenotype(ctx)
        files = arms_outputs(est["calibration"]["params"], arms, phenotype)
        for rel, data in files.items():
            write_bytes(out_dir / rel, data)
        write_json(out_dir / "simulation.json", {"params": est["calibration"]["params"], "arms": arms,
                                                 "cyp2d6_phenotype": phenotype, "phenotype_note": note})

    # ------------------------------------------------------------------ twin
    def build_twin(self, ctx: PatientContext, builder: Any, estimate_dir: Path, simulate_dir: Path) -> dict:
        est = json.loads((estimate_dir / "estimate.json").read_text())
        qc = est.get("segmentation_qc") or {}
        sim = json.loads((simulate_dir / "simulation.json").read_text())
        cal = est["calibration"]
        ident = cal.get("identifiability", {}).get("identifiable", {})
        params = {}
        for k, v in cal["params"].items():
            estimated = k in cal["estimated"]
            params[k] = {"value": v, "unit": UNITS.get(k, k.rsplit("_", 1)[-1]), "estimated": estimated,
                         "identifiable": bool(ident.get(k)) if estimated else None,
                         "sd": (v * cal["rel_sd"][k]) if estimated else None,
                         "ci95": cal["ci95"].get(k) if estimated else None,
                         "source": "calibrated to EDV/ESV (+ BP)" if estimated else
                         ("model input (measured heart rate)" if k == "hr_bpm" else "population default")}
        builder.add_json("inputs/simulation.json", sim)
        for rel in ("results/arms.tsv", "results/pv_loops.json", "results/pk.json"):
            builder.add_file(rel, simulate_dir / rel)
        seg_dir = ctx.segment_dir(est["visit"])
        builder.add_file("maps/lv_segmentation.nii.gz", seg_dir / "segmentation.nii.gz")
        for name in ("overlay_ed.png", "overlay_es.png"):
            builder.add_file(f"plots/{name}", seg_dir / name)
        self._pv_plot(simulate_dir / "results/pv_loops.json", builder.path("plots/pv_loops.png"))
        arms_rows = _read_tsv_rows(simulate_dir / "results/arms.tsv")
        return {
            "parameters": params,
            "maps": {"lv_segmentation": "maps/lv_segmentation.nii.gz"},
            "simulations": [{"name": "arms", "kind": "metoprolol arms, circulation at trough and peak",
                             "outputs": ["results/arms.tsv", "results/pv_loops.json", "results/pk.json"]}],
            "model_results": {
                "cardiac_function": est["cardiac_function"],
                "segmentation_qc": {k: qc.get(k) for k in ("plausible", "flags", "min_slice_confidence", "per_slice")},
                "calibration": {k: cal[k] for k in ("targets", "fitted", "residuals_sd_units", "n_model_evaluations",
                                                    "converged", "identifiability", "correlation", "estimated")},
                "arms_summary": arms_rows,
            },
            "flags": _qc_flags(qc),
            "assumptions": list(cal["assumptions"]) + [sim["phenotype_note"]] + [
                "segmentation QC: per-slice confidence = wall x contrast x temporal x enclosure scores; the twin is "
                "flagged (not trusted) when EF is outside 5-85 %, ESV is not below EDV, volumes jump between "
                "neighbouring slices, the cavity leaves the myocardium or the slice stack has gaps"],
            "seeds": {},
        }

    @staticmethod
    def _pv_plot(pv_json: Path, out_png: Path) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        loops = json.loads(pv_json.read_text())
        fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
        for arm in sorted(loops):
            lp = loops[arm].get("trough") or next(iter(loops[arm].values()))
            ax.plot(lp["lv_volume_ml"], lp["lv_pressure_mmhg"], label=arm)
        ax.set_xlabel("LV volume (ml)")
        ax.set_ylabel("LV pressure (mmHg)")
        ax.set_title("Pressure-volume loops at steady-state trough")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_png, format="png", metadata={"Software": None})
        plt.close(fig)

    def resimulate(self, twin_dir: Path, doc: dict, sim_name: str) -> dict[str, bytes]:
        sim = json.loads((Path(twin_dir) / "inputs/simulation.json").read_text())
        if sim_name != "arms":
            raise KeyError(sim_name)
        return arms_outputs(sim["params"], sim["arms"], sim["cyp2d6_phenotype"])

    def simulate_arm(self, twin_dir: Path, doc: dict, arm: dict | str) -> dict[str, bytes]:
        sim = json.loads((Path(twin_dir) / "inputs/simulation.json").read_text())
        if isinstance(arm, str):
            match = [a for a in sim["arms"] + DEFAULT_ARMS if a["name"] == arm]
            if not match:
                raise KeyError(f"unknown arm {arm!r}; known: {', '.join(a['name'] for a in sim['arms'])}")
            arm = match[0]
        return arms_outputs(sim["params"], [arm], sim["cyp2d6_phenotype"])

    # ------------------------------------------------------------------ in-silico trials
    def trial(self):
        from twinflow.models.cardiac.trial import CardiacTrial

        return CardiacTrial()

    # ------------------------------------------------------------------ reporting
    def summary(self, doc: dict) -> dict[str, Any]:
        res = doc["model_results"]
        cf = res["cardiac_function"]
        row: dict[str, Any] = {k: cf.get(k) for k in ("edv_ml", "esv_ml", "ef_percent", "lv_mass_g")}
        row["source"] = cf.get("source")
        qc = res.get("segmentation_qc") or {}
        row["segmentation_plausible"] = qc.get("plausible")
        row["min_slice_confidence"] = qc.get("min_slice_confidence")
        for k in ("lv_emax_mmhg_ml", "v_stressed_ml", "r_sys_mmhg_s_ml"):
            p = doc["parameters"].get(k) or {}
            row[k] = p.get("value")
        trough = {r["arm"]: r for r in res["arms_summary"] if r.get("timepoint") == "trough"}
        for arm in sorted(trough):
            row[f"hr_bpm_{arm}"] = trough[arm].get("hr_bpm")
        return row

    def report_sections(self, twin_dir: Path, doc: dict) -> list[ReportSection]:
        res = doc["model_results"]
        d = Path(twin_dir) / "plots"
        cf = {k: v for k, v in res["cardiac_function"].items() if not isinstance(v, (dict, list))}
        return [
            ReportSection("Cardiac function", items=cf, figures=[
                (str(d / "overlay_ed.png"), "LV segmentation at end-diastole (red: endocardium, green: epicardium)"),
                (str(d / "overlay_es.png"), "LV segmentation at end-systole")]),
            ReportSection("Segmentation QC (per slice)", items={
                "plausible": (res.get("segmentation_qc") or {}).get("plausible"),
                "flags": "; ".join(f["message"] for f in (res.get("segmentation_qc") or {}).get("flags") or []) or "none"},
                table=[{k: v for k, v in r.items() if not isinstance(v, (dict, list))}
                       for r in (res.get("segmentation_qc") or {}).get("per_slice") or []]),
            ReportSection("Metoprolol arms", table=res["arms_summary"], figures=[
                (str(d / "pv_loops.png"), "Simulated LV pressure-volume loops per metoprolol arm (steady-state trough)")]),
        ]


def _qc_flags(qc: dict) -> list[str]:
    """twin.json flags from the segmentation QC: an implausible segmentation means the
    calibration rests on volumes that cannot be trusted."""
    flags = [f"segmentation {f['severity']}: {f['message']}" for f in qc.get("flags") or []]
    if qc and not qc.get("plausible", True):
        codes = sorted({f["code"] for f in qc.get("flags") or [] if f["severity"] != "warning"})
        flags.insert(0, f"segmentation implausible ({', '.join(codes)}): the calibration rests on volumes that "
                        "cannot be trusted")
    return flags


def _read_tsv_rows(path: Path) -> list[dict]:
    import pandas as pd

    df = pd.read_csv(path, sep="\t")
    return json.loads(df.to_json(orient="records"))
