"""Design spaces as data: the TOML format, its errors, sizes, round trips and the `spaces` command."""

from math import comb

import pytest

from regnet_space.cli import main
from regnet_space.errors import UserError
from regnet_space.spaces import DesignSpace, builtin_spaces, load_space, parse_window
from regnet_space.spaces.space import parse_toml

BUILTINS = ["anynetx_a", "anynetx_b", "anynetx_c", "anynetx_d", "anynetx_e", "regnet", "regnetx", "regnetx_sota", "regnety"]

def tiny(top: str = "", depth: str = '{ dist = "uniform", lo = 1, hi = 3 }',
         width: str = '{ dist = "log_uniform", lo = 8, hi = 64, q = 8 }', stage: str = "", tail: str = "") -> str:
    """A two-stage space, with a line changed or added where a test needs it."""
    return f'{top}\nname = "tiny"\nnum_stages = 2\n[stage]\ndepth = {depth}\nwidth = {width}\n{stage}\n{tail}\n'


MINIMAL = tiny()


def test_builtin_spaces_are_listed():
    assert builtin_spaces() == BUILTINS


def test_sizes_count_distinct_parameter_settings():
    stage = 16 * 128 * 3 * 6
    assert load_space("anynetx_a").size() == stage**4  # ~1.8e18, the paper's ~10^18
    assert load_space("anynetx_b").size() == (16 * 128 * 6) ** 4 * 3
    assert load_space("anynetx_c").size() == (16 * 128) ** 4 * 3 * 6
    # Non-decreasing sequences of 4 from k values: C(k + 3, 4); each constraint shrinks the space ~4!.
    assert load_space("anynetx_d").size() == 16**4 * comb(128 + 3, 4) * 3 * 6
    assert load_space("anynetx_e").size() == comb(16 + 3, 4) * comb(128 + 3, 4) * 3 * 6
    # depth 1..40, w0 8..248 step 8, wa 8.0..255.9 step 0.1, wm 2.000..3.000 step 0.001, g in {1..32}.
    assert load_space("regnetx").size() == 40 * 31 * 2480 * 1001 * 6
    assert load_space("regnety").size() == load_space("regnetx").size()
    assert load_space("regnet").size() == 63 * 31 * 2480 * 1501 * 3 * 6


@pytest.mark.parametrize("name", BUILTINS)
def test_toml_and_dict_round_trip(name):
    space = load_space(name)
    again = parse_toml(space.to_toml(), "round trip")
    assert again == space and again.to_dict() == space.to_dict()
    assert DesignSpace.from_dict(space.to_dict()) == space


def test_narrowed_space_built_programmatically(tmp_path):
    data = load_space("anynetx_e").to_dict()
    data["name"] = "narrowed"
    data["stage"]["depth"] = {"dist": "uniform", "lo": 1, "hi": 4}
    data["stage"]["group_width"] = {"dist": "choice", "values": [8, 16]}
    narrowed = DesignSpace.from_dict(data)
    assert narrowed.size() == comb(4 + 3, 4) * comb(128 + 3, 4) * 3 * 2
    path = tmp_path / "narrowed.toml"
    path.write_text(narrowed.to_toml())
    assert load_space(str(path)) == narrowed


def test_file_name_is_the_default_name(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL.replace('name = "tiny"', ""))
    space = load_space(str(path))
    assert space.name == "mine" and space.size() == 3**2 * 8**2


def test_any_stage_and_stem_field_is_a_dimension():
    space = parse_toml(tiny(stage="""
block = { dist = "choice", values = ["res_basic", "res_bottleneck"] }
shortcut = { dist = "choice", values = ["conv", "avgpool"] }""", tail="""
[stem]
type = { dist = "choice", values = ["simple", "cifar"] }
[stages.1]
stride = 1"""), "custom")
    assert space.stage_value(0, "stride") == 1 and space.stage_value(1, "stride") == 2
    assert space.size() == 3**2 * 8**2 * 2**2 * 2**2 * 2


