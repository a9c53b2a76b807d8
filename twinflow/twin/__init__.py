"""The twin artefact: a self-contained, hashed, re-simulable record of one patient's twin."""
