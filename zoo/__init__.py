"""zoo: likelihood-based image generative models with pretrained weights.

    import zoo
    m = zoo.load("pixelrnn-diag")     # pretrained, eval mode, CPU float32
    m.log_prob(x)                     # exact log-likelihood, nats per image
    m.sample(16, generator=g)         # images as integer levels

Importing `zoo` does not import torch; the names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "DataSpec": "protocols", "Model": "protocols", "Sampler": "protocols",
    "Likelihood": "protocols", "Autoregressive": "protocols", "Trainer": "protocols",
    "ModelSpec": "registry", "WeightsSpec": "registry", "list_models": "registry",
    "info": "registry", "create": "registry", "load": "registry", "parse_name": "registry",
    "ZooError": "errors", "UnknownNameError": "errors", "PluginError": "errors",
    "PluginConflictError": "errors", "WeightsError": "errors",
    "hookimpl": "hookspecs",
    "AutoregressiveModel": "autoregressive",
    "sample": "sampling",
    "check": "checks", "CheckReport": "checks",
    "save_pretrained": "hub",
    "evaluate": "eval", "EvalResult": "eval",
    "train": "training",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"zoo.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
