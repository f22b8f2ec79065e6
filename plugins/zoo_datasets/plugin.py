"""Registers the built-in datasets. Imports neither numpy nor torch."""

from collections.abc import Callable
from typing import Any

import zoo


@zoo.hookimpl
def zoo_register_datasets(register: Callable[[Any], None]) -> None:
    from .datasets import all_datasets

    for dataset in all_datasets():
        register(dataset)
