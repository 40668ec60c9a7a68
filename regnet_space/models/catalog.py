"""Published models by the names timm gives them: the 24 RegNetX/RegNetY models of the RegNet paper."""

from __future__ import annotations

from .regnet import RegNetParams

# name: (depth, w0, wa, wm, group_width), as in pycls's model zoo configs.
_REGNETX = {
    "regnetx_002": (13, 24, 36.44, 2.49, 8),
    "regnetx_004": (22, 24, 24.48, 2.54, 16),
    "regnetx_006": (16, 48, 36.97, 2.24, 24),
    "regnetx_008": (16, 56, 35.73, 2.28, 16),
    "regnetx_016": (18, 80, 34.01, 2.25, 24),
    "regnetx_032": (25, 88, 26.31, 2.25, 48),
    "regnetx_040": (23, 96, 38.65, 2.43, 40),
    "regnetx_064": (17, 184, 60.83, 2.07, 56),
    "regnetx_080": (23, 80, 49.56, 2.88, 120),
    "regnetx_120": (19, 168, 73.36, 2.37, 112),
    "regnetx_160": (22, 216, 55.59, 2.1, 128),
    "regnetx_320": (23, 320, 69.86, 2.0, 168),
}
_REGNETY = {
    "regnety_002": (13, 24, 36.44, 2.49, 8),
    "regnety_004": (16, 48, 27.89, 2.09, 8),
    "regnety_006": (15, 48, 32.54, 2.32, 16),
    "regnety_008": (14, 56, 38.84, 2.4, 16),
    "regnety_016": (27, 48, 20.71, 2.65, 24),
    "regnety_032": (21, 80, 42.63, 2.66, 24),
    "regnety_040": (22, 96, 31.41, 2.24, 64),
    "regnety_064": (25, 112, 33.22, 2.27, 72),
    "regnety_080": (17, 192, 76.82, 2.19, 56),
    "regnety_120": (19, 168, 73.36, 2.37, 112),
    "regnety_160": (18, 200, 106.23, 2.48, 112),
    "regnety_320": (20, 232, 115.89, 2.53, 232),
}

REGNET_ZOO: dict[str, RegNetParams] = {
    **{name: RegNetParams(d, w0, wa, wm, g) for name, (d, w0, wa, wm, g) in _REGNETX.items()},
    **{name: RegNetParams(d, w0, wa, wm, g, se_ratio=0.25) for name, (d, w0, wa, wm, g) in _REGNETY.items()},
}
