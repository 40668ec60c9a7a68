"""Issue 24, items 14 and 15: the report's equal-flops comparison and the demo's edf_flops.png choose their bins
by one rule (analysis/bins.py), so the page and the figure beside it agree; the demo's hints name the spec the
README names."""

from __future__ import annotations

import re

from analysis_tables import table
from regnet_space import demo
from regnet_space.analysis.report import build_report
from regnet_space.cli import main


def test_report_and_demo_edf_figure_use_the_same_bins(tmp_path, capsys, monkeypatch):
    frame = table(40)
    csv = tmp_path / "r.csv"
    frame.to_csv(csv, index=False)
    calls = []
    monkeypatch.setattr(demo, "cli", lambda argv: calls.append(argv) or 0)
    monkeypatch.setattr(demo, "OUT", tmp_path / "demo")
    demo.main()
    capsys.readouterr()
    figure = next(argv for argv in calls if argv[0] == "edf" and "--normalize" in argv)
    assert "--bins" not in figure, figure  # the demo leaves the bins to the rule
    edf_argv = [str(csv)] + figure[figure.index("--normalize"):figure.index("--plot")]
    assert main(["edf", *edf_argv]) == 0
    shown = re.search(r"normalised by flops: (\d+) bins", capsys.readouterr().out)
    page = build_report(frame, {"name": "r"}, samples=20)
    assert shown and f"{shown.group(1)} bins of flops" in page, (shown, re.findall(r"\d+ bins of flops", page))


def test_demo_hint_names_the_readme_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert demo.shown_spec() == demo.SPEC
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "quickstart.toml").write_text("")
    assert str(demo.shown_spec()) == "experiments/quickstart.toml"
