"""Hospital operations twin: a twin of a site, fitted to its patient-movement event logs.

The chain (one site at a time; see docs/hospital.md):

* :mod:`~twinflow.hospital.eventlog` reads a CSV or XES event log, pseudonymises case ids
  with a keyed hash, applies the QC rules (named errors or counted repairs) and writes the
  canonical activity-instance table;
* :mod:`~twinflow.hospital.fit` discovers the process (routing per patient class) and fits
  arrivals (Poisson GLM by hour of week with trend), service and delay distributions
  (right-censored maximum likelihood) and resource capacities on the training period;
* :mod:`~twinflow.hospital.sim` runs one replication of the fitted model in SimPy, with a
  recorded seed, and :mod:`~twinflow.hospital.metrics` turns trajectories (simulated or
  observed) into census, arrivals, length of stay, waits and KPIs;
* :mod:`~twinflow.hospital.validate` compares the held-out period with the replications
  and with the naive hour-of-week baseline; :mod:`~twinflow.hospital.scenarios` applies
  what-if scenarios and tabulates their KPIs;
* :mod:`~twinflow.hospital.artefact` writes and verifies the hospital twin artefact and
  :mod:`~twinflow.hospital.report` its HTML report.

All times inside the model are hours (``*_h``).
"""
