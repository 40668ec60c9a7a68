"""Layer 4, study: population-sampling studies on Optuna storage (spec, population, workers, status, export).

May import ``models``, ``spaces`` and ``proxy``; never ``analysis``, ``design`` or ``commands``.
"""

from .results import load_study_table
from .spec import StudySpec, load_study_spec

__all__ = ["StudySpec", "load_study_spec", "load_study_table"]
