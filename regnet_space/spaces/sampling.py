"""Draw models from a design space: reproducible, constrained, and inside complexity windows.

Draws come in fixed-size batches from one NumPy generator seeded by the caller, one column per dimension in a
fixed order, so model k of a population depends only on the seed (not on n, the windows or the code path).
Each draw is made valid (group compatibility, and fields a block type lacks reset to their defaults), then
rejected unless it meets the space's constraints and every window. For X-block spaces a vectorised prefilter
(``vectorized.py``) computes constraints and complexity for a whole batch, so only kept draws become specs;
the per-draw path (``vectorized=False``) checks each draw with the per-model code, and tests hold the two to
the same output.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from tqdm import tqdm

from ..errors import UserError
from ..models.complexity import complexity
from ..models.regnet import RegNetParams, make_compatible, quantized_block_widths, runs
from ..models.spec import AnyNetSpec, HeadSpec, StageSpec, StemSpec, check_input_size
from ..models.summary import human
from . import vectorized
from .distributions import Distribution, draw_non_decreasing
from .input_form import for_input
from .limits import REFERENCE_INPUT, meets_limits, within_limits
from .space import (HEAD_TYPES, REGNET_FIELDS, STAGE_ALIASES, STAGE_TYPES, STEM_TYPES, DesignSpace,
                    field_defaults, load_space)
from .windows import check_windows

BATCH = 16384  # draws per batch; fixed so that the stream of draws depends on the seed alone
REGNET_PARAMS = ("depth", "w0", "wa", "wm", "group_width", "bottleneck_ratio", "se_ratio")
# Stage fields a draw's value is never reset for (a bad value there is an error in the space).
_FIXED_BY_DRAW = ("depth", "width", "block", "stride", "group_width")
# Stage fields the vectorised X-block prefilter models; any other field must hold its default to use it.
_VECTOR_FIELDS = ("depth", "width", "bottleneck_ratio", "group_width", "se_ratio", "block", "stride")


@dataclass(frozen=True)
class SampledModel:
    """One sampled network: its spec, the parameters drawn for it (flat), and its RegNet form if it has one.

    ``params`` holds the space's core parameters whether drawn or fixed (AnyNet: d1.., w1.., b1.., g1..;
    RegNet: depth, w0, wa, wm, group_width, bottleneck_ratio, se_ratio) plus every other drawn dimension.
    They are the values as drawn: the spec holds them after the group-compatibility rule.
    """

    spec: AnyNetSpec
    params: dict[str, Any]
    regnet: RegNetParams | None = None


def stage_key(name: str, index: int) -> str:
    """The params key of stage ``index`` (0-based)'s field: d1, w2, b3, g4, stride1, block2, ..."""
    return f"{STAGE_ALIASES.get(name, name)}{index + 1}"


@dataclass(frozen=True)
class SampleStats:
    """How a population was drawn: ``drawn`` draws, ``valid`` of them met the space's constraints (windows
    aside), spanning ``flops_span``; the rest of the rejections were the windows'."""

    drawn: int
    valid: int
    accepted: int
    flops_span: tuple[float, float]

    @property
    def rejection_rate(self) -> float:
        return 1 - self.accepted / self.drawn if self.drawn else 0.0


def sample_models(space: DesignSpace | str, n: int, *, seed: int,
                  windows: dict[str, tuple[float, float]] | None = None, resolution: int = 224,
                  in_channels: int = 3, num_classes: int = 1000, max_draws: int | None = None,
                  progress: bool = False, vectorized: bool = True, input_form: str | None = None
                  ) -> list[SampledModel]:
    """The first ``n`` models of the seed's stream that meet the space's constraints and the windows.

    ``windows`` maps "flops", "params", "acts" or "mac" to a closed (lo, hi) range, measured at the given
    input size. The space is sampled in its input form at that size (``input_form`` overrides the space's;
    see input_form.py). After ``max_draws`` draws (default 1,000,000 + 1,000 n) without n models, raises
    UserError. ``vectorized=False`` checks every draw with the per-model code (same output, slower; for tests).
    """
    return sample_with_stats(space, n, seed=seed, windows=windows, resolution=resolution,
                             in_channels=in_channels, num_classes=num_classes, max_draws=max_draws,
                             progress=progress, vectorized=vectorized, input_form=input_form)[0]


