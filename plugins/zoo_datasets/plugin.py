"""Registers the built-in datasets. Imports neither numpy nor torch."""

import zoo


@zoo.hookimpl
def zoo_register_datasets(register):
    from .datasets import all_datasets

    for dataset in all_datasets():
        register(dataset)
