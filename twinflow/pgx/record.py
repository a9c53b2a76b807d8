"""Per-patient pharmacogenomic and physiology record (JSON + TSV), embedded in the twin.

:func:`build_record` combines the germline calls (:mod:`twinflow.pgx.caller`), somatic
hotspots (:mod:`twinflow.pgx.somatic`), physiology at every drug date
(:mod:`twinflow.physiology`), individual PK (:mod:`twinflow.pkpd.drugs`) and genotype-guided
dose rules (:mod:`twinflow.pkpd.dosing`).  Every value carries its inputs and source.  The
record is a pure function of its inputs (no time stamps, paths or sample names).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from twinflow.io.atomic import write_json, write_tsv
from twinflow.pgx.caller import call_genes
from twinflow.pgx.somatic import HOTSPOT_CODONS, detect_hotspots, prior_shifts
from twinflow.pgx.definitions import source_info as pharmcat_source_info
from twinflow.pgx.tables import GENES, source_info
from twinflow.physiology import load_labs, physiology_at
from twinflow.pkpd.dosing import (
    calvert_dose_mg,
    fluoropyrimidine_dpyd,
    irinotecan_ugt1a1,
    iwpc_warfarin_weekly_dose_mg,
    thiopurine_tpmt_nudt15,
)
from twinflow.pkpd.drugs import DRUGS, individual_pk

__all__ = ["RECORD_SCHEMA", "TSV_COLUMNS", "build_record", "load_variant_table", "record_rows", "write_record"]

RECORD_SCHEMA = "twinflow.pgx_record/1"
TSV_COLUMNS = ["section", "item", "date", "value", "unit", "detail", "source"]

_ALIASES = {"5-fu": "fluorouracil", "5fu": "fluorouracil", "5-fluorouracil": "fluorouracil",
            "tmz": "temozolomide"}


def load_variant_table(table: pd.DataFrame | str | Path | None) -> pd.DataFrame | None:
    """A normalised variant table (DataFrame, or TSV written by twinflow.io.variants)."""
    if table is None or isinstance(table, pd.DataFrame):
        return table
    df = pd.read_csv(table, sep="\t", dtype={"chrom": str, "ref": str, "alt": str, "id": str, "gt": str,
                                              "filter": str, "zygosity": str, "orig_ref": str,
                                              "orig_alts": str},
                     keep_default_na=False,
                     na_values={c: [""] for c in ("qual", "alt_dosage", "depth", "allele_fraction")})
    for c in ("alt_dosage", "depth"):
        df[c] = df[c].astype("Int64")
    df["phased"] = df["phased"].astype(str).str.lower().isin(["true", "1"])
    return df


def _gene(calls: list[dict[str, Any]], gene: str) -> dict[str, Any] | None:
    return next((c for c in calls if c["gene"] == gene), None)


def gene_call(record: Mapping[str, Any] | None, gene: str) -> dict[str, Any] | None:
    """The germline call of ``gene`` in a patient record (:func:`build_record`), or None."""
    return _gene(((record or {}).get("pgx") or {}).get("genes", []), gene)


def _known(call: dict[str, Any] | None) -> str | None:
    if call is None or call.get("phenotype") in (None, "Indeterminate"):
        return None
    return call["phenotype"]


def _dose_mg(dose: float, unit: str, phys: dict[str, Any]) -> tuple[float | None, str]:
    bsa = phys["bsa_mosteller_m2"]["value"]
    wt = phys["inputs"]["weight_kg"]["value"]
    u = unit.strip()
    table = {"mg": (1.0, "as given"), "g": (1000.0, "g -> mg"), "ug": (1e-3, "ug -> mg"),
             "mg/m2": (bsa, f"x BSA {bsa:.3f} m2 (Mosteller)"), "g/m2": (1000.0 * bsa, f"x BSA {bsa:.3f} m2"),
             "mg/kg": (wt, f"x weight {wt:g} kg"), "ug/kg": (wt * 1e-3, f"x weight {wt:g} kg")}
    if u in table:
        f, how = table[u]
        return float(dose) * f, how
    return None, f"unit {unit!r} is not a drug amount"


def build_record(germline: pd.DataFrame | str | Path | None, somatic: pd.DataFrame | str | Path | None,
                 labs: pd.DataFrame | str | Path | None, patient: dict[str, Any],
                 treatments: Iterable[dict[str, Any]] = (), *, patient_id: str | None = None,
                 genes: Iterable[str] = GENES) -> dict[str, Any]:
    """Build the record (a JSON-ready dict; layout in docs/pgx.md)."""
    mar = str(patient.get("pgx_missing_as_reference", "")).strip().lower() in ("1", "true", "yes")
    gdf = load_variant_table(germline)
    sdf = load_variant_table(somatic)
    labs_df = load_labs(labs)
    calls = call_genes(gdf, tuple(genes), missing_as_reference=mar) if gdf is not None else []
    hits = detect_hotspots(sdf) if sdf is not None else []
    shifts = prior_shifts(hits)
    rows = sorted((dict(t) for t in treatments), key=lambda t: (str(t.get("date")), str(t.get("agent"))))
    drug_rows = [t for t in rows if str(t.get("kind", "")).lower() == "drug"]
    dates = sorted({str(t["date"])[:10] for t in drug_rows})
    first = dates[0] if dates else (str(rows[0]["date"])[:10] if rows else None)
    phys_dates = sorted(set(dates) | ({first} if first else set()))
    if not phys_dates:
        last_lab = str(labs_df["date"].max())[:10] if len(labs_df) else "9999-12-31"
        phys_dates = [last_lab]
    physiology = {d: physiology_at(labs_df, patient, d) for d in phys_dates}

    dpyd, ugt, tpmt, nudt, cyp2d6 = (_gene(calls, g) for g in ("DPYD", "UGT1A1", "TPMT", "NUDT15", "CYP2D6"))
    cyp2c9, vkorc1 = _gene(calls, "CYP2C9"), _gene(calls, "VKORC1")
    dpyd_as = dpyd["activity_score"] if dpyd and dpyd.get("phenotype") != "Indeterminate" else None

    administrations = []
    assumptions: list[str] = []
    for t in drug_rows:
        d = str(t["date"])[:10]
        phys = physiology[d]
        agent = _ALIASES.get(str(t.get("agent", "")).strip().lower(), str(t.get("agent", "")).strip().lower())
        entry: dict[str, Any] = {"date": d, "agent": agent, "dose": float(t["dose"]), "unit": str(t["unit"])}
        if str(t["unit"]).strip() == "mg*min/mL":
            gfr = phys["crcl_cockcroft_gault_ml_min"]["value"]
            calv = calvert_dose_mg(float(t["dose"]), gfr)
            calv["gfr_estimate"] = "Cockcroft-Gault creatinine clearance (as in Calvert's use of measured GFR)"
            entry["dose_mg"], entry["dose_conversion"] = calv["dose_mg"], calv
        else:
            entry["dose_mg"], entry["dose_conversion"] = _dose_mg(float(t["dose"]), str(t["unit"]), phys)
        if agent in DRUGS:
            cov = {"bsa_m2": phys["bsa_mosteller_m2"]["value"], "weight_kg": phys["inputs"]["weight_kg"]["value"],
                   "sex": phys["inputs"]["sex"], "gfr_ml_min": phys["crcl_cockcroft_gault_ml_min"]["value"],
                   "dpyd_activity_score": dpyd_as, "cyp2d6_phenotype": _known(cyp2d6),
                   "ugt1a1_phenotype": _known(ugt)}
            entry["pk"] = individual_pk(agent, cov)
            assumptions += entry["pk"]["assumptions"]
        else:
            entry["pk"] = None
        if agent in ("fluorouracil", "capecitabine"):
            entry["genotype_rule"] = fluoropyrimidine_dpyd(dpyd_as)
        elif agent == "irinotecan":
            entry["genotype_rule"] = irinotecan_ugt1a1(_known(ugt))
        elif agent in ("mercaptopurine", "azathioprine", "thioguanine"):
            entry["genotype_rule"] = thiopurine_tpmt_nudt15(_known(tpmt), _known(nudt), agent)
        entry["eligibility"] = phys["eligibility"]
        administrations.append(entry)

    base = physiology[phys_dates[0]]
    c9 = cyp2c9["diplotypes"][0] if cyp2c9 and len(cyp2c9.get("diplotypes", [])) == 1 else None
    warfarin = iwpc_warfarin_weekly_dose_mg(
        float(patient["age_years"]), base["inputs"]["height_cm"]["value"], base["inputs"]["weight_kg"]["value"],
        vkorc1=vkorc1.get("rs9923231_genotype") if vkorc1 else None, cyp2c9=c9, race=patient.get("race"))
    for d in phys_dates:
        assumptions += physiology[d]["assumptions"]
    for c in calls:
        if c["missing_positions"] and not c["missing_as_reference"]:
            assumptions.append(f"{c['gene']}: {len(c['missing_positions'])} allele-defining positions not "
                               "covered (no-call); undetectable alleles: "
                               + (", ".join(c["untested_alleles"]) or "none"))
    src = dict(pharmcat_source_info())
    src["matcher"] = "pharmcat (CYP2D6: legacy)"
    src["legacy_tables"] = source_info()
    return {
        "schema": RECORD_SCHEMA,
        "patient_id": patient_id,
        "pgx": {"source": src, "missing_as_reference": mar, "genes": calls},
        "somatic": {"hotspots": hits, "prior_shifts": shifts,
                    "hotspot_codons": [f"{h.gene} {h.ref_aa}{h.codon}" for h in HOTSPOT_CODONS],
                    "source": "twinflow.pgx.somatic.HOTSPOT_CODONS (COSMIC / cancerhotspots.org, GRCh38)"},
        "physiology": physiology,
        "administrations": administrations,
        "dose_rules": {"warfarin_iwpc": warfarin,
                       "fluoropyrimidine_dpyd": fluoropyrimidine_dpyd(dpyd_as),
                       "irinotecan_ugt1a1": irinotecan_ugt1a1(_known(ugt)),
                       "thiopurine_tpmt_nudt15": thiopurine_tpmt_nudt15(_known(tpmt), _known(nudt))},
        "assumptions": sorted(set(assumptions)),
    }


def _s(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.10g}"
    return str(x)


def record_rows(record: dict[str, Any]) -> pd.DataFrame:
    """Long table of the record (:data:`TSV_COLUMNS`), one value per row."""
    rows = []
    for c in record["pgx"]["genes"]:
        ver = f"{c['source']['package']} {c['source']['version']}" if c.get("source") else ""
        detail = json.dumps({"missing_positions": c["missing_positions"], "ambiguous": c["ambiguous"]}, sort_keys=True)
        rows.append(("pgx", f"{c['gene']}.diplotypes", "", " | ".join(c["diplotypes"]), "", detail, ver))
        rows.append(("pgx", f"{c['gene']}.phenotype", "", c["phenotype"], "", "", ver))
        if c.get("activity_score") is not None:
            rows.append(("pgx", f"{c['gene']}.activity_score", "", _s(float(c["activity_score"])), "", "", ver))
    for h in record["somatic"]["hotspots"]:
        rows.append(("somatic", f"{h['gene']} {h['protein']}", "", f"{h['chrom']}:{h['pos']} {h['ref']}>{h['alt']}",
                     "", json.dumps({"allele_fraction": h["allele_fraction"], "depth": h["depth"]}, sort_keys=True),
                     record["somatic"]["source"]))
    units = {"bsa_mosteller_m2": "m2", "bsa_dubois_m2": "m2", "bmi_kg_m2": "kg/m2",
             "egfr_ml_min_1_73m2": "mL/min/1.73m2", "gfr_ml_min": "mL/min", "crcl_cockcroft_gault_ml_min": "mL/min",
             "hepatic_function": ""}
    for d, p in sorted(record["physiology"].items()):
        inputs = json.dumps({k: (v["value"] if isinstance(v, dict) else v) for k, v in p["inputs"].items()}, sort_keys=True)
        for k, u in units.items():
            rows.append(("physiology", k, d, _s(p[k]["value"]), u, inputs, p[k]["source"]))
        rows.append(("physiology", "dosing_eligible", d, _s(p["eligibility"]["eligible"]), "",
                     "; ".join(p["eligibility"]["reasons"]), "ANC >= 1.5, platelets >= 100 x10^9/L"))
    for a in record["administrations"]:
        rows.append(("dose", a["agent"], a["date"], _s(a["dose_mg"]), "mg", f"{_s(a['dose'])} {a['unit']}", ""))
        if a.get("pk"):
            pk = a["pk"]
            for k, u in (("cl_l_h", "L/h"), ("v_l", "L"), ("ka_per_h", "1/h"), ("f", "1")):
                if pk.get(k) is not None:
                    rows.append(("pk", f"{a['agent']}.{k}", a["date"], _s(float(pk[k])), u,
                                 json.dumps(pk["covariates"], sort_keys=True), "; ".join(pk["sources"])))
        if a.get("genotype_rule"):
            g = a["genotype_rule"]
            frac = g.get("dose_fraction", g.get("dose_fraction_range"))
            rows.append(("dose_rule", a["agent"], a["date"], _s(frac if not isinstance(frac, list) else "-".join(map(_s, frac))),
                         "fraction of standard dose", g["recommendation"], g["source"]))
    w = record["dose_rules"]["warfarin_iwpc"]
    rows.append(("dose_rule", "warfarin_iwpc", "", _s(w["weekly_dose_mg"]), "mg/week",
                 json.dumps(w["inputs"], sort_keys=True), w["source"]))
    for s in record["assumptions"]:
        rows.append(("assumption", "", "", s, "", "", ""))
    return pd.DataFrame(rows, columns=TSV_COLUMNS)


def write_record(record: dict[str, Any], out_json: str | Path, out_tsv: str | Path) -> None:
    """Write the record as JSON and as the long TSV (both atomic, deterministic)."""
    write_json(out_json, record)
    write_tsv(out_tsv, record_rows(record))
