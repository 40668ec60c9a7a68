"""The 24 published RegNet models: analytic complexity integer-equal to pycls's published numbers."""

import pytest

from regnet_space import complexity
from regnet_space.models.catalog import REGNET_ZOO

# (flops, params, acts) at 224x224, 1000 classes, as pycls publishes them (dev/model_complexity.json).
PUBLISHED = {
    "regnetx_002": (199040872, 2684792, 2164056),
    "regnetx_004": (397678568, 5157512, 3143272),
    "regnetx_006": (600891112, 6196040, 3975096),
    "regnetx_008": (799700712, 7259656, 5148744),
    "regnetx_016": (1602850792, 9190136, 7933512),
    "regnetx_032": (3176622952, 15296552, 11367432),
    "regnetx_040": (3964499816, 22118248, 12201608),
    "regnetx_064": (6460292264, 26209256, 16369744),
    "regnetx_080": (7995133416, 39572648, 14059688),
    "regnetx_120": (12086679016, 46106056, 21366568),
    "regnetx_160": (15940756456, 54278536, 25515496),
    "regnetx_320": (31735930792, 107811560, 36302160),
    "regnety_002": (199519076, 3162996, 2168052),
    "regnety_004": (401849056, 4344144, 3892496),
    "regnety_006": (601227608, 6055160, 4334296),
    "regnety_008": (797183328, 6263168, 5249888),
    "regnety_016": (1612087326, 11202430, 8044814),
    "regnety_032": (3176496162, 19436338, 11263418),
    "regnety_040": (3973301344, 20646656, 12287200),
    "regnety_064": (6355221876, 30583252, 16407188),
    "regnety_080": (7963074196, 39180068, 17968916),
    "regnety_120": (12092395504, 51822544, 21384496),
    "regnety_160": (15911534044, 83590140, 23041228),
    "regnety_320": (32279583362, 145046770, 30261570),
}


def test_catalog_has_the_24_published_models():
    assert sorted(REGNET_ZOO) == sorted(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_zoo_complexity_matches_pycls(name):
    cx = complexity(REGNET_ZOO[name].to_spec())
    assert (cx.flops, cx.params, cx.acts) == PUBLISHED[name]


def test_regnetx_200mf_widths_and_depths():
    spec = REGNET_ZOO["regnetx_002"].to_spec()
    assert spec.widths == [24, 56, 152, 368]
    assert spec.depths == [1, 1, 4, 7]


def test_regnetx_400mf_half_to_even_tie():
    # The raw last width 392 with g=16 gives 392/16 = 24.5, which rounds half to even to 24 -> 384.
    spec = REGNET_ZOO["regnetx_004"].to_spec()
    assert spec.widths == [32, 64, 160, 384]
    assert spec.depths == [1, 2, 7, 12]


def test_regnety_se_width_follows_block_input_width():
    from regnet_space.models.complexity import se_width

    spec = REGNET_ZOO["regnety_002"].to_spec()
    assert se_width(32, spec.stages[0]) == 8  # first block: input is the 32-wide stem
    assert se_width(24, spec.stages[1]) == 6
