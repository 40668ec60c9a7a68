"""The study-backed evaluator: each population of the loop is trained as an Optuna study in one storage.

Population ``label`` of design ``name`` becomes the study ``<name>-<label>`` whose spec
(``<dir>/populations/<label>.toml``) names the population's space (``<dir>/spaces/<label>.toml``), the design's
data, proxy and window, and the design's seed; a study draws space ``label`` with seed crc32("seed:label"),
which is the loop's ``population_seed``, so the study trains exactly the models the loop drew (checked, model
by model). Workers, heartbeats, stale-model recovery and PostgreSQL come with the study machinery: a killed
loop (and its workers) rerun with the same spec finds complete populations complete and trains only the rest.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..study.launcher import SlurmSettings
from ..study.spec import MODELS_FORMAT
from ..userfiles import write_output
from .loop import Population
from .spec import DesignSpec


class StudyEvaluator:
    """``evaluate`` for ``design_space``: trains a population with ``workers`` local worker processes, or as a
    SLURM job array of ``workers`` tasks (others may join with ``regnet-space study worker
    <dir>/populations/<label>.toml``), and returns its errors."""

    def __init__(self, spec: DesignSpec, *, directory: str | Path, storage_url: str | None = None, workers: int = 1,
                 threads: int | None = None, device: str = "cpu", progress: bool = True,
                 slurm: SlurmSettings | None = None) -> None:
        self.spec, self.directory = spec, Path(directory)
        self.storage_url = storage_url or spec.study.get("storage")
        self.workers, self.threads, self.device, self.progress = workers, threads, device, progress
        self.slurm = slurm  # None: local worker processes; else each population is one SLURM job array

    def study_spec_path(self, label: str) -> Path:
        return self.directory / "populations" / f"{label}.toml"

    def __call__(self, population: Population) -> list[float]:
        from ..study.results import model_rows
        from ..study.runner import run_local
        from ..study.session import open_study
        from ..study.slurm import run_slurm
        from ..study.spec import load_study_spec

        label = population.label
        space_path = self.directory / "spaces" / f"{label}.toml"
        spec_path = self.study_spec_path(label)
        files = [(space_path, population.space.to_toml())]
        listed = None
        if population.listed:  # a paired batch: these models, each with its source model's training seed
            listed = f"{label}.models.json"
            files.append((spec_path.parent / listed, json.dumps({"format": MODELS_FORMAT, "models": [
                {"params": model.params, "spec": json.loads(model.spec.to_json()), "seed": int(seed)}
                for model, seed in zip(population, population.train_seeds)]}, sort_keys=True, default=_plain) + "\n"))
        files.append((spec_path, self.spec.study_toml(label, f"../spaces/{label}.toml", self.storage_url,
                                                      n=len(population), models=listed)))
        for path, text in files:
            if not path.is_file() or path.read_text() != text:
                write_output(path, text, "population spec")
        study = load_study_spec(spec_path)
        session = open_study(study, directory=str(self.directory), storage_url=self.storage_url)
        rows = model_rows(session)
        if any(r["status"] != "complete" for r in rows):
            if self.slurm is not None:
                code = run_slurm(session, self.slurm, workers=self.workers, directory=str(self.directory),
                                 storage_url=self.storage_url, device=self.device, progress=self.progress,
                                 print_job=False)
            else:
                code = run_local(session, workers=self.workers, directory=str(self.directory),
                                 storage_url=self.storage_url, device=self.device, progress=self.progress,
                                 threads=self.threads)
            if code == 130:
                raise KeyboardInterrupt
            rows = model_rows(session)
            missing = sum(r["status"] != "complete" for r in rows)
            if code != 0 or missing:
                raise UserError(f"population {label}: {missing} of {len(rows)} models are not complete "
                                f"(see `regnet-space study status {spec_path} --dir {self.directory}`); "
                                f"rerun the design to train them")
        rows = sorted(rows, key=lambda r: r["model_index"])
        for row, model in zip(rows, population):
            if row["spec"] != model.spec.to_json():
                raise UserError(f"population {label}: model {row['model_index']} in the storage is not the model "
                                f"the design drew; the stored study comes from a different design")
        return [float(r["val_error"]) for r in rows]


def _plain(value):
    """A numpy scalar among a model's drawn parameters, as JSON can hold it."""
    return value.item()
