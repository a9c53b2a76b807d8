"""Pregnancy dating: gestational age from the crown-rump length or from a dated gestational age.

Crown-rump length (Robinson and Fleming, Br J Obstet Gynaecol 1975, as used in first-trimester
screening): ``GA days = 8.052 sqrt(CRL mm x 1.037) + 23.73``.  The gestational age at any other
date adds the days in between; the pregnancy started (first day of the last menstrual period,
"LMP") at GA 0.
"""

from __future__ import annotations

import datetime as dt
import math

CRL_RANGE_MM = (10.0, 95.0)      # where the Robinson formula is used in practice (7-14 weeks)


def ga_days_from_crl(crl_mm: float) -> float:
    if not (CRL_RANGE_MM[0] <= float(crl_mm) <= CRL_RANGE_MM[1]):
        raise ValueError(f"crown-rump length {crl_mm:g} mm is outside {CRL_RANGE_MM[0]:g}-{CRL_RANGE_MM[1]:g} mm")
    return 8.052 * math.sqrt(float(crl_mm) * 1.037) + 23.73


class Dating:
    """Gestational age on any date, from one dating measurement."""

    def __init__(self, *, crl_mm: float | None = None, crl_date: str | None = None, ga_weeks: float | None = None,
                 ga_date: str | None = None):
        if crl_mm is not None and crl_date:
            self.ref = dt.date.fromisoformat(str(crl_date))
            self.ref_days = ga_days_from_crl(crl_mm)
            self.source = f"crown-rump length {crl_mm:g} mm on {crl_date} (Robinson and Fleming 1975)"
        elif ga_weeks is not None and ga_date:
            self.ref = dt.date.fromisoformat(str(ga_date))
            self.ref_days = float(ga_weeks) * 7.0
            self.source = f"gestational age {ga_weeks:g} weeks on {ga_date}"
        else:
            raise ValueError("dating needs a crown-rump length with its date, or a gestational age with its date")

    def ga_days(self, date: str | dt.date) -> float:
        d = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date)[:10])
        return self.ref_days + (d - self.ref).days

    def ga_weeks(self, date: str | dt.date) -> float:
        return self.ga_days(date) / 7.0

    def start_date(self) -> dt.date:
        """Date of GA 0 (the first day of the last menstrual period, by convention)."""
        return self.ref - dt.timedelta(days=int(round(self.ref_days)))

    def years_since(self, date: str) -> float:
        """Years from ``date`` to the start of this pregnancy (the FMF interpregnancy interval)."""
        return (self.ref - dt.date.fromisoformat(str(date)[:10])).days / 365.25 - self.ref_days / 365.25
