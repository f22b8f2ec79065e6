"""The README's set-up commands, CI and the plugin guide stay in step with the code."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def first_commands():
    block = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.strip().splitlines()]


def test_readme_opens_with_the_two_commands():
    main_job, tests = first_commands()
    assert main_job.startswith("pip install .") and "zoo eval" in main_job
    assert tests.startswith("pip install") and "pytest" in tests
    assert README.index("```bash") < 600, "the commands open the README"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert first_commands()[1] in ci.splitlines()
    assert "set -euo pipefail" in ci


def test_plugin_guide_matches_the_example():
    example = ROOT / "examples" / "zoo-independent"
    pyproject = (example / "pyproject.toml").read_text()
    hooks = (example / "zoo_independent" / "__init__.py").read_text()
    model = (example / "zoo_independent" / "model.py").read_text()
    assert 'independent = "zoo_independent"' in pyproject and 'independent = "zoo_independent"' in README
    for line in [
        'builder="zoo_independent.model:IndependentPixels"',
        'test_config={"height": 8, "width": 8}',
        "@zoo.hookimpl",
        "def zoo_register_models(register):",
    ]:
        assert line in hooks and line in README, line
    for line in [
        "class IndependentPixels(zoo.AutoregressiveModel):",
        "x = self.data_spec.validate(x)",
        "self.data_spec = zoo.DataSpec(channels, height, width, levels)",
    ]:
        assert line in model and line in README, line


LEADERBOARD = ROOT / "docs" / "leaderboard"


def _leaderboard_results():
    import json

    from zoo.eval import EvalResult

    return [EvalResult.from_dict(d) for d in json.loads((LEADERBOARD / "results.json").read_text())]


def test_readme_leaderboard_is_the_generated_one():
    """The README's table is docs/leaderboard/leaderboard.md, which is what its results.json renders to."""
    from zoo.eval.report import leaderboard_markdown

    board = (LEADERBOARD / "leaderboard.md").read_text()
    command = re.search(r"regenerate: `([^`]+)`", board).group(1)
    assert command.startswith("zoo eval --all ") and "--report docs/leaderboard" in command
    results = _leaderboard_results()
    assert board == leaderboard_markdown(results, command=command)
    block = re.search(r"<!-- leaderboard: start -->\n(.*?)<!-- leaderboard: end -->", README, re.S).group(1)
    assert block.strip() == leaderboard_markdown(results, title=None, command=command).strip()
    assert f"`{command}`" in README
    for r in results:
        assert (LEADERBOARD / f"{r.model}.png").is_file()
    assert (LEADERBOARD / "overview.png").is_file() and "docs/leaderboard/overview.png" in README


def test_leaderboard_rows_are_the_releases_and_their_pinned_numbers():
    """Every binarized-MNIST release (the board's dataset) is on the board, scored with the weights and numbers
    the registry pins; releases on other datasets are scored by tests/test_releases.py against their cards.
    A bound the board scores with fewer importance samples than the card (k=100 against the card's k=5000)
    is the looser one: at least the card's."""
    import json

    import pytest

    import zoo

    results = {r.model: r for r in _leaderboard_results()}
    on_board = [
        n
        for n in zoo.list_models(pretrained=True)
        if zoo.info(n.split(".")[0]).weights_for(n.split(".", 1)[1]).dataset == "binarized-mnist"
    ]
    assert sorted(results) == sorted(on_board)
    for name, r in results.items():
        arch, tag = name.split(".", 1)
        w = zoo.info(arch).weights_for(tag)
        assert r.provenance["weights"] == w.sha256 and r.provenance["n"] == 10000 and r.provenance["limit"] is None
        card_k = json.loads((ROOT / "cards" / name / "eval.json").read_text())["provenance"].get("iw_samples")
        for key, claimed in w.metrics.items():
            metric, _, detail = key.partition(".")
            measured = r[metric].details[detail] if detail else r[metric].value
            if metric == "nll" and r[metric].details.get("k") != card_k:
                assert r[metric].details["k"] < card_k and measured >= claimed, (name, key)
            else:
                assert measured == pytest.approx(claimed, rel=1e-4), (name, key)


def test_readme_status_table_quotes_the_cards():
    """The Status table's numbers and training runs are those of the bundled cards (pinned metrics, training.json)."""
    import json

    import zoo

    section = README.split("## Status", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    names = [re.match(r"\| `([^`]+)`", line).group(1) for line in rows]
    assert sorted(names) == sorted(zoo.list_models(pretrained=True))
    for name, line in zip(names, rows, strict=True):
        arch, tag = name.split(".", 1)
        w = zoo.info(arch).weights_for(tag)
        cells = [c.strip() for c in line.strip("|").split("|")]
        if "nll" in w.metrics:
            mark = "≤ " if "likelihood_bound" in zoo.info(arch).capabilities else ""  # an upper bound says so
            assert cells[1].startswith(f"{mark}{w.metrics['nll']:.2f} ± "), (name, cells[1])
            assert f"({mark}{w.metrics['nll.bits_per_dim']:.4f} bits/dim)" in cells[1]
        else:
            assert cells[1].startswith(f"FID {w.metrics['fid']:.1f} (floor {w.metrics['fid.floor']:.2f})"), (
                name,
                cells[1],
            )
        training = json.loads((ROOT / "cards" / name / "training.json").read_text())
        total = zoo.info(arch).recipes[training["recipe_name"]]["epochs"]
        init = (training.get("stages") or [{}])[0].get("init_from")  # a run started from earlier weights
        before = (init or {}).get("history") or {"epochs": 0, "wall_time_s": 0}  # the runs behind those weights
        epochs, minutes = before["epochs"] + training["epochs"], (before["wall_time_s"] + training["wall_time_s"]) / 60
        lead = f"{epochs} of {total} epochs" if init is None else f"{epochs} epochs"
        assert cells[3].startswith(f"{lead}, {minutes:.0f} min"), (name, cells[3])
        assert init is None or f"`{init['sha256'][:12]}`" in cells[3], (name, "name the weights it started from")
