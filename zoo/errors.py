"""The zoo's exceptions. Every one says what was expected and what came."""

from __future__ import annotations

__all__ = [
    "ZooError",
    "UnknownNameError",
    "PluginError",
    "PluginConflictError",
    "WeightsError",
    "ArgumentError",
    "CompletionNotSupported",
]


class ZooError(Exception):
    """Base class of errors raised by the zoo."""


class UnknownNameError(ZooError, LookupError):
    """A model, tag, dataset or metric name that nothing registered."""

    def __str__(self) -> str:  # LookupError would repr() the message
        return str(self.args[0]) if self.args else ""


class PluginError(ZooError):
    """A plugin could not be loaded or registered."""


class PluginConflictError(PluginError):
    """Two plugins registered the same name."""


class WeightsError(ZooError):
    """Pretrained weights are missing, corrupt, tampered with or do not fit the model."""


class ArgumentError(ZooError, ValueError):
    """An argument the caller gave is invalid: a malformed name, an option a model does not take, a bad count.

    A `ValueError` too, so `except ValueError` keeps working; the command line shows it as one line,
    whereas a plain `ValueError` from a bug keeps its traceback."""


class CompletionNotSupported(ZooError, NotImplementedError):
    """The model samples, but cannot condition its samples on known pixels (`sample(known=..., mask=...)`):
    a GAN, or a latent variable model without p(z | the known pixels). One class for every such model, so
    that `except zoo.CompletionNotSupported` covers them all."""
