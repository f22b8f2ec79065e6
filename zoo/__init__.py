"""zoo: likelihood-based image generative models with pretrained weights.

    import zoo
    m = zoo.load("pixelrnn-diag")     # pretrained, eval mode, CPU float32
    m.log_prob(x)                     # exact log-likelihood, nats per image
    m.sample(16, generator=g)         # images as integer levels

Importing `zoo` does not import torch; the names below load on first use.
"""

from __future__ import annotations

from .util import lazy_getattr

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "DataSpec": "protocols",
    "Model": "protocols",
    "Sampler": "protocols",
    "Likelihood": "protocols",
    "BoundedLikelihood": "protocols",
    "Autoregressive": "protocols",
    "Trainer": "protocols",
    "ModelSpec": "registry",
    "WeightsSpec": "registry",
    "list_models": "registry",
    "info": "registry",
    "parse_name": "registry",
    "create": "factory",
    "load": "factory",
    "ZooError": "errors",
    "UnknownNameError": "errors",
    "PluginError": "errors",
    "PluginConflictError": "errors",
    "WeightsError": "errors",
    "ArgumentError": "errors",
    "CompletionNotSupported": "errors",
    "hookimpl": "hookspecs",
    "AutoregressiveModel": "autoregressive",
    "sample": "sampling",
    "check": "checks",
    "CheckReport": "checks",
    "save_pretrained": "release",
    "CardMetrics": "release",
    "evaluate": "eval",
    "EvalResult": "eval",
    "train": "training",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

# the card code moved to zoo.release; zoo/cards/ is now only the bundled release folders of a wheel
__getattr__ = lazy_getattr(__name__, _EXPORTS, moved={"cards": "zoo.release"})


def __dir__() -> list[str]:
    return __all__
