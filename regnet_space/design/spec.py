"""The design spec: a study spec (data, proxy, window, storage, workers) plus where the loop starts and how far
it may go. Documented in experiments/README.md and docs by example:

    name = "design_fashion_mnist"
    seed = 0
    start = "anynetx_a"             # a built-in space or a TOML file (relative to this file)
    population = 24                 # models per population (the start space, each candidate)
    rounds = 3                      # at most this many rounds of refinement
    budget = 200                    # optional: at most this many models trained in all
    alpha = 0.05                    # level of the refinement decisions and of the EDF tests
    evaluation = "paired"           # paired (default) | population: how a candidate is judged (design/loop.py)
    max_pairs = 60                  # paired: a candidate's most pairs (looks at 10, 20, 40, ...: sequential stopping)
    verify = 100                    # fresh populations of the final and start space at the end (0: none;
                                    # default: population)
    references = ["regnetx"]        # optional: spaces the final one is also verified against
    # bins = 3                      # optional: flops bins of the report's normalised EDF figures (default population // 8)
    measure_latency = false
    [dataset] / [proxy] / [complexity] / [workers] / [launcher], storage, time_limit: as in a study spec

Every population becomes its own study in the design's storage (``populations/<label>.toml``, study name
``<name>-<label>``), so the study spec's own checks validate the study part of this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import userfiles
from ..errors import UserError
from ..spaces import load_space
from ..spaces.space import _toml
from .loop import EVALUATIONS, MAX_PAIRS, MIN_POPULATION

DESIGN_KEYS = ("start", "population", "rounds", "budget", "alpha", "bins", "evaluation", "max_pairs", "verify",
               "references")
STUDY_KEYS = ("description", "seed", "measure_latency", "time_limit", "storage", "dataset", "proxy", "complexity",
              "workers", "launcher")


@dataclass(frozen=True)
class DesignSpec:
    name: str
    start: str
    population: int
    rounds: int
    budget: int | None
    alpha: float
    bins: int | None
    seed: int
    evaluation: str
    max_pairs: int
    verify: int
    references: tuple[str, ...]
    study: dict[str, Any]  # the study-spec part, as parsed
    text: str
    path: str

    @property
    def windows(self) -> dict[str, tuple[float, float]]:
        from ..spaces import parse_window

        return {metric: parse_window(text) for metric, text in self.study.get("complexity", {}).items()}

    def study_toml(self, label: str, space_path: str, storage: str | None = None, *, n: int | None = None,
                   models: str | None = None) -> str:
        """The study spec of population ``label``: this design's data, proxy, window and workers, one space of
        ``n`` models (default: the population; ``models``: a file listing them, a paired batch's); and where
        its study lives (``dir``: the design's folder, the file's parent's parent; the ``storage`` URL unless it
        holds a password, which no file written is given), so `study worker FILE` joins it."""
        from ..redaction import split_url

        data = {k: v for k, v in self.study.items() if k != "storage"}
        lines = [f"name = {_toml(f'{self.name}-{label}')}", f"seed = {self.seed}", 'dir = ".."']
        if storage and split_url(storage)[2] is None:
            lines.append(f"storage = {_toml(storage)}")
        elif storage:
            lines.append("# storage: this design's database; pass it with --storage (its password is not written)")
        lines += [f"{k} = {_toml(v)}" for k, v in data.items() if not isinstance(v, dict) and k != "seed"]
        for key, table in data.items():
            if isinstance(table, dict):
                lines += ["", f"[{key}]"] + [f"{k} = {_toml(v)}" for k, v in table.items()]
        lines += ["", "[[spaces]]", f"space = {_toml(space_path)}", f"n = {n or self.population}",
                  f"label = {_toml(label)}"] + ([f"models = {_toml(models)}"] if models else [])
        return "\n".join(lines) + "\n"


def _integer(data: dict[str, Any], key: str, default: Any, minimum: int) -> Any:
    value = data.get(key, default)
    if value is default and default is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UserError(f"{key}: must be an integer >= {minimum}, got {value!r}")
    return value


def load_design_spec(path: str | Path) -> DesignSpec:
    """Read and validate a design TOML; every error names the file and the key."""
    path = Path(path)
    text = userfiles.read_text(path, "design spec")
    data = userfiles.parse_toml(text, str(path))
    try:
        spec = _parse(data, text, path)
        _check_study_part(spec)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    return spec


def _parse(data: dict[str, Any], text: str, path: Path) -> DesignSpec:
    unknown = sorted(set(data) - {"name", *DESIGN_KEYS, *STUDY_KEYS})
    if unknown:
        raise UserError(f"{unknown[0]}: unknown key (known: {', '.join(sorted({'name', *DESIGN_KEYS, *STUDY_KEYS}))})")
    name = data.get("name")
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ "):
        raise UserError(f"name: must be a non-empty string without spaces or slashes, got {name!r}")
    start = data.get("start")
    if not isinstance(start, str) or not start:
        raise UserError(f"start: must name a built-in space or a TOML file, got {start!r}")
    if start.endswith(".toml") and not Path(start).is_absolute():
        start = str((path.parent / start).resolve())
    alpha = data.get("alpha", 0.05)
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise UserError(f"alpha: must be a number in (0, 1), got {alpha!r}")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UserError(f"seed: must be an integer >= 0, got {seed!r}")
    population = _integer(data, "population", None, MIN_POPULATION) or _missing("population")
    evaluation = data.get("evaluation", "paired")
    if evaluation not in EVALUATIONS:
        raise UserError(f"evaluation: must be one of {', '.join(EVALUATIONS)}, got {evaluation!r}")
    references = data.get("references", [])
    if not isinstance(references, list) or not all(isinstance(r, str) and r for r in references):
        raise UserError(f"references: must be a list of built-in space names or TOML files, got {references!r}")
    references = tuple(str((path.parent / r).resolve()) if r.endswith(".toml") and not Path(r).is_absolute()
                       else r for r in references)
    for reference in references:
        try:
            load_space(reference)
        except UserError as exc:
            raise UserError(f"references: {exc}") from None
    return DesignSpec(name=name, start=start, population=population,
                      rounds=_integer(data, "rounds", 3, 0), budget=_integer(data, "budget", None, 2),
                      alpha=float(alpha), bins=_integer(data, "bins", None, 1), seed=seed,
                      evaluation=evaluation, max_pairs=_integer(data, "max_pairs", MAX_PAIRS, 2),
                      verify=_integer(data, "verify", population, 0), references=references,
                      study={k: data[k] for k in STUDY_KEYS if k in data}, text=text, path=str(path))


def _missing(key: str):
    raise UserError(f"{key}: missing")


def _check_study_part(spec: DesignSpec) -> None:
    """Let the study spec's parser check data, proxy, window, workers: parse the start population's spec."""
    from ..study.spec import _parse as parse_study

    text = spec.study_toml("start", spec.start)
    parse_study(userfiles.parse_toml(text, spec.path), text, Path(spec.path))