def test_parse_window():
    assert parse_window("360M:400M") == (360e6, 400e6)
    assert parse_window("1.5g:2G") == (1.5e9, 2e9)
    assert parse_window(":400k") == (0, 400e3)
    assert parse_window("3e8:") == (3e8, float("inf"))
    for bad, message in (("400M", "expected lo:hi"), ("4x:5M", "'4x' is not a number"),
                         ("5M:4M", r"lo 5e\+06 > hi 4e\+06")):
        with pytest.raises(UserError, match=message):
            parse_window(bad)


BAD = [
    (dict(top='colour = "red"'), "space.colour: unknown key"),
    (dict(stage="widht = 8"), "space.stage.widht: unknown key"),
    (dict(depth="1.5"), "space.stage.depth: must be int, got 1.5"),
    (dict(stage="block = 3"), "space.stage.block: must be str, got 3"),
    (dict(width='{ dist = "uniform", lo = 64, hi = 8 }'), "space.stage.width: lo 64 > hi 8"),
    (dict(width='{ dist = "choice", values = [] }'), "space.stage.width.values: a choice needs a non-empty"),
    (dict(width='{ dist = "gaussian", lo = 8, hi = 64 }'), "space.stage.width.dist: 'gaussian' is not one of"),
    (dict(width='{ dist = "uniform", lo = 8, hi = 64, step = 8 }'), "space.stage.width.step: unknown key"),
    (dict(width='{ dist = "uniform", lo = 4, hi = 64, q = 8 }'), "space.stage.width.lo: 4 is not a multiple"),
    (dict(stage='block = { dist = "uniform", lo = 1, hi = 2 }'), "space.stage.block.dist: uniform needs a numeric"),
    (dict(tail='[constraints]\nshared = ["widht"]'), "space.constraints.shared: 'widht' is not a stage field"),
    (dict(tail="[stages.3]\nstride = 1"), "space.stages.3: not a stage number 1..2"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_bad_toml_names_the_key(tmp_path, capsys, change, message):
    text = tiny(**change)
    with pytest.raises(UserError) as error:
        parse_toml(text, "space")
    assert str(error.value).startswith(message)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["sample", str(path), "-n", "1"]) == 2
    err = capsys.readouterr().err
    assert err == f"regnet-space: error: {path}{str(error.value)[len('space'):]}\n"


def test_not_toml_and_unknown_space(capsys):
    with pytest.raises(UserError, match="not valid TOML"):
        parse_toml("width = ", "space")
    assert main(["sample", "anynetx_z", "-n", "1"]) == 2
    assert "unknown design space 'anynetx_z'" in capsys.readouterr().err


def test_regnet_space_rejects_stage_fields_set_by_the_rule():
    with pytest.raises(UserError, match="space.stage.width: set by the RegNet rule"):
        parse_toml(load_space("regnetx").to_toml() + "\n[stage]\nwidth = 8\n", "space")


def test_spaces_command(capsys):
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["space", "size"]
    rows = {line.split()[0]: line for line in out[1:]}
    assert list(rows) == BUILTINS
    assert "1.8e+18" in rows["anynetx_a"] and "AnyNetX_A" in rows["anynetx_a"]


def test_power2_or_log_uniform_is_pycls_group_width_sampler():
    """pycls's power2_or_log_uniform(1, 32, 8): a power of two 1..32 (1/6 each) kept below 8, else a
    log_uniform draw on [8, 32] quantized to 8; with lo >= q it is exactly that log_uniform."""
    import numpy as np

    from regnet_space.spaces.distributions import Distribution, parse_distribution

    mixed = parse_distribution({"dist": "power2_or_log_uniform", "lo": 1, "hi": 32, "q": 8}, "g", int)
    tail = Distribution("log_uniform", 8, 32, 8)
    assert list(mixed.values) == [1, 2, 4, 8, 16, 24, 32]
    assert np.allclose(mixed.pmf(), [1 / 6] * 3 + list(0.5 * tail.pmf()))
    drawn = np.bincount(mixed.draw(np.random.default_rng(0), 120_000), minlength=7) / 120_000
    assert np.abs(drawn - mixed.pmf()).max() < 0.005
    plain = Distribution("power2_or_log_uniform", 8, 128, 8)
    assert np.allclose(plain.pmf(), Distribution("log_uniform", 8, 128, 8).pmf())
