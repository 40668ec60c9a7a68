"""The per-layer tally behind ``complexity(spec)`` (complexity.py): a ComplexityCounter adds up flops, params,
acts and memory access cost layer by layer, and ``Complexity`` holds the totals.

Conventions (those of the RegNet paper and pycls, so published numbers match):
- ``flops`` are multiply-adds of conv and linear layers, bias additions included;
  BN, activations, pooling, residual adds and the SE multiply add none.
  ``bias_flops`` is the bias part, so ``flops - bias_flops`` equals FlopCounterMode's total / 2.
- ``params`` counts learnable parameters (BN: 2 per channel; running stats are buffers).
- ``acts`` is the total size of conv and linear output tensors, per image.
- ``mac`` (memory access cost, ShuffleNet v2) is, per image, the elements every layer reads and writes:
  input + output feature maps, plus weights for conv and linear layers; for a 1x1 conv that is ShuffleNet
  v2's h*w*(c_in + c_out) + c_in*c_out, lowest at fixed flops when c_in == c_out (guideline G1).
  Element-wise layers (BN, activations, adds, pools, the SE multiply) count their inputs and output, and so
  do the copies a concatenation or channel shuffle makes (a channel split is a view and costs nothing);
  that is what makes them cost time without costing flops (ShuffleNet v2's guideline G4).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, asdict
from typing import Iterator


@dataclass(frozen=True)
class Complexity:
    flops: int
    params: int
    acts: int
    mac: int
    bias_flops: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class ComplexityCounter:
    """Walks a network layer by layer, tracking the spatial size and accumulating the totals.

    Each method mirrors one layer the builder creates and updates ``h``/``w`` as that layer does.
    """

    def __init__(self, resolution: int) -> None:
        self.h = self.w = resolution
        self.flops = self.params = self.acts = self.mac = self.bias_flops = 0

    @property
    def area(self) -> int:
        return self.h * self.w

    def conv(self, c_in: int, c_out: int, kernel: int, *, stride: int = 1, groups: int = 1,
             bias: bool = False, padding: int | None = None) -> None:
        if padding is None:
            padding = kernel // 2
        in_area = self.area
        self.h = conv_output_size(self.h, kernel, stride, padding)
        self.w = conv_output_size(self.w, kernel, stride, padding)
        weights = kernel * kernel * c_in * c_out // groups
        out = c_out * self.area
        self.flops += weights * self.area
        self.params += weights
        if bias:
            self.flops += out
            self.bias_flops += out
            self.params += c_out
        self.acts += out
        self.mac += c_in * in_area + out + weights + (c_out if bias else 0)

    def linear(self, c_in: int, c_out: int, *, bias: bool = True) -> None:
        weights = c_in * c_out
        self.flops += weights + (c_out if bias else 0)
        self.bias_flops += c_out if bias else 0
        self.params += weights + (c_out if bias else 0)
        self.acts += c_out
        self.mac += c_in + c_out + weights + (c_out if bias else 0)

    def batch_norm(self, channels: int) -> None:
        self.params += 2 * channels
        self.elementwise(channels)

    def elementwise(self, channels: int, inputs: int = 1) -> None:
        """An activation, copy (concatenation, shuffle), residual add or gate multiply (inputs=2), or a sum of
        ``inputs`` tensors: reads the inputs, writes one output."""
        self.mac += (inputs + 1) * channels * self.area

    def pool(self, channels: int, kernel: int, stride: int, padding: int, *, ceil_mode: bool = False) -> None:
        in_area = self.area
        if ceil_mode:
            self.h = -(-(self.h + 2 * padding - kernel) // stride) + 1
            self.w = -(-(self.w + 2 * padding - kernel) // stride) + 1
        else:
            self.h = conv_output_size(self.h, kernel, stride, padding)
            self.w = conv_output_size(self.w, kernel, stride, padding)
        self.mac += channels * (in_area + self.area)

    def global_pool(self, channels: int) -> None:
        self.mac += channels * (self.area + 1)
        self.h = self.w = 1

    @contextlib.contextmanager
    def branch(self) -> Iterator[None]:
        """A side path (shortcut, SE) that starts from the current size and leaves it unchanged."""
        h, w = self.h, self.w
        yield
        self.h, self.w = h, w

    def result(self) -> Complexity:
        return Complexity(flops=self.flops, params=self.params, acts=self.acts, mac=self.mac,
                          bias_flops=self.bias_flops)
