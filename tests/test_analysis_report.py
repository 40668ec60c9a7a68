"""`regnet-space report`: one self-contained HTML page that headless Chromium renders (not blank)."""

import html
import re
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib.image import imread

from analysis_tables import table
from regnet_space.analysis.report import FIT_SAMPLE, with_e_fit
from regnet_space.analysis.table import block_widths, frame_block_widths
from regnet_space.cli import main
from regnet_space.errors import UserError
from regnet_space.models.spec import AnyNetSpec

CHROMIUM = shutil.which("chromium")


def test_report_is_self_contained_and_complete(tmp_path, capsys):
    results = tmp_path / "results.csv"
    table(30, seed=5).to_csv(results, index=False)
    out = tmp_path / "report.html"
    code = main(["report", str(results), "--out", str(out), "--samples", "500", "--bins", "3",
                 "--figures", str(tmp_path / "figures")])
    assert code == 0, capsys.readouterr().err
    text = out.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", text)  # nothing to fetch
    assert text.count('src="data:image/png;base64,') == 8
    assert "the most equal-width bins (at most 3)" in text and "Models left out because their flops" in text
    for heading in ("Verdict", "Error EDFs", "Good ranges (bootstrap)", "Quantized linear fit", "Best model"):
        assert f"<h2>{heading}</h2>" in text
    assert text.index("<h2>Verdict</h2>") < text.index("<h2>Error EDFs</h2>")
    assert 'alt="edf_flops"' in text and "no EDF normalised" not in text
    assert '"source": "regnet"' in html.unescape(text) and "anynetx_a" in text and "regnetx" in text
    assert not re.search(r"\d\.\d+e\+\d", text.split("<details>")[0])  # no 5.665e+06 outside the raw JSON
    figures = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert "edf.png" in figures and "edf.svg" in figures and len(figures) == 16


def test_report_help_states_the_default_fit_sample(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert f"(default: {FIT_SAMPLE}," in " ".join(capsys.readouterr().out.split())


def test_report_fits_a_stated_sample_of_each_space_and_always_the_best_models(tmp_path, capsys):
    """At scale the report fits e_fit on a seeded sample per space plus the --top best, says so, and gives the
    fitted models exactly the e_fit a full fit gives them."""
    frame = table(30, seed=5)
    full = with_e_fit(frame)
    sampled = with_e_fit(frame, per_space=4, seed=1, top=3)
    fitted = sampled[sampled["e_fit"].notna()]
    best = frame.sort_values(["error", "flops"], kind="stable").index[:3]
    assert set(best) <= set(fitted.index)
    assert (fitted.groupby("space").size() <= 4 + 3).all() and 8 <= len(fitted) <= 11
    assert np.array_equal(fitted["e_fit"].to_numpy(), full.loc[fitted.index, "e_fit"].to_numpy())
    assert sampled.attrs["known"] == len(frame)
    again = with_e_fit(frame, per_space=4, seed=1, top=3)
    assert again["e_fit"].notna().equals(sampled["e_fit"].notna())  # the same seed, the same sample
    results = tmp_path / "results.csv"
    frame.to_csv(results, index=False)
    out = tmp_path / "report.html"
    assert main(["report", str(results), "--out", str(out), "--samples", "200", "--bins", "3",
                 "--fit-sample", "4", "--top", "3"]) == 0, capsys.readouterr().err
    text = html.unescape(out.read_text())
    assert "e_fit of a random 4 models per space (seed 0) and the 3 lowest-error models" in text
    assert main(["report", str(results), "--out", str(out), "--samples", "200", "--bins", "3",
                 "--fit-sample", "0"]) == 0
    assert "e_fit of a random" not in out.read_text()
    with pytest.raises(SystemExit) as refused:
        main(["report", str(results), "--out", str(out), "--fit-sample", "-1"])
    assert refused.value.code == 2 and "-1 must be >= 0" in capsys.readouterr().err


def test_a_report_spread_over_processes_is_the_same_page():
    """With 2 processes the comparison of the spaces and the linear fits run in a worker process (the
    comparison first) while this one draws the rest: the page must be the same, byte for byte."""
    from regnet_space.analysis.linear_fit import SPREAD_FROM
    from regnet_space.analysis.report import build_report

    frame = table(SPREAD_FROM // 2 + 20, seed=3)  # enough models to be spread, and to fit in batches
    options = {"samples": 200, "fit_sample": None, "seed": 2}
    alone = build_report(frame, {"name": "t"}, processes=1, **options)
    assert build_report(frame, {"name": "t"}, processes=2, **options) == alone
    assert "is better than" in alone or "cannot be told apart" in alone


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", _results(tmp_path), "--out", str(out), "--samples", "300", "--bins", "3"]) == 0
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,1600",
         out.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.is_file(), run.stderr[-2000:]
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1200)
    not_white = np.any(pixels < 0.9, axis=-1).mean()
    assert not_white > 0.05, f"only {not_white:.1%} of the screenshot is drawn"
    assert pixels.std() > 0.1


def _results(tmp_path):
    path = tmp_path / "results.csv"
    table(20, seed=7).to_csv(path, index=False)
    return str(path)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_demo_sized_report_shows_a_verdict_and_the_normalised_edf_in_chromium(tmp_path):
    """24 models per space, as the demo: the bins are chosen so every space fills every bin (the demo's own
    study used to print 'no models with flops in bin 8/10' instead of the normalised EDF)."""
    results = tmp_path / "results.csv"
    table(24, seed=3).to_csv(results, index=False)
    out = tmp_path / "report.html"
    assert main(["report", str(results), "--out", str(out), "--samples", "300"]) == 0
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", out.as_uri()],
        capture_output=True, text=True, timeout=120).stdout
    verdict = re.search(r'<div class="verdict[^"]*" id="verdict">(.*?)</div>', dom, re.S)
    assert verdict, dom[:2000]
    words = html.unescape(re.sub(r"<[^>]+>", " ", verdict.group(1)))
    assert re.search(r"(regnetx|anynetx_a) (is better than|and) ", words)
    assert re.search(r"CI -?\d+\.\d to -?\d+\.\d", words) and "Holm-adjusted p = " in words and "Power for effects stated in advance" in words
    normalised = re.search(r'<div id="normalised-edf">\s*<img alt="edf_flops" src="data:image/png;base64,', dom)
    assert normalised and "no EDF normalised" not in dom


def test_block_widths_read_from_specs_equal_the_specs_own_and_bad_specs_still_fail():
    frame = table(40)
    frame.loc[3, "spec"] = None  # no spec: the d1..d4/w1..w4 or RegNet columns
    expected = [AnyNetSpec.from_json(s).block_widths() if isinstance(s, str) else block_widths(frame.iloc[3])
                for s in frame["spec"]]
    assert frame_block_widths(frame) == expected and expected[3] is not None
    with pytest.raises(UserError, match="stages"):
        block_widths({"spec": '{"stages": [{"depth": 2, "width": -8}]}'})
