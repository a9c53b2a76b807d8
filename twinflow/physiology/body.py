"""Body size: body-surface area (Mosteller, DuBois) and body-mass index."""

from __future__ import annotations

import math


def bsa_mosteller(height_cm: float, weight_kg: float) -> float:
    """BSA (m^2) = sqrt(height_cm * weight_kg / 3600).  Mosteller RD, N Engl J Med 1987;317:1098."""
    return math.sqrt(height_cm * weight_kg / 3600.0)


def bsa_dubois(height_cm: float, weight_kg: float) -> float:
    """BSA (m^2) = 0.007184 * weight^0.425 * height^0.725.  DuBois D, DuBois EF, Arch Intern Med 1916;17:863."""
    return 0.007184 * weight_kg ** 0.425 * height_cm ** 0.725


def bmi(height_cm: float, weight_kg: float) -> float:
    """Body-mass index (kg/m^2)."""
    return weight_kg / (height_cm / 100.0) ** 2
