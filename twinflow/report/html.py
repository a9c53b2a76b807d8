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


def section_html(sec: Any) -> str:
    """One :class:`twinflow.models.base.ReportSection` as HTML ('' when it has nothing to show)."""
    figs = [(p, c) for p, c in sec.figures if Path(p).is_file()]
    if not (sec.table or sec.items or sec.notes or figs):
        return ""
    parts = [f"<h2>{esc(sec.title)}</h2>"]
    if sec.items:
        parts.append(kv_table(sec.items))
    if sec.table:
        parts.append(table(sec.table, sec.columns))
    if sec.notes:
        parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in sec.notes) + "</ul>")
    for path, caption in figs:
        parts.append(f"<figure>{img_tag(path, caption)}<figcaption>{esc(caption)}</figcaption></figure>")
    return "\n".join(parts)


def _pgx_sections(pgx: dict | None) -> list[Any]:
    from twinflow.models.base import ReportSection

    if not pgx:
        return []
    out = []
    genes = (pgx.get("pgx") or {}).get("genes") or pgx.get("genes") or []
    out.append(ReportSection("Pharmacogenomics", table=[
        {"gene": g.get("gene"), "diplotypes": " | ".join(g.get("diplotypes") or []), "phenotype": g.get("phenotype"),
         "activity_score": g.get("activity_score"), "missing positions": len(g.get("missing_positions") or [])}
        for g in genes]))
    phys = pgx.get("physiology") or {}
    if phys:
        date = sorted(phys)[0]
        first = phys[date]
        shown = {k: v for k, v in first.items() if k not in ("inputs", "assumptions", "date")
                 and not isinstance(v, (dict, list)) and v is not None}
        if shown:
            out.append(ReportSection(f"Physiology (at the first treatment date, {date})", items=shown,
                                     notes=list(first.get("assumptions") or [])))
    hs = (pgx.get("somatic") or {}).get("hotspots") or []
    out.append(ReportSection("Somatic hotspots", table=[
        {k: h.get(k) for k in ("gene", "protein", "chrom", "pos", "ref", "alt", "allele_fraction")} for h in hs]))
    return out


def _qc_rows(qc: dict) -> list[dict]:
    rows = []
    for v in qc.get("visits", []):
        for s, e in v["series"].items():
            rows.append({"visit": v["visit"], "date": v["date"], "series": s, "source": e.get("source"),
                         "format": e.get("source_format"), "shape": "x".join(str(x) for x in (e.get("shape") or [])),
                         "spacing_mm": " x ".join(f"{x:.3g}" for x in (e.get("spacing_mm") or [])),
                         "flags": ", ".join(e.get("flags") or [])})
    return rows


def patient_report(out: str | Path, *, twin: dict, qc: dict, sections: Iterable[Any] = ()) -> None:
    """The patient's report: the generic parts of every twin around the model's ``sections``
    (:class:`twinflow.models.base.ReportSection`); sections with nothing to show are left out."""
    from twinflow.models.base import ReportSection

    pid = twin["patient_id"]
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>twinflow: {esc(pid)}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>Digital twin of patient {esc(pid)}</h1>",
             f"<p class=muted>model <b>{esc(twin['model']['name'])}</b> {esc(twin['model']['version'])} "
             f"&middot; twin format {esc(twin['format_version'])} &middot; pipeline commit "
             f"<code>{esc(twin['pipeline'].get('git_commit'))}</code>"
             f"{' (dirty tree)' if twin['pipeline'].get('git_dirty') else ''}</p>"]
    if twin.get("flags"):
        parts.append('<h2 class=flag>Flags</h2><ul class=flag>' + "".join(f"<li>{esc(f)}</li>" for f in twin["flags"]) + "</ul>")
    prow = [{"parameter": k, "value": v.get("value"), "sd": v.get("sd"), "unit": v.get("unit", ""),
             "identifiable": v.get("identifiable"), "estimated": v.get("estimated", True)}
            for k, v in twin["parameters"].items()]
    title = "Calibrated parameters" if twin.get("calibrated", True) else \
        "Parameters (not calibrated: the model's documented priors)"
    generic = [ReportSection(title, table=prow,
                             columns=["parameter", "value", "sd", "unit", "identifiable", "estimated"])]
    generic += list(sections)
    generic.append(ReportSection("Assumptions", notes=list(twin.get("assumptions") or [])))
    generic += _pgx_sections(twin.get("pgx"))
    generic.append(ReportSection("Ingest QC", table=_qc_rows(qc)))
    parts += [h for h in (section_html(s) for s in generic) if h]
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


def _linked_table(rows: list[dict], links: dict[str, str]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    cols = list(rows[0])
    trs = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            if c == "patient_id" and links.get(v):
                cells.append(f'<td><a href="{esc(links[v])}">{esc(v)}</a></td>')
            else:
                cells.append(f'<td class="num">{fmt(v)}</td>' if isinstance(v, (int, float)) and not isinstance(v, bool)
                             else f"<td>{fmt(v)}</td>")
        trs.append("<tr>" + "".join(cells) + "</tr>")
    return "<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in cols) + "</tr>" + "".join(trs) + "</table>"


def _tsv_rows(path: str | Path) -> list[dict]:
    import pandas as pd

    df = pd.read_csv(path, sep="\t")
    return json.loads(df.to_json(orient="records"))


def cohort_index(out: str | Path, summary_tsv: str | Path, model_tsvs: dict[str, str], report_links: dict[str, str],
                 trials: dict[str, str] | None = None) -> None:
    """The cohort page: one section per kind of twin with that model's headline numbers
    (``model_tsvs``: model name -> its summary table), the generic table of every twin and
    links to the in-silico trials' reports (``trials``: trial name -> link)."""
    from twinflow.models import registry

    rows = _tsv_rows(summary_tsv)
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>twinflow cohort</title><style>{CSS}</style></head><body>",
             "<h1>twinflow cohort</h1>",
             f"<p>{len(rows)} twin(s) of {len(model_tsvs)} kind(s).</p>"]
    for name, path in sorted(model_tsvs.items()):
        mrows = _tsv_rows(path)
        parts.append(f"<h2>{esc(name)} twins ({len(mrows)})</h2>")
        parts.append(f"<p class=muted>{esc(registry.model_class(name).description)}</p>")
        parts.append(_linked_table(mrows, report_links))
    parts.append("<h2>All twins</h2>")
    parts.append(_linked_table(rows, report_links))
    if trials:
        parts.append("<h2>In-silico trials</h2><ul>" + "".join(
            f'<li><a href="{esc(link)}">{esc(name)}</a></li>' for name, link in sorted(trials.items())) + "</ul>")
    parts.append("</body></html>")
    write_text(out, "\n".join(parts) + "\n")
