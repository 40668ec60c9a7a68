"""The study spec: a declarative TOML file naming the design spaces, the population, the data and the proxy.

    name = "quickstart"
    seed = 0
    measure_latency = true          # batch-1 latency of every model on the worker's device
    time_limit = 600                # seconds per model; a model over it is stored with status "timeout"
    # storage = "postgresql+psycopg://user:pw@host/db"   # optional; default: an embedded journal in --dir

    [dataset]                       # regnet_space.proxy.data.load_dataset arguments
    name = "fashion-mnist"          # fashion-mnist | cifar10:DIR | folder:DIR | synthetic
    val_size = 10000

    [proxy]                         # any regnet_space.proxy.config.ProxyConfig field
    epochs = 2

    [complexity]                    # complexity window applied to every space (K/M/G suffixes)
    flops = "5M:20M"

    # input_form = "small"          # auto (default: the space's own form) | imagenet | small (docs/spaces.md)

    [[spaces]]                      # one table per design space
    space = "anynetx_a"             # a built-in space or a TOML file (relative to this file)
    n = 32
    # flops = "8M:12M"              # a per-space window overrides [complexity]
    # input_form = "imagenet"       # a per-space input form overrides the study's
    # models = "listed.json"        # train these models (specs, params, seeds) instead of sampling n

    [workers]                       # fault tolerance of the worker pool
    heartbeat_interval = 5          # seconds between a running model's heartbeats
    stale_after = 60                # a running model silent this long is taken to be dead and retried
    outage_timeout = 600            # seconds a lost database connection is retried (a restart, a fail-over)
    max_attempts = 3                # a model whose training fails this often is given up (status "failed")

    [launcher]                      # how `study run` starts its workers (flags override; see study/slurm.py)
    launcher = "slurm"              # local (default) | slurm: the workers as one SLURM job array
    workers = 8                     # array tasks (--workers)
    partition = "gpu"               # cpus_per_worker, gpus_per_worker, mem, time ("HH:MM:SS") likewise
    requeue_before = 90             # seconds before the time limit a task is stopped and requeued
    max_requeues = 20               # per task
    slurm_args = { account = "lab" }  # any other sbatch option
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import userfiles
from ..errors import UserError
from ..proxy.data_options import check_dataset_options
from ..redaction import remember_url
from .launcher import launcher_settings

COMPLEXITY_METRICS = ("flops", "params", "acts", "mac")
WORKER_KEYS = ("heartbeat_interval", "stale_after", "outage_timeout", "max_attempts")
OUTAGE_TIMEOUT = 600.0  # seconds a storage outage is ridden out: a database restart or fail-over
_STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TOP_KEYS = {"name", "description", "seed", "measure_latency", "time_limit", "storage", "dir", "dataset", "proxy",
             "complexity", "spaces", "workers", "input_form", "launcher"}
_SPACE_KEYS = ("space", "n", "label", "input_form", "models", *COMPLEXITY_METRICS)
MODELS_FORMAT = "regnet_space.models/1"


@dataclass(frozen=True)
class ListedModel:
    """A model a study trains as given rather than sampled (``models = FILE`` in a [[spaces]] table): its drawn
    ``params``, its spec (JSON text) and the ``seed`` it trains with. The design loop lists the projections of
    a paired evaluation this way, each with its source model's seed, so a pair shares seed and data order."""

    params: dict[str, Any]
    spec: str
    seed: int


@dataclass(frozen=True)
class SpaceEntry:
    """One design space of the study and its population size."""

    label: str
    space: str
    n: int
    windows: dict[str, tuple[float, float]]
    input_form: str | None = None  # None: the space's own (see spaces/input_form.py)
    listed: tuple[ListedModel, ...] = ()  # given: these models, in order, instead of n sampled ones


@dataclass(frozen=True)
class StudySpec:
    name: str
    spaces: tuple[SpaceEntry, ...]
    seed: int = 0
    description: str = ""
    dataset: dict[str, Any] = field(default_factory=dict)
    proxy: dict[str, Any] = field(default_factory=dict)
    measure_latency: bool = True
    time_limit: float | None = None
    storage: str | None = None
    directory: str | None = None  # the spec's `dir`, resolved against its folder: where its journal lives
    heartbeat_interval: float = 5.0
    stale_after: float = 60.0
    outage_timeout: float = 600.0
    max_attempts: int = 3
    launcher: dict[str, Any] = field(default_factory=dict)  # the [launcher] table, checked by study.slurm
    text: str = ""
    path: str = ""

    @property
    def total(self) -> int:
        return sum(entry.n for entry in self.spaces)

    @property
    def population_sizes(self) -> dict[str, int]:
        """Space label -> n, the population each space must reach."""
        return {entry.label: entry.n for entry in self.spaces}

    def entry(self, label: str) -> SpaceEntry:
        for entry in self.spaces:
            if entry.label == label:
                return entry
        raise UserError(f"study {self.name!r} has no space {label!r} (it has: "
                        f"{', '.join(e.label for e in self.spaces)})")


