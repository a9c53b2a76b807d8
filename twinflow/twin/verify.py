"""``twinflow verify``: check a twin artefact's hashes and re-run its simulations from it alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from twinflow.models import registry
from twinflow.twin.artefact import ENTRY, sha256_file, validate


@dataclass
class VerifyReport:
    twin_dir: str
    checked_files: int = 0
    resimulated: int = 0
    problems: list[str] = field(default_factory=list)
    unit: str = "re-simulated file(s)"        # what `resimulated` counts

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def resimulated_files(self) -> int:
        return self.resimulated

    def lines(self) -> list[str]:
        head = (f"{self.twin_dir}: OK: {self.checked_files} file hashes match, "
                f"{self.resimulated} {self.unit} byte-identical") if self.ok else \
               f"{self.twin_dir}: FAILED: {len(self.problems)} problem(s)"
        return [head] + [f"  {p}" for p in self.problems]


def load_entry(folder: Path, entry: str, rep: VerifyReport) -> dict | None:
    """The artefact's entry document, or None with the problem recorded in ``rep``."""
    import json

    try:
        return json.loads((folder / entry).read_text(encoding="utf-8"))
    except FileNotFoundError:
        rep.problems.append(f"{entry}: missing")
    except ValueError as exc:
        rep.problems.append(f"{entry}: not valid JSON ({exc})")
    return None


def check_manifest(folder: Path, manifest: dict[str, str], entry: str, rep: VerifyReport) -> None:
    """Every file of the manifest is present with its SHA-256, and nothing else is in the folder."""
    for rel, digest in sorted(manifest.items()):
        f = folder / rel
        if not f.is_file():
            rep.problems.append(f"{rel}: listed in the manifest but missing")
            continue
        rep.checked_files += 1
        if sha256_file(f) != digest:
            rep.problems.append(f"{rel}: SHA-256 differs from the manifest")
    present = {f.relative_to(folder).as_posix() for f in folder.rglob("*") if f.is_file()}
    for rel in sorted(present - set(manifest) - {entry}):
        rep.problems.append(f"{rel}: present but not in the manifest")


def verify(twin_dir: str | Path, *, resimulate: bool = True) -> VerifyReport:
    """Check a patient twin's hashes and re-run its simulations from the folder alone."""
    twin_dir = Path(twin_dir)
    rep = VerifyReport(str(twin_dir))
    doc = load_entry(twin_dir, ENTRY, rep)
    if doc is None:
        return rep
    rep.problems += [f"{ENTRY}: schema: {p}" for p in validate(doc)]
    check_manifest(twin_dir, doc.get("manifest", {}), ENTRY, rep)
    if resimulate and not rep.problems:
        model = registry.get(doc["model"]["name"])
        for sim in doc.get("simulations", []):
            produced = model.resimulate(twin_dir, doc, sim["name"])
            for rel in sim["outputs"]:
                if rel not in produced:
                    rep.problems.append(f"{rel}: simulation {sim['name']} did not produce it")
                elif produced[rel] != (twin_dir / rel).read_bytes():
                    rep.problems.append(f"{rel}: re-simulation of {sim['name']} differs from the stored file")
                else:
                    rep.resimulated += 1
    return rep


#: artefact entry file -> the function that verifies such a folder and the options it takes
#: besides ``resimulate`` (``twinflow verify`` picks by the entry file it finds)
VERIFIERS = {ENTRY: ("twinflow.twin.verify:verify", ()),
             "hospital_twin.json": ("twinflow.hospital.artefact:verify", ()),
             "trial.json": ("twinflow.trials.verify:verify_trial", ("patients", "twins_root"))}


def verify_folder(folder: str | Path, *, resimulate: bool = True, **options) -> VerifyReport:
    """Verify any twinflow artefact (a patient twin, a hospital twin, a trial) by its entry
    file.  ``options`` are what some kinds take (a trial: ``patients``, ``twins_root``); a
    kind that takes none ignores them."""
    from importlib import import_module

    folder = Path(folder)
    for entry, (target, takes) in VERIFIERS.items():
        if (folder / entry).is_file():
            mod, fn = target.split(":")
            return getattr(import_module(mod), fn)(folder, resimulate=resimulate,
                                                   **{k: v for k, v in options.items() if k in takes})
    rep = VerifyReport(str(folder))
    rep.problems.append(f"no artefact entry file ({', '.join(VERIFIERS)}) in this folder")
    return rep
