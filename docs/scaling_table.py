"""Prints the table of docs/scaling.md: RegNetX-200MF scaled 4x and 16x by each strategy (analytic complexity)."""

import math

from regnet_space.models.complexity import complexity
from regnet_space.models.resolve import resolve_model
from regnet_space.models.scaling import scale_to_flops, strategy
from regnet_space.models.summary import human

base = resolve_model("regnetx_002")
b = complexity(base)
print(f"Base: regnetx_002 at 224 px: flops {human(b.flops)}, params {human(b.params)}, acts {human(b.acts)}.\n")
print("| strategy | s | flops | error vs target | params (growth) | acts (growth) | acts exponent: predicted / measured | depths | widths | res |")
print("|---|---|---|---|---|---|---|---|---|---|")

for name in ("d", "w", "r", "dw", "dr", "wr", "dwr", "dWr"):
    how = strategy(name, 0.8)
    for s in (4, 16):
        spec, _ = scale_to_flops(base, s * b.flops, how)
        c = complexity(spec)
        print(f"| {how.name} | {s} | {human(c.flops)} | {c.flops / (s * b.flops) - 1:+.1%} | {human(c.params)} ({c.params / b.params:.1f}x) "
              f"| {human(c.acts)} ({c.acts / b.acts:.2f}x) | {how.acts_exponent:.2f} / {math.log(c.acts / b.acts) / math.log(s):.2f} "
              f"| {spec.depths} | {spec.widths} | {spec.resolution} |")
