"""Glue used by the thin scripts in ``scripts/``: logging and error reporting for one job.

A job's failure because of bad input prints exactly one line (``patient P: file: problem``)
to stderr and to the job's log, and exits non-zero; Snakemake then removes the job's
outputs (every writer is atomic, so nothing half-written is left) and, with
``--keep-going``, goes on with the other patients.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Callable

from twinflow.errors import InputError


def run_script(snakemake: Any, main: Callable[[Any], Any]) -> None:
    log_path = snakemake.log[0] if len(snakemake.log) else None
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)
    log = logging.getLogger("twinflow")
    try:
        main(snakemake)
    except InputError as exc:
        log.error("%s", exc)
        raise SystemExit(1) from None


def patient_context(snakemake: Any):
    """The :class:`~twinflow.models.base.PatientContext` a stage script receives via params."""
    from pathlib import Path

    from twinflow.models.base import PatientContext

    c = snakemake.params.ctx
    return PatientContext(patient_id=snakemake.wildcards.patient, row=c["row"], images=list(c["images"]),
                          treatments=list(c["treatments"]), results=Path(c["results_dir"]),
                          config=dict(c["model_config"] or {}))
