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
    for line in ['builder="zoo_independent.model:IndependentPixels"', 'test_config={"height": 8, "width": 8}',
                 "@zoo.hookimpl", "def zoo_register_models(register):"]:
        assert line in hooks and line in README, line
    for line in ["class IndependentPixels(zoo.AutoregressiveModel):", "x = self.data_spec.validate(x)",
                 "self.data_spec = zoo.DataSpec(channels, height, width, levels)"]:
        assert line in model and line in README, line