# A space named by a file: a TOML space, or a pycls sweep config read as its space (spaces/pycls_sweep.py).
SPACE_FILES = (".toml", ".yaml", ".yml")
_PROXY_KIND_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _expect(value: Any, kind: type | tuple[type, ...], key: str, what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise UserError(f"{key}: must be {what}, got {value!r}")
    return value


def _windows(table: dict[str, Any], where: str) -> dict[str, tuple[float, float]]:
    from ..spaces import parse_window

    windows = {}
    for metric, text in table.items():
        if metric not in COMPLEXITY_METRICS:
            raise UserError(f"{where}.{metric}: unknown complexity metric (known: {', '.join(COMPLEXITY_METRICS)})")
        _expect(text, str, f"{where}.{metric}", 'a window such as "5M:20M"')
        try:
            windows[metric] = parse_window(text)
        except UserError as exc:
            raise UserError(f"{where}.{metric}: {exc}") from None
    return windows


def load_study_spec(path: str | Path) -> StudySpec:
    """Read and validate a study TOML; every error names the key."""
    path = Path(path)
    text = userfiles.read_text(path, "study spec")
    data = userfiles.parse_toml(text, str(path))
    try:
        return _parse(data, text, path)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def _parse(data: dict[str, Any], text: str, path: Path) -> StudySpec:
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise UserError(f"{unknown[0]}: unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    if "name" not in data:
        raise UserError("name: missing")
    name = _expect(data["name"], str, "name", "a string")
    if not _STUDY_NAME.fullmatch(name):
        raise UserError(f"name: {name!r} must start with a letter or digit and hold only letters, digits, '.', "
                        f"'_' and '-' (it names the study's folder)")
    seed = _expect(data.get("seed", 0), int, "seed", "an integer")
    if seed < 0:
        raise UserError(f"seed: must be an integer >= 0, got {seed}")
    dataset = _expect(data.get("dataset", {}), dict, "dataset", "a table")
    check_dataset_options(dataset)
    proxy = _expect(data.get("proxy", {}), dict, "proxy", "a table")
    _check_proxy(proxy)
    common = _windows(_expect(data.get("complexity", {}), dict, "complexity", "a table"), "complexity")
    workers = _expect(data.get("workers", {}), dict, "workers", "a table")
    unknown = sorted(set(workers) - set(WORKER_KEYS))
    if unknown:
        raise UserError(f"workers.{unknown[0]}: unknown key (known: {', '.join(WORKER_KEYS)})")
    heartbeat = _seconds(workers.get("heartbeat_interval", 5.0), "workers.heartbeat_interval")
    stale = _seconds(workers.get("stale_after", 60.0), "workers.stale_after")
    outage = _seconds(workers.get("outage_timeout", OUTAGE_TIMEOUT), "workers.outage_timeout", allow_zero=True)
    max_attempts = _expect(workers.get("max_attempts", 3), int, "workers.max_attempts", "an integer")
    if max_attempts < 1:
        raise UserError(f"workers.max_attempts: must be >= 1, got {max_attempts}")
    if stale <= 2 * heartbeat:
        raise UserError("workers.stale_after: must be more than twice workers.heartbeat_interval")
    study_form = _input_form(data.get("input_form"), "input_form")
    raw_spaces = _expect(data.get("spaces"), list, "spaces", "a list of [[spaces]] tables")
    if not raw_spaces:
        raise UserError("spaces: the study needs at least one [[spaces]] table")
    entries = []
    for i, raw in enumerate(raw_spaces):
        where = f"spaces[{i}]"
        _expect(raw, dict, where, "a table")
        unknown = sorted(set(raw) - set(_SPACE_KEYS))
        if unknown:
            raise UserError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(_SPACE_KEYS)})")
        for key in ("space", "n"):
            if key not in raw:
                raise UserError(f"{where}.{key}: missing")
        space = _expect(raw["space"], str, f"{where}.space", "a built-in space name or a TOML path")
        if space.endswith(SPACE_FILES) and not Path(space).is_absolute():
            space = str((path.parent / space).resolve())
        _check_space(space, f"{where}.space")
        n = _expect(raw["n"], int, f"{where}.n", "an integer")
        if n < 1:
            raise UserError(f"{where}.n: must be >= 1, got {n}")
        label = _expect(raw.get("label", Path(space).stem if space.endswith(SPACE_FILES) else space), str,
                        f"{where}.label", "a string")
        windows = {**common, **_windows({k: raw[k] for k in COMPLEXITY_METRICS if k in raw}, where)}
        form = _input_form(raw.get("input_form", study_form), f"{where}.input_form")
        listed = ()
        if "models" in raw:
            listed = read_listed(path.parent / _expect(raw["models"], str, f"{where}.models", "a JSON file"))
            if len(listed) != n:
                raise UserError(f"{where}.n: {n}, but {raw['models']} lists {len(listed)} models")
        entries.append(SpaceEntry(label=label, space=space, n=n, windows=windows, input_form=form, listed=listed))
    labels = [e.label for e in entries]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise UserError(f"spaces: label {duplicates[0]!r} appears twice; give each a distinct `label`")
    time_limit = data.get("time_limit")
    if time_limit is not None:
        time_limit = _seconds(time_limit, "time_limit")
    launcher = _expect(data.get("launcher", {}), dict, "launcher", "a table")
    launcher_settings(launcher)
    storage = data.get("storage")
    if storage is not None:
        _expect(storage, str, "storage", "a storage URL")
        remember_url(storage)
    directory = data.get("dir")
    if directory is not None:  # written by `design` into each population's spec, so a joining worker finds it
        directory = str(path.parent / _expect(directory, str, "dir", "a folder, relative to this file"))
    return StudySpec(
        name=name, spaces=tuple(entries), seed=seed, description=str(data.get("description", "")),
        dataset=dataset, proxy=proxy,
        measure_latency=_expect(data.get("measure_latency", True), bool, "measure_latency", "true or false"),
        time_limit=time_limit, storage=storage, directory=directory, heartbeat_interval=heartbeat, stale_after=stale,
        outage_timeout=outage, max_attempts=max_attempts, launcher=launcher,
        text=text, path=str(path))


