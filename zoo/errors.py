"""The zoo's exceptions. Every one says what was expected and what came."""

from __future__ import annotations

__all__ = ["ZooError", "UnknownNameError", "PluginError", "PluginConflictError", "WeightsError"]


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
