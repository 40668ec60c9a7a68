"""Layer 6, design: the loop that narrows a design space round by round, keeping only what the evidence
supports. May import every layer below it; never ``commands``.

    result = design_space(load_space("anynetx_a"), evaluate, rounds=3, population=24,
                          windows={"flops": (2e6, 8e6)}, resolution=28, in_channels=1, num_classes=10, seed=0)
    result.final_space, result.lineage

``evaluate`` takes a Population (a list of SampledModel) and returns their errors in percent; the study-backed
one (``study_evaluate.StudyEvaluator``) trains them as an Optuna study, so a loop resumes and scales like a study.
"""

from .loop import DesignResult, Population, design_space, population_seed

__all__ = ["DesignResult", "Population", "design_space", "population_seed"]
