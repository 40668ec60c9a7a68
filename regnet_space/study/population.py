"""The population of a study: model k of space S, fixed by the study's seed.

Every worker computes the same population from the spec, so model k is the same config whichever worker
trains it, in whatever order, and results do not depend on the number of workers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from .spec import SpaceEntry, StudySpec


@dataclass(frozen=True)
class DataShape:
    resolution: int
    in_channels: int
    num_classes: int


def space_seed(study_seed: int, label: str) -> int:
    """A per-space seed, stable across Python versions and processes (unlike hash())."""
    return zlib.crc32(f"{study_seed}:{label}".encode())


def sample_entry(study: StudySpec, entry: SpaceEntry, shape: DataShape) -> list:
    from ..spaces import load_space, sample_models

    space = load_space(entry.space)
    return sample_models(space, entry.n, seed=space_seed(study.seed, entry.label), windows=entry.windows,
                         resolution=shape.resolution, in_channels=shape.in_channels,
                         num_classes=shape.num_classes, input_form=entry.input_form)


def build_population(study: StudySpec, shape: DataShape) -> dict[str, list]:
    """label -> the list of SampledModel of that space, index k = model k."""
    return {entry.label: sample_entry(study, entry, shape) for entry in study.spaces}


def tiny_stage_warning(population: dict[str, list]) -> str | None:
    """One line naming how many models of each space have a stage at <= 2x2 px, or None."""
    from ..spaces.input_form import tiny_stage_warning as model_warning

    counts, first = {}, None
    for label, models in population.items():
        warnings = [w for w in (model_warning(m.spec) for m in models) if w]
        if warnings:
            counts[label], first = len(warnings), first or warnings[0]
    if not counts:
        return None
    return (f"{', '.join(f'{n} of {len(population[label])} {label} models' for label, n in counts.items())} "
            f"have a tiny stage; the first: {first}")
