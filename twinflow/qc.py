"""Per-patient and cohort QC summaries of the ingest stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from twinflow.errors import InputError
from twinflow.io.atomic import write_json, write_tsv


def check_implausible_labs(qc: dict, mode: str, *, patient: str, path: str, outputs: Iterable[str] = ()) -> None:
    """With ``ingest.implausible_labs: error`` an implausible lab value fails the patient."""
    n = int(qc.get("n_implausible", 0))
    if mode == "error" and n:
        for out in outputs:
            Path(out).unlink(missing_ok=True)
        bad = sorted(k for k, v in qc.get("analytes", {}).items() if v.get("n_implausible"))
        raise InputError(f"{n} physiologically implausible lab value(s) ({', '.join(bad)}); "
                         "fix them or set ingest.implausible_labs: flag", patient=patient, path=path)


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def patient_qc(out: str, *, patient: str, row: dict, images: list, treatments: list[dict],
               error: str | None = None) -> dict:
    """Summarise the ingest QC records that lie beside ``out`` (``<results>/<patient>/ingest/``)."""
    if error:
        raise InputError(error)
    base = Path(out).parent
    flags: list[str] = []
    visits: dict[str, dict[str, Any]] = {}
    for img in images:
        qc = _read(base / "imaging" / img.visit / f"{img.series}.qc.json") or {}
        v = visits.setdefault(img.visit, {"visit": img.visit, "date": img.date, "series": {}})
        entry = {k: qc.get(k) for k in ("shape", "spacing_mm", "source_format", "flags", "n_frames")}
        entry["source"] = img.path_display
        label = _read(base / "imaging" / img.visit / f"{img.series}.label.qc.json")
        if label is not None:
            entry["label"] = {k: label.get(k) for k in ("labels", "resampled", "flags") if k in label}
            entry["label"]["source"] = img.label_display
        v["series"][img.series] = entry
        flags += [f"{img.visit}/{img.series}: {f}" for f in (qc.get("flags") or [])]
        if label is not None:
            flags += [f"{img.visit}/{img.series} label: {f}" for f in (label.get("flags") or [])]
    modal = {}
    for kind in ("germline", "somatic", "labs"):
        qc = _read(base / f"{kind}.qc.json")
        if qc is not None:
            modal[kind] = qc
    labs = modal.get("labs")
    if labs and labs.get("n_implausible"):
        flags.append(f"labs: {labs['n_implausible']} implausible value(s)")
    rt = [t for t in treatments if t["kind"] == "radiotherapy"]
    drugs: dict[str, dict[str, Any]] = {}
    for t in treatments:
        if t["kind"] == "drug":
            d = drugs.setdefault(t["agent"], {"n_administrations": 0, "units": set()})
            d["n_administrations"] += 1
            d["units"].add(t["unit"])
    for d in drugs.values():
        d["units"] = sorted(d["units"])
    summary = {
        "patient_id": patient,
        "twin_model": row.get("twin_model"),
        "demographics": {k: row.get(k) for k in ("sex", "age_years", "height_cm", "weight_kg")},
        "visits": [visits[k] for k in sorted(visits, key=lambda k: (visits[k]["date"], k))],
        "variants": {k: modal[k] for k in ("germline", "somatic") if k in modal},
        "labs": labs,
        "treatments": {
            "n_rt_fractions": len(rt),
            "rt_total_gy": round(sum(t["dose"] for t in rt), 6),
            "drugs": drugs,
            "first_date": treatments[0]["date"] if treatments else None,
            "last_date": treatments[-1]["date"] if treatments else None,
        },
        "flags": flags,
    }
    write_json(out, summary)
    return summary


COHORT_QC_COLUMNS = ["patient_id", "status", "problem", "twin_model", "n_visits", "n_images", "n_expert_labels",
                     "germline_rows", "somatic_rows", "lab_rows", "lab_implausible", "n_rt_fractions", "rt_total_gy",
                     "drugs", "n_flags", "flags"]


def cohort_qc(qc_files: list[str], out: str, problems: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per patient: what was ingested and which QC flags were raised; a patient whose
    sheet rows could not be used (``problems``: patient -> message) has status ``failed``."""
    rows: list[dict[str, Any]] = [{"patient_id": pid, "status": "failed", "problem": msg}
                                  for pid, msg in sorted((problems or {}).items())]
    for f in sorted(qc_files):
        q = json.loads(Path(f).read_text())
        n_images = sum(len(v["series"]) for v in q["visits"])
        n_labels = sum(1 for v in q["visits"] for s in v["series"].values() if "label" in s)
        var = q.get("variants", {})
        labs = q.get("labs") or {}
        rows.append({
            "patient_id": q["patient_id"], "status": "ok", "problem": "", "twin_model": q["twin_model"],
            "n_visits": len(q["visits"]), "n_images": n_images, "n_expert_labels": n_labels,
            "germline_rows": var.get("germline", {}).get("n_rows", ""),
            "somatic_rows": var.get("somatic", {}).get("n_rows", ""),
            "lab_rows": labs.get("n_rows", ""), "lab_implausible": labs.get("n_implausible", ""),
            "n_rt_fractions": q["treatments"]["n_rt_fractions"],
            "rt_total_gy": q["treatments"]["rt_total_gy"],
            "drugs": ";".join(sorted(q["treatments"]["drugs"])),
            "n_flags": len(q["flags"]), "flags": "; ".join(q["flags"]),
        })
    df = pd.DataFrame(rows, columns=COHORT_QC_COLUMNS).sort_values("patient_id", kind="stable")
    write_tsv(out, df)
    return df
