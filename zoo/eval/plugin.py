"""The built-in metrics plugin, loaded through the entry point `zoo_metrics = "zoo.eval.plugin"`.

Like any plugin module it imports neither torch nor model code.
"""

from zoo.hookspecs import hookimpl

from .metrics import BUILTIN_METRICS


@hookimpl
def zoo_register_metrics(register):
    for cls in BUILTIN_METRICS:
        register(cls())