def read_listed(path: Path) -> tuple[ListedModel, ...]:
    """The models of a ``models = FILE`` table: ``{"format": MODELS_FORMAT, "models": [{"params": {...},
    "spec": {...}, "seed": 0}, ...]}``, every spec parsed (a hostile file fails here with one line)."""
    from ..models.spec import AnyNetSpec

    data = userfiles.parse_json(userfiles.read_text(path, "model list"), str(path))
    if not isinstance(data, dict) or data.get("format") != MODELS_FORMAT or not isinstance(data.get("models"), list):
        raise UserError(f"{path}: not a model list (expected an object with \"format\": \"{MODELS_FORMAT}\" "
                        f"and a \"models\" list)")
    out = []
    for i, item in enumerate(data["models"]):
        where = f"{path}: models[{i}]"
        if not isinstance(item, dict) or set(item) != {"params", "spec", "seed"}:
            raise UserError(f"{where}: expected an object with exactly params, spec and seed")
        if not isinstance(item["params"], dict):
            raise UserError(f"{where}.params: expected an object")
        seed = item["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
            raise UserError(f"{where}.seed: expected an integer >= 0, got {seed!r}")
        try:
            spec = AnyNetSpec.from_dict(item["spec"]).to_json()
        except (UserError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise UserError(f"{where}.spec: not a model spec ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})") from None
        out.append(ListedModel(dict(item["params"]), spec, seed))
    if not out:
        raise UserError(f"{path}: lists no models")
    return tuple(out)


def _input_form(value: Any, key: str) -> str | None:
    from ..spaces.space import INPUT_FORMS

    if value is None:
        return None
    if value not in INPUT_FORMS:
        raise UserError(f"{key}: must be one of {', '.join(INPUT_FORMS)}, got {value!r}")
    return value


def _seconds(value: Any, key: str, *, allow_zero: bool = False) -> float:
    """A finite, positive number of seconds (or >= 0 where zero means "do not wait")."""
    _expect(value, (int, float), key, "a number of seconds")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{key}: must be a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def _check_space(space: str, key: str) -> None:
    """The space must exist and parse, so a typo fails here rather than in every worker."""
    from ..spaces import load_space

    try:
        load_space(space)
    except UserError as exc:
        raise UserError(f"{key}: {exc}") from None


def _check_proxy(proxy: dict[str, Any]) -> None:
    """Fail early, naming the key, if [proxy] sets a field the trainer does not have, or a value of the wrong
    type or out of range (the trainer's own checks, run on the spec's values)."""
    from dataclasses import fields

    from ..proxy.config import ProxyConfig

    kinds = {f.name: type(f.default) for f in fields(ProxyConfig)}
    unknown = sorted(set(proxy) - set(kinds))
    if unknown:
        raise UserError(f"proxy.{unknown[0]}: unknown key (known: {', '.join(sorted(kinds))})")
    for key, value in proxy.items():
        kind = kinds[key]
        if kind is type(None):  # optional switches (channels_last): true, false or absent
            kind = bool
        allowed = (int, float) if kind is float else kind
        if not isinstance(value, allowed) or (kind is not bool and isinstance(value, bool)):
            raise UserError(f"proxy.{key}: must be {_PROXY_KIND_WORDS[kind]}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"proxy.{key}: must be a finite number, got {value!r}")
    ProxyConfig.from_dict(proxy)
