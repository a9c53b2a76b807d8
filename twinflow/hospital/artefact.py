"""The hospital twin artefact: one self-contained, hashed, re-simulable folder per site.

``<results>/hospital/<site>/twin/``:

* ``hospital_twin.json`` -- the entry point: the event log by path, size and SHA-256, the QC
  counts, the resolved site configuration (never the pseudonymisation key), the seeds of
  every replication, the scenarios, software versions, the validation figures and a
  ``manifest`` with the SHA-256 of every other file;
* ``model.json`` (the fitted model) and ``fit.json`` (how it was fitted);
* ``sim/<scenario>/rep<r>.json`` and ``rep<r>.cases.tsv.gz`` -- every replication;
* ``validation.json``, ``validation_hourly.tsv``, ``scenarios.tsv``, ``qc.json``.

:func:`verify` checks every hash and re-runs every replication from ``model.json``, the
scenario and the seed alone, byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

from twinflow.hospital.scenarios import apply_scenario, cases_bytes, replicate
from twinflow.io.atomic import dumps_json, gzip_bytes
from twinflow.twin.artefact import TwinBuilder, sha256_file, sha256_json
from twinflow.twin.software import software as base_software
from twinflow.twin.verify import VerifyReport, check_manifest, load_entry

FORMAT = "twinflow.hospital_twin"
FORMAT_VERSION = "1.0.0"
ENTRY = "hospital_twin.json"
PACKAGES = ("numpy", "scipy", "pandas", "simpy", "statsmodels", "snakemake")


def software() -> dict:
    return base_software(PACKAGES)


def replication_files(model: dict, scenario: str, spec: dict, seed: int, rep: int) -> dict[str, bytes]:
    """The two files of one replication, as bytes (``rep<r>.json``, ``rep<r>.cases.tsv.gz``)."""
    m = model if scenario == "baseline" else apply_scenario(model, scenario, spec)
    summary, cases = replicate(m, seed, rep)
    return {f"rep{rep}.json": dumps_json(summary).encode(), f"rep{rep}.cases.tsv.gz": gzip_bytes(cases_bytes(cases))}


def build(twin_dir: str | Path, *, site_cfg: dict, log_display: str, log_file: str | Path, files: dict[str, Path],
          replications: dict[str, list[Path]]) -> Path:
    """Write the artefact folder (under a temporary name, renamed into place).

    ``files``: artefact-relative name -> produced file (model.json, validation.json ...);
    ``replications``: scenario -> that scenario's replication files.
    """
    twin_dir = Path(twin_dir)
    with TwinBuilder(twin_dir, entry=ENTRY, format=FORMAT, format_version=FORMAT_VERSION) as b:
        for rel, src in sorted(files.items()):
            b.add_file(rel, src)
        sims = []
        for sc, paths in sorted(replications.items()):
            for p in sorted(paths, key=lambda x: x.name):
                b.add_file(f"sim/{sc}/{p.name}", p)
            reps = sorted({int(p.name.split(".")[0][3:]) for p in paths})
            for r in reps:
                sims.append({"scenario": sc, "rep": r, "seed": int(site_cfg["seed"]),
                             "outputs": [f"sim/{sc}/rep{r}.json", f"sim/{sc}/rep{r}.cases.tsv.gz"]})
        qc = json.loads((b.stage / "qc.json").read_text())
        b.commit({
            "site": site_cfg["site"],
            "inputs": [{"role": "event_log", "path": log_display, "size": Path(log_file).stat().st_size,
                        "sha256": sha256_file(log_file)}],
            "qc": qc["counts"],
            "config": {"resolved": site_cfg, "sha256": sha256_json(site_cfg)},
            "model": {"file": "model.json", "sha256": sha256_file(b.stage / "model.json")},
            "seeds": {"seed": int(site_cfg["seed"]), "replications": int(site_cfg["replications"]),
                      "streams": "numpy SeedSequence(seed, spawn_key=(rep, crc32(purpose))) per purpose"},
            "scenarios": {"baseline": {}, **site_cfg["scenarios"]},
            "simulations": sims,
            "validation": json.loads((b.stage / "validation.json").read_text()),
            "software": software(),
        })
    return twin_dir


def verify(twin_dir: str | Path, *, resimulate: bool = True) -> VerifyReport:
    twin_dir = Path(twin_dir)
    rep = VerifyReport(str(twin_dir), unit="replication(s) re-simulated")
    doc = load_entry(twin_dir, ENTRY, rep)
    if doc is None:
        return rep
    if doc.get("format") != FORMAT:
        rep.problems.append(f"{ENTRY}: format is {doc.get('format')!r}, not {FORMAT!r}")
        return rep
    check_manifest(twin_dir, doc.get("manifest", {}), ENTRY, rep)
    if resimulate and not rep.problems:
        model = json.loads((twin_dir / "model.json").read_text())
        for sim in doc["simulations"]:
            produced = replication_files(model, sim["scenario"], doc["scenarios"].get(sim["scenario"], {}),
                                         sim["seed"], sim["rep"])
            for rel in sim["outputs"]:
                name = rel.rsplit("/", 1)[-1]
                if produced.get(name) != (twin_dir / rel).read_bytes():
                    rep.problems.append(f"{rel}: re-simulation differs from the stored file")
            rep.resimulated += 1
    return rep
