"""In-silico trials from cohorts of twins (docs/trials.md).

A trial (config ``trials.<name>``, :mod:`twinflow.trials.config`) names a twin model; the
model's :class:`~twinflow.models.base.TrialModel` draws virtual patients from the cohort's
calibrated twins and simulates one patient on one arm.  Everything else is generic and
names no model:

* :mod:`~twinflow.trials.sampling`  screening, eligibility, stratified block randomisation, chunks
* :mod:`~twinflow.trials.simulate`  one chunk of one arm -> endpoint rows; gathering the chunks
* :mod:`~twinflow.trials.analysis`  Kaplan-Meier, log-rank, Cox, mean differences, odds ratios,
  subgroups, power by simulation, CONSORT counts
* :mod:`~twinflow.trials.artefact`  the verifiable trial artefact; :mod:`~twinflow.trials.verify`
* :mod:`~twinflow.trials.report`    figures and the HTML report
* :mod:`~twinflow.trials.stages`    the stages the Snakemake rules run (``rules/trials.smk``);
  :mod:`~twinflow.trials.runner` runs them in one process
"""
