"""Cardiac twin: 0D closed-loop circulation, calibration, metoprolol PK/PD and treatment arms.

See ``docs/cardiac-model.md`` for equations, default parameters with sources, the
calibration and identifiability rules and the drug model.  Import the submodules
(``circulation``, ``calibrate``, ``drugs``, ``arms``, ``twin``) directly: the package
itself imports nothing, so that a workflow step depends only on the code it runs
(see :mod:`twinflow.provenance`).
"""
