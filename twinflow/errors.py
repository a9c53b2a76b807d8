"""One exception type for bad input, so every message names patient, file and problem."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad user input detected at ingest, before any compute.

    The message always has the form ``patient <id>: <file>: <problem>`` (parts that are
    unknown are left out).  ``file`` is shown as given (relative to the sheets where it
    came from a sheet); it never contains patient-identifying metadata.
    """

    def __init__(self, problem: str, *, patient: str | None = None, path: str | Path | None = None):
        self.problem = problem
        self.patient = patient
        self.path = None if path is None else str(path)
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.patient:
            parts.append(f"patient {self.patient}")
        if self.path:
            parts.append(self.path)
        parts.append(self.problem)
        return ": ".join(parts)

    def with_context(self, *, patient: str | None = None, path: str | Path | None = None) -> "InputError":
        """Return a copy with patient and/or path filled in where they were missing."""
        return InputError(
            self.problem,
            patient=self.patient or patient,
            path=self.path or (None if path is None else str(path)),
        )
