"""An example zoo plugin: one learned categorical distribution per sub-pixel.

The plugin module only describes the model; `zoo list` reads the spec without
importing `model.py` (or torch).
"""

import zoo


@zoo.hookimpl
def zoo_register_models(register):
    register(
        zoo.ModelSpec(
            name="independent",
            family="baseline",
            summary="Independent pixels: one learned categorical per sub-pixel",
            paper="The baseline every autoregressive image model must beat",
            builder="zoo_independent.model:IndependentPixels",
            config={"channels": 1, "height": 28, "width": 28, "levels": 2},
            data_spec=zoo.DataSpec(channels=1, height=28, width=28, levels=2),
            capabilities={"likelihood", "sampler", "fast_sampler"},
            test_config={"height": 8, "width": 8},
        )
    )
