"""The population of a study: model k of space S, fixed by the study's seed.

Every worker computes the same population from the spec, so model k is the same config whichever worker
trains it, in whatever order, and results do not depend on the number of workers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ..errors import UserError
from .spec import SpaceEntry, StudySpec


@dataclass(frozen=True)
class DataShape:
    resolution: int
    in_channels: int
    num_classes: int


def space_seed(study_seed: int, label: str) -> int:
    """A per-space seed, stable across Python versions and processes (unlike hash())."""
    return zlib.crc32(f"{study_seed}:{label}".encode())


def training_seed(study: StudySpec, label: str, index: int) -> int:
    """The seed model ``index`` of space ``label`` trains with: a listed model's own, else the space's seed +
    index."""
    listed = study.entry(label).listed
    return listed[index].seed if listed else space_seed(study.seed, label) + index


def sample_entry(study: StudySpec, entry: SpaceEntry, shape: DataShape) -> list:
    from ..models.spec import AnyNetSpec
    from ..spaces import SampledModel, load_space, sample_models

    if entry.listed:
        models = [SampledModel(AnyNetSpec.from_json(m.spec), dict(m.params)) for m in entry.listed]
        wrong = [i for i, m in enumerate(models)
                 if (m.spec.resolution, m.spec.in_channels, m.spec.num_classes) != (shape.resolution,
                                                                                    shape.in_channels,
                                                                                    shape.num_classes)]
        if wrong:
            spec = models[wrong[0]].spec
            raise UserError(f"space {entry.label!r}: listed model {wrong[0]} is built for "
                            f"{spec.resolution}px, {spec.in_channels} channels, {spec.num_classes} classes; the data "
                            f"has {shape.resolution}px, {shape.in_channels}, {shape.num_classes}")
        return models
    space = load_space(entry.space)
    return sample_models(space, entry.n, seed=space_seed(study.seed, entry.label), windows=entry.windows,
                         resolution=shape.resolution, in_channels=shape.in_channels,
                         num_classes=shape.num_classes, input_form=entry.input_form)


def population_distributions(study: StudySpec) -> dict[str, dict]:
    """label -> the Optuna distributions of its space's parameters (what each trial's params are drawn from)."""
    from ..spaces import load_space
    from .params import space_distributions

    return {entry.label: space_distributions(load_space(entry.space)) for entry in study.spaces}


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
