"""The built-in metrics plugin, loaded through the entry point `zoo_metrics = "zoo.eval.plugin"`.

Like any plugin module it imports neither torch nor model code.
"""

from collections.abc import Callable
from typing import Any

from zoo.hookspecs import hookimpl

from .metrics import BUILTIN_METRICS


@hookimpl
def zoo_register_metrics(register: Callable[[Any], None]) -> None:
    for cls in BUILTIN_METRICS:
        register(cls())
