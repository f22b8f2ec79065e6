"""The shared evaluation harness: `zoo.evaluate`, `zoo eval`, and the metrics behind them.

    r = zoo.evaluate("pixelcnn", dataset="binarized-mnist", metrics=("nll", "fid"))

Importing this package does not import torch (the metrics plugin is loaded by
`zoo list`); the names below load on first use. See docs/eval.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "evaluate": "harness", "EvalContext": "harness", "NotApplicable": "harness", "list_metrics": "harness",
    "EvalResult": "result", "format_table": "result",
    "Metric": "metric", "MetricValue": "metric",
    "write_report": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zoo.eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"zoo.eval.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
