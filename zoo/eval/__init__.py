"""The shared evaluation harness: `zoo.evaluate`, `zoo eval`, and the metrics behind them.

    r = zoo.evaluate("pixelcnn", dataset="binarized-mnist", metrics=("nll", "fid"))

Importing this package does not import torch (the metrics plugin is loaded by
`zoo list`); the names below load on first use. See docs/eval.md.
"""

from __future__ import annotations

from ..util import lazy_getattr

_EXPORTS = {
    "evaluate": "harness",
    "EvalContext": "harness",
    "NotApplicable": "harness",
    "list_metrics": "harness",
    "EvalResult": "result",
    "format_table": "result",
    "Metric": "metric",
    "MetricValue": "metric",
    "write_report": "report",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return __all__