def sample_with_stats(space: DesignSpace | str, n: int, *, seed: int,
                      windows: dict[str, tuple[float, float]] | None = None, resolution: int = 224,
                      in_channels: int = 3, num_classes: int = 1000, max_draws: int | None = None,
                      progress: bool = False, vectorized: bool = True, input_form: str | None = None
                      ) -> tuple[list[SampledModel], SampleStats]:
    """``sample_models`` plus how many draws it took (for the rejection rate)."""
    if isinstance(space, str):
        space = load_space(space)
    check_input_size(resolution=resolution, in_channels=in_channels, num_classes=num_classes)
    space = for_input(space, resolution, input_form)
    if not isinstance(n, int) or n < 0:
        raise UserError(f"n: must be an integer >= 0, got {n!r}")
    windows = check_windows(windows)
    sampler = _Sampler(space, resolution=resolution, in_channels=in_channels, num_classes=num_classes,
                       vectorized=vectorized)
    max_draws = 1_000_000 + 1_000 * n if max_draws is None else max_draws
    rng = np.random.default_rng(seed)
    models: list[SampledModel] = []
    drawn = 0
    with tqdm(total=n, disable=not progress, desc=f"sampling {space.name}", unit="model") as bar:
        while len(models) < n and drawn < max_draws:
            size = min(BATCH, max_draws - drawn)
            columns = sampler.draw(rng)
            if size < BATCH:
                columns = {k: v[:size] if isinstance(v, np.ndarray) else v for k, v in columns.items()}
            new, used = sampler.accept(columns, size, windows, n - len(models))
            models += new
            drawn += used
            bar.update(len(new))
    if len(models) < n:
        raise UserError(sampler.shortfall(len(models), n, drawn, windows))
    return models, SampleStats(drawn, sampler.valid, len(models), tuple(sampler.flops_span))


def _compatible_stage(fields: dict[str, Any]) -> StageSpec:
    """A draw's stage with the group-compatibility rule applied (to block types that have groups)."""
    if fields["group_width"] > 0:
        if not _takes_groups(fields["block"]):
            fields["group_width"] = 0
        else:
            (fields["width"],), (fields["group_width"],) = make_compatible(
                [fields["width"]], [fields["bottleneck_ratio"]], [fields["group_width"]])
    return StageSpec(**fields)


@lru_cache(maxsize=None)
def _takes_groups(block: str) -> bool:
    """Whether a block type has a group width: StageSpec's validation of such a stage with g = 1 (which
    divides every width) does not name group_width."""
    try:
        StageSpec(depth=1, width=1024, block=block, group_width=1).validate("probe")
    except UserError as exc:
        return not str(exc).startswith("probe.group_width:")
    return True


def _repaired_stage(fields: dict[str, Any], where: str) -> StageSpec:
    """A draw's stage whose values the block type rejects (its validation names the field) are reset to
    their defaults, e.g. a drawn b = 4 on a ``res_basic`` stage becomes 1. Other errors are the space's."""
    stage = _compatible_stage(fields)
    defaults = field_defaults(StageSpec)
    while True:
        try:
            stage.validate(where)
            return stage
        except UserError as exc:
            name = str(exc)[len(where) + 1:].split(":")[0]
            if name in _FIXED_BY_DRAW or name not in defaults or fields[name] == defaults[name]:
                raise
            fields[name] = defaults[name]
            stage = StageSpec(**fields)


