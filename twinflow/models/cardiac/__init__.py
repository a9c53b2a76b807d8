"""Cardiac twin: 0D closed-loop circulation, calibration, metoprolol PK/PD and treatment arms.

See ``docs/cardiac-model.md`` for equations, default parameters with sources, the
calibration and identifiability rules and the drug model.
"""

from .arms import DEFAULT_ARMS, TIMEPOINTS, Arm, apply_effect, simulate_arms
from .calibrate import (
    CANDIDATES, MEASUREMENT_SD, CalibrationResult, calibrate, identifiability, synthetic_patient,
    targets_from_labs,
)
from .circulation import DEFAULT_PARAMS, Circulation, CirculationParams, CycleResult, pv_loop, simulate
from .drugs import (
    DEFAULT_PD, NM_PK, PHENOTYPES, MetoprololPD, MetoprololPK, Regimen, pk_model, resolve_phenotype,
    steady_state_exposure,
)

__all__ = [
    "DEFAULT_ARMS", "TIMEPOINTS", "Arm", "apply_effect", "simulate_arms",
    "CANDIDATES", "MEASUREMENT_SD", "CalibrationResult", "calibrate", "identifiability",
    "synthetic_patient", "targets_from_labs",
    "DEFAULT_PARAMS", "Circulation", "CirculationParams", "CycleResult", "pv_loop", "simulate",
    "DEFAULT_PD", "NM_PK", "PHENOTYPES", "MetoprololPD", "MetoprololPK", "Regimen", "pk_model",
    "resolve_phenotype", "steady_state_exposure",
]
