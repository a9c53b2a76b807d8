"""Offline HTML reports: one per patient (twin summary, QC images, plots, provenance) and a
cohort index.  Images are embedded (base64), so a report is a single file that opens in a
browser without network access or the results folder next to it."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any, Iterable

from twinflow.io.atomic import write_text

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4} .num{text-align:right;font-variant-numeric:tabular-nums}
.flag{color:#a40} .ok{color:#060} figure{display:inline-block;margin:.4em;vertical-align:top}
figcaption{font-size:.85em;color:#555;max-width:420px} img{max-width:420px;border:1px solid #ccc}
code{font-size:.9em} .muted{color:#777;font-size:.9em}
"""


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return esc(x)


def img_tag(path: str | Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def table(rows: list[dict], cols: list[str] | None = None) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    cols = cols or list(rows[0])
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{fmt(r.get(c))}</td>' if isinstance(r.get(c), (int, float)) else f"<td>{fmt(r.get(c))}</td>"
        for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def kv_table(d: dict) -> str:
    return table([{"key": k, "value": v if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True)}
                  for k, v in d.items()], ["key", "value"])


def patient_report(out: str | Path, *, twin: dict, qc: dict, figures: Iterable[tuple[str, str]],
                   pgx: dict | None = None) -> None:
    """``figures``: (png path, caption) pairs, embedded in order."""
    pid = twin["patient_id"]
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>twinflow: {esc(pid)}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>Digital twin of patient {esc(pid)}</h1>",
             f"<p class=muted>model <b>{esc(twin['model']['name'])}</b> {esc(twin['model']['version'])} "
             f"&middot; twin format {esc(twin['format_version'])} &middot; pipeline commit "
             f"<code>{esc(twin['pipeline'].get('git_commit'))}</code>"
             f"{' (dirty tree)' if twin['pipeline'].get('git_dirty') else ''}</p>"]
    parts.append("<h2>Calibrated parameters</h2>")
    prow = [{"parameter": k, "value": v.get("value"), "sd": v.get("sd"), "unit": v.get("unit", ""),
             "identifiable": v.get("identifiable"), "estimated": v.get("estimated", True)}
            for k, v in twin["parameters"].items()]
    parts.append(table(prow, ["parameter", "value", "sd", "unit", "identifiable", "estimated"]))
    if twin.get("forecast"):
        parts.append("<h2>Forecast of held-out visits</h2>" + table(twin["forecast"]))
    if twin.get("cardiac_function"):
        parts.append("<h2>Cardiac function</h2>" + kv_table(twin["cardiac_function"]))
    for key, title in (("arms_summary", "Treatment arms"),):
        if twin.get(key):
            parts.append(f"<h2>{title}</h2>" + table(twin[key]))
    if twin.get("assumptions"):
        parts.append("<h2>Assumptions</h2><ul>" + "".join(f"<li>{esc(a)}</li>" for a in twin["assumptions"]) + "</ul>")
    if pgx:
        genes = (pgx.get("pgx") or {}).get("genes") or pgx.get("genes") or []
        if genes:
            parts.append("<h2>Pharmacogenomics</h2>" + table(
                [{"gene": g.get("gene"), "diplotypes": " | ".join(g.get("diplotypes") or []),
                  "phenotype": g.get("phenotype"), "activity_score": g.get("activity_score"),
                  "missing positions": len(g.get("missing_positions") or [])} for g in genes]))
        phys = pgx.get("physiology") or {}
        if phys:
            date = sorted(phys)[0]
            first = phys[date]
            shown = {k: v for k, v in first.items() if k not in ("inputs", "assumptions") and not isinstance(v, (dict, list))}
            parts.append(f"<h3>Physiology (at the first treatment date, {esc(date)})</h3>" + kv_table(shown))
            if first.get("assumptions"):
                parts.append("<ul>" + "".join(f"<li>{esc(a)}</li>" for a in first["assumptions"]) + "</ul>")
        hs = (pgx.get("somatic") or {}).get("hotspots") or []
        if hs:
            parts.append("<h3>Somatic hotspots</h3>" + table(
                [{k: h.get(k) for k in ("gene", "protein", "chrom", "pos", "ref", "alt", "allele_fraction")} for h in hs]))
    figs = list(figures)
    if figs:
        parts.append("<h2>Figures</h2>")
        for path, caption in figs:
            if Path(path).is_file():
                parts.append(f"<figure>{img_tag(path, caption)}<figcaption>{esc(caption)}</figcaption></figure>")
    parts.append("<h2>Ingest QC</h2>")
    qrows = []
    for v in qc.get("visits", []):
        for s, e in v["series"].items():
            qrows.append({"visit": v["visit"], "date": v["date"], "series": s, "source": e.get("source"),
                          "format": e.get("source_format"), "shape": "x".join(str(x) for x in (e.get("shape") or [])),
                          "spacing_mm": " x ".join(f"{x:.3g}" for x in (e.get("spacing_mm") or [])),
                          "flags": ", ".join(e.get("flags") or [])})
    parts.append(table(qrows))
    if qc.get("flags"):
        parts.append("<p class=flag>QC flags: " + esc("; ".join(qc["flags"])) + "</p>")
    parts.append("<h2>Provenance</h2>")
    parts.append(table([{"role": i["role"], "path": i["path"], "bytes": i["size"], "sha256": i["sha256"][:16] + "..."}
                        for i in twin["inputs"]], ["role", "path", "bytes", "sha256"]))
    sw = twin["software"]
    parts.append(kv_table({"python": sw["python"], "twinflow": sw["twinflow"], **{k: v for k, v in sw["packages"].items() if v},
                           "config sha256": twin["config"]["sha256"], "seeds": twin.get("seeds"),
                           "files in artefact": len(twin["manifest"])}))
    parts.append("<p class=muted>Verify this twin with <code>twinflow verify results/"
                 f"{esc(pid)}/twin</code>.</p></body></html>")
    write_text(out, "\n".join(parts) + "\n")


def cohort_index(out: str | Path, rows: list[dict], report_links: dict[str, str]) -> None:
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>twinflow cohort</title><style>{CSS}</style></head><body>",
             "<h1>twinflow cohort</h1>", f"<p>{len(rows)} patient(s).</p>"]
    trs = []
    cols = list(rows[0]) if rows else []
    for r in rows:
        r = dict(r)
        link = report_links.get(r.get("patient_id"))
        cells = []
        for c in cols:
            v = r.get(c)
            if c == "patient_id" and link:
                cells.append(f'<td><a href="{esc(link)}">{esc(v)}</a></td>')
            else:
                cells.append(f'<td class="num">{fmt(v)}</td>' if isinstance(v, (int, float)) else f"<td>{fmt(v)}</td>")
        trs.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr>" + "".join(trs) + "</table>")
    parts.append("</body></html>")
    write_text(out, "\n".join(parts) + "\n")
