"""Run-level provenance: ``results/pipeline_info/`` and the Workflow Run RO-Crate.

Deterministic files (software versions, resolved config, sheet digests) are kept apart
from the run log (time stamps, host, user, command line), which is never hashed into a twin.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any, Iterable

import yaml

from twinflow.io.atomic import write_json, write_text
from twinflow.twin.artefact import sha256_file, sha256_json
from twinflow.twin.software import pipeline_git, software

PROFILES = {
    "process": "https://w3id.org/ro/wfrun/process/0.5",
    "workflow": "https://w3id.org/ro/wfrun/workflow/0.5",
    "provenance": "https://w3id.org/ro/wfrun/provenance/0.5",
    "wroc": "https://w3id.org/workflowhub/workflow-ro-crate/1.0",
}


def write_software_versions(out: str | Path) -> None:
    doc = software()
    doc["pipeline"] = pipeline_git()
    write_text(out, yaml.safe_dump(doc, sort_keys=True, default_flow_style=False))


def write_resolved_config(config: dict, out: str | Path) -> str:
    text = yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=True, default_flow_style=False)
    write_text(out, f"# sha256 of the canonical JSON form: {sha256_json(config)}\n" + text)
    return sha256_json(config)


def write_sheet_digests(sheets: dict[str, str], out: str | Path) -> None:
    lines = ["role\tpath\tsize\tsha256"]
    for role in sorted(sheets):
        p = Path(sheets[role])
        lines.append(f"{role}\t{sheets[role]}\t{p.stat().st_size}\t{sha256_file(p)}")
    write_text(out, "\n".join(lines) + "\n")


def write_run_log(out: str | Path, argv: Iterable[str], event: str) -> None:
    """Append one JSON line: time, host, user, working directory, command line."""
    rec = {"event": event, "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "host": socket.gethostname(), "user": _user(), "cwd": os.getcwd(),
           "command_line": [sys.executable, *argv], "platform": platform.platform()}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(rec, sort_keys=True) + "\n")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return str(os.getuid())


def write_run_crate(results: str | Path, *, twins: list[str], cohort_files: list[str],
                    sheets: dict[str, str], snakefile: str, run_log: str | None = None) -> Path:
    """Workflow Run RO-Crate (Provenance Run Crate profile) rooted at the results folder.

    Outputs inside the results folder are data entities by relative path with their SHA-256;
    patient inputs are referenced by sheet-relative path, size and SHA-256 (taken from each
    twin.json) and never copied.  Written with the ``rocrate`` library.
    """
    from rocrate.rocrate import ROCrate
    from rocrate.model.contextentity import ContextEntity

    results = Path(results)
    crate = ROCrate()
    crate.name = "twinflow run"
    crate.description = "Digital twins built by the twinflow Snakemake pipeline."
    crate.root_dataset["conformsTo"] = [{"@id": PROFILES[k]} for k in ("process", "workflow", "provenance", "wroc")]
    for k, uri in PROFILES.items():
        crate.add(ContextEntity(crate, uri, properties={"@type": "CreativeWork", "name": f"{k} profile", "version": uri.rsplit("/", 1)[-1]}))
    git = pipeline_git()
    sw = software()
    lang = crate.add(ContextEntity(crate, "https://w3id.org/workflowhub/workflow-ro-crate#snakemake", properties={
        "@type": "ComputerLanguage", "name": "Snakemake", "identifier": {"@id": "https://snakemake.readthedocs.io"},
        "url": {"@id": "https://snakemake.readthedocs.io"}, "version": sw["packages"].get("snakemake")}))
    wf = crate.add(ContextEntity(crate, "#workflow", properties={
        "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"], "name": "twinflow Snakefile",
        "programmingLanguage": {"@id": lang.id}, "version": sw["twinflow"],
        "identifier": git.get("git_commit") or "unknown", "codeRepository": Path(snakefile).name}))
    crate.root_dataset["mainEntity"] = {"@id": wf.id}
    crate.add(ContextEntity(crate, "#twinflow-software", properties={
        "@type": "SoftwareApplication", "name": "twinflow", "softwareVersion": sw["twinflow"],
        "softwareRequirements": [f"{k} {v}" for k, v in sw["packages"].items() if v]}))

    def out_file(rel: str, desc: str):
        p = results / rel
        return crate.add_file(dest_path=rel, properties={
            "name": rel, "description": desc, "contentSize": p.stat().st_size, "sha256": sha256_file(p)})

    all_objects, all_results = [], []
    for role in sorted(sheets):
        p = Path(sheets[role])
        ent = crate.add(ContextEntity(crate, f"#sheet-{role}", properties={
            "@type": "File", "name": f"{role} sheet", "alternateName": sheets[role],
            "contentSize": p.stat().st_size, "sha256": sha256_file(p)}))
        all_objects.append({"@id": ent.id})
    for rel in sorted(twins):
        doc = json.loads((results / rel).read_text())
        pid = doc["patient_id"]
        inputs = []
        for inp in doc["inputs"]:
            ent = crate.add(ContextEntity(crate, f"#input-{inp['sha256'][:16]}", properties={
                "@type": "File" if inp.get("kind", "file") == "file" else "Dataset",
                "name": inp["path"], "description": f"{pid} {inp['role']} (referenced, not copied)",
                "contentSize": inp["size"], "sha256": inp["sha256"]}))
            inputs.append({"@id": ent.id})
        twin = out_file(rel, f"twin artefact of {pid}")
        step = crate.add(ContextEntity(crate, f"#build-{pid}", properties={
            "@type": "CreateAction", "name": f"build twin {pid} ({doc['model']['name']})",
            "instrument": {"@id": wf.id}, "object": inputs, "result": [{"@id": twin.id}]}))
        all_objects += inputs
        all_results.append({"@id": twin.id})
        _ = step
    for rel in sorted(cohort_files):
        all_results.append({"@id": out_file(rel, "cohort summary").id})
    run = {"@type": "CreateAction", "name": "twinflow run", "instrument": {"@id": wf.id},
           "object": all_objects, "result": all_results}
    if run_log and Path(run_log).is_file():
        lines = [json.loads(x) for x in Path(run_log).read_text().splitlines() if x.strip()]
        starts = [x["time_utc"] for x in lines if x.get("event") == "start"]
        if starts:
            run["startTime"] = starts[-1]
    run["endTime"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    crate.add(ContextEntity(crate, "#run", properties=run))
    crate.root_dataset["mentions"] = [{"@id": "#run"}]
    import shutil
    import tempfile
    import warnings

    tmp = Path(tempfile.mkdtemp(prefix=".crate.", dir=results))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "No source for ...": outputs are referenced, not copied
            crate.write(str(tmp))
        os.replace(tmp / "ro-crate-metadata.json", results / "ro-crate-metadata.json")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results / "ro-crate-metadata.json"
