"""Population-sampling studies on Optuna storage: spec, population, workers, status and export."""

from .results import load_study_table
from .spec import StudySpec, load_study_spec

__all__ = ["StudySpec", "load_study_spec", "load_study_table"]