class _Sampler:
    """A space compiled into draw columns, an exact per-draw builder and (when it applies) a vector prefilter."""

    def __init__(self, space: DesignSpace, *, resolution: int, in_channels: int, num_classes: int,
                 vectorized: bool) -> None:
        self.space = space
        self.input = dict(resolution=resolution, in_channels=in_channels, num_classes=num_classes)
        self.draws: list[tuple[str, Distribution]] = []
        self.fixed: dict[str, Any] = {}
        self.copies: dict[str, str] = {}  # shared stage fields: key -> the key drawn once for all stages
        self.joint: list[tuple[list[str], list[Distribution]]] = []  # monotone stage fields, drawn together
        for name in STEM_TYPES:
            self._add(f"stem_{name}", space.stem_value(name))
        for name in HEAD_TYPES:
            self._add(f"head_{name}", space.head_value(name))
        if space.is_regnet:
            defaults = field_defaults(RegNetParams)
            for name in REGNET_FIELDS:
                self._add(name, space.regnet.get(name, defaults.get(name)))
            for name, value in space.stage.items():
                self._add(name, value)
            core = list(REGNET_PARAMS)
        else:
            for name in STAGE_TYPES:
                values = [space.stage_value(i, name) for i in range(space.num_stages)]
                keys = [stage_key(name, i) for i in range(space.num_stages)]
                if name in space.shared and isinstance(values[0], Distribution):  # (a fixed value is just fixed)
                    self._add(keys[0], values[0])
                    if isinstance(values[0], Distribution):
                        self.copies.update((key, keys[0]) for key in keys[1:])
                    else:  # a shared fixed value is simply fixed in every stage
                        self.fixed.update((key, values[0]) for key in keys[1:])
                elif name in space.monotone and any(isinstance(v, Distribution) for v in values):
                    point = [Distribution("choice", options=(v,)) for v in values]  # a fixed stage: one value
                    self.joint.append((keys, [v if isinstance(v, Distribution) else p for v, p in zip(values, point)]))
                else:
                    for key, value in zip(keys, values):
                        self._add(key, value)
            core = [stage_key(name, i) for name in STAGE_ALIASES for i in range(space.num_stages)]
        drawn = ([key for key, _ in self.draws] + [key for keys, _ in self.joint for key in keys]
                 + [k for k, src in self.copies.items() if src in dict(self.draws)])
        self.param_keys = core + [k for k in drawn if k not in core]
        self.stage_keys = [[(name, stage_key(name, i)) for name in STAGE_TYPES]
                           for i in range(space.num_stages or 0)]
        self.vector = vectorized and self._vector_applies()
        self.flops_span = [math.inf, -math.inf]
        self.valid = 0

    def _add(self, key: str, value: Any) -> None:
        if isinstance(value, Distribution):
            self.draws.append((key, value))
        else:
            self.fixed[key] = value

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        columns: dict[str, Any] = dict(self.fixed)
        for key, dist in self.draws:
            columns[key] = dist.values[dist.draw(rng, BATCH)]
        for keys, dists in self.joint:
            columns.update(zip(keys, draw_non_decreasing(dists, rng, BATCH)))
        for key, source in self.copies.items():
            columns[key] = columns[source]
        return columns

    # -- accepting draws --

    def accept(self, columns: dict[str, Any], size: int, windows: dict[str, tuple[float, float]],
               wanted: int) -> tuple[list[SampledModel], int]:
        """The draws of this batch, in order, that meet the constraints and windows (at most ``wanted``),
        and how many draws that used (the batch, or up to the last model taken)."""
        if self.vector:
            candidates, metrics = self._prefilter(columns, size)
            self._track(metrics["flops"])
            inside = np.ones(len(candidates), dtype=bool)
            for metric, (lo, hi) in windows.items():
                inside &= (metrics[metric] >= lo) & (metrics[metric] <= hi)
            candidates = candidates[inside]
        else:
            candidates = np.arange(size)
        drawn = {k: v[candidates].tolist() for k, v in columns.items() if isinstance(v, np.ndarray)}
        models = []
        for j, r in enumerate(candidates.tolist()):
            model = self.build({**self.fixed, **{k: values[j] for k, values in drawn.items()}})
            if model is None:
                continue
            if not self.vector:  # the vectorised metrics are exact; otherwise count this model
                cx = complexity(model.spec)
                self._track([cx.flops])
                if not all(lo <= getattr(cx, metric) <= hi for metric, (lo, hi) in windows.items()):
                    continue
            models.append(model)
            if len(models) == wanted:
                return models, r + 1
        return models, size

    def _track(self, flops: Any) -> None:
        if len(flops):
            self.valid += len(flops)
            self.flops_span = [min(self.flops_span[0], int(np.min(flops))), max(self.flops_span[1], int(np.max(flops)))]

    def shortfall(self, got: int, n: int, drawn: int, windows: dict[str, tuple[float, float]]) -> str:
        limits = ", ".join(f"{m} {human(lo)}:{human(hi)}" for m, (lo, hi) in windows.items()) or "no window"
        message = f"space {self.space.name}: only {got} of {n} models found in {drawn:,} draws ({limits}); "
        if not self.valid:
            return message + "no draw met the space's constraints"
        lo, hi = self.flops_span
        return (message + f"the {self.valid:,} draws that met the space's constraints spanned flops "
                          f"{human(lo)} to {human(hi)}")

    # -- the exact per-draw path --

    def build(self, row: dict[str, Any]) -> SampledModel | None:
        """The model of one draw, or None if it breaks a constraint."""
        try:
            model = self._build_regnet(row) if self.space.is_regnet else self._build_anynet(row)
        except UserError as exc:
            raise UserError(f"space {self.space.name}: a draw is not a valid network: {exc}") from None
        if model is not None and self.space.pycls_limits and not meets_limits(model.spec):
            return None
        return model

    def _stem(self, row: dict[str, Any]) -> StemSpec:
        return StemSpec(**{name: row[f"stem_{name}"] for name in STEM_TYPES})

    def _head(self, row: dict[str, Any]) -> HeadSpec:
        return HeadSpec(**{name: row[f"head_{name}"] for name in HEAD_TYPES})

    def _build_anynet(self, row: dict[str, Any]) -> SampledModel | None:
        fields = [{name: row[key] for name, key in keys} for keys in self.stage_keys]
        stages = [_compatible_stage(dict(f)) for f in fields]
        for name in self.space.monotone:
            values = [getattr(stage, name) for stage in stages]
            if any(b < a for a, b in zip(values, values[1:])):
                return None
        stem, head = self._stem(row), self._head(row)
        try:
            spec = AnyNetSpec(stages=tuple(stages), stem=stem, head=head, **self.input)
        except UserError:  # a value the block type does not take: reset it (or raise if it is not that)
            stages = [_repaired_stage(f, f"stages[{i}]") for i, f in enumerate(fields)]
            spec = AnyNetSpec(stages=tuple(stages), stem=stem, head=head, **self.input)
        return SampledModel(spec, {k: row[k] for k in self.param_keys})

    def _build_regnet(self, row: dict[str, Any]) -> SampledModel | None:
        params = RegNetParams(**{name: row[name] for name in REGNET_FIELDS}, stem_width=row["stem_width"],
                              stem_type=row["stem_type"])
        if not self.vector and not self._stage_count_ok(params):  # (the vectorised prefilter checked it)
            return None
        spec = params.to_spec(**self.input)
        stem, head = self._stem(row), self._head(row)
        extra = {name: row[name] for name in self.space.stage}
        if extra or stem != spec.stem or head != spec.head:
            spec = dataclasses.replace(spec, stem=stem, head=head,
                                       stages=tuple(dataclasses.replace(s, **extra) for s in spec.stages))
        return SampledModel(spec, {k: row[k] for k in self.param_keys}, params)

    def _stage_count_ok(self, params: RegNetParams) -> bool:
        """pycls's rule: a draw whose exponents k skip a stage (two k's quantize to one width, or a k gets no
        blocks) is rejected, i.e. there must be exactly max(k) + 1 stages; and their number is bounded."""
        widths, _ = runs(quantized_block_widths(params.depth, params.w0, params.wa, params.wm, params.q))
        last_k = round(math.log((params.w0 + params.wa * (params.depth - 1)) / params.w0) / math.log(params.wm))
        lo, hi = self.space.regnet_stages
        return len(widths) == last_k + 1 and lo <= len(widths) <= hi

    # -- the vectorised prefilter --

    def _vector_applies(self) -> bool:
        """Whether every draw is an X-block network the vectorised code models exactly."""
        if any(key.startswith(("stem_", "head_")) for key, _ in self.draws):
            return False
        defaults = field_defaults(StageSpec)
        if self.space.is_regnet:
            lo, hi = self.space.regnet_stages
            ok_fields = all(not isinstance(v, Distribution) and (v == defaults.get(k) or (k, v) == ("stride", 2)
                                                                   or (k, v) == ("block", "res_bottleneck"))
                            for k, v in self.space.stage.items())
            return ok_fields and lo == hi and "q" in self.fixed and "first_stride" in self.fixed
        for i in range(self.space.num_stages):
            if self.fixed.get(stage_key("block", i)) != "res_bottleneck" or stage_key("stride", i) not in self.fixed:
                return False
            if any(name not in _VECTOR_FIELDS and self.fixed.get(stage_key(name, i), None) != defaults.get(name)
                   for name in STAGE_TYPES):
                return False
        return True

    def _prefilter(self, columns: dict[str, Any], size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(the draws of the batch that meet the constraints, their complexity), as arrays; complexity is
        computed for those draws only."""
        def column(key: str) -> np.ndarray:
            return np.broadcast_to(columns[key], (size,))

        if self.space.is_regnet:
            num_stages = self.space.regnet_stages[0]
            valid, widths, depths = vectorized.regnet_stages(
                column("depth"), column("w0"), column("wa"), column("wm"), self.fixed["q"], num_stages)
            rows = np.flatnonzero(valid)
            b, g, se = (column(key)[rows] for key in ("bottleneck_ratio", "group_width", "se_ratio"))
            stages = []
            for w, d in zip(widths, depths):
                w, g_s = vectorized.make_compatible(w[rows], b, g)
                stages.append(dict(depth=d[rows], width=w, bottleneck_ratio=b, group_width=g_s, se_ratio=se))
            strides = [self.fixed["first_stride"]] + [2] * (num_stages - 1)
        else:
            valid = np.ones(size, dtype=bool)
            stages, strides = [], []
            for i in range(self.space.num_stages):
                stage = {name: column(stage_key(name, i)) for name in _VECTOR_FIELDS[:5]}
                stage["width"], stage["group_width"] = vectorized.make_compatible(
                    stage["width"], stage["bottleneck_ratio"], stage["group_width"])
                stages.append(stage)
                strides.append(self.fixed[stage_key("stride", i)])
            for name in self.space.monotone:
                values = [stage[name] if name in stage else column(stage_key(name, i))
                          for i, stage in enumerate(stages)]
                for a, b in zip(values, values[1:]):
                    valid &= b >= a
            rows = np.flatnonzero(valid)
            stages = [{name: values[rows] for name, values in stage.items()} for stage in stages]
        if self.space.pycls_limits:  # judged in the ImageNet form at 224 px, as limits.py explains
            ref = vectorized.x_network_complexity(StemSpec(), self._head(self.fixed), stages, [2] * len(stages),
                                                  **REFERENCE_INPUT)
            ok = within_limits(ref["flops"], ref["params"], ref["acts"])
            rows = rows[ok]
            stages = [{name: values[ok] for name, values in stage.items()} for stage in stages]
        metrics = vectorized.x_network_complexity(self._stem(self.fixed), self._head(self.fixed), stages, strides,
                                                  **self.input)
        return rows, metrics
