"""The plugin host: isolation of broken plugins, conflicts, allow and deny lists."""

import types

import pytest

import zoo
from zoo.plugins import PluginHost, ZooPluginWarning, use_plugins
from zoo.protocols import DataSpec


def _spec(name):
    return zoo.ModelSpec(
        name=name,
        family="test",
        summary="a test model",
        paper="-",
        builder="zoo_independent.model:IndependentPixels",
        config={"height": 4, "width": 4},
        data_spec=DataSpec(1, 4, 4, 2),
        capabilities={"likelihood", "sampler"},
    )


def _plugin(*names, fail=False, datasets=()):
    mod = types.ModuleType("fake_plugin")

    @zoo.hookimpl
    def zoo_register_models(register):
        for n in names:
            register(_spec(n))
        if fail:
            raise RuntimeError("boom in registration")

    @zoo.hookimpl
    def zoo_register_datasets(register):
        for d in datasets:
            register(d)

    mod.zoo_register_models = zoo_register_models
    mod.zoo_register_datasets = zoo_register_datasets
    return mod


def test_in_process_plugin_registers_and_is_listed():
    with use_plugins({"extra": _plugin("extra-model")}) as host:
        assert "extra-model" in zoo.list_models()
        assert zoo.info("extra-model").plugin == "extra"
        assert "independent" in zoo.list_models()  # entry points still load
        info = {p.name: p for p in host.plugins()}
        assert info["extra"].registered["models"] == ["extra-model"]
    assert "extra-model" not in zoo.list_models()


def test_a_plugin_that_fails_to_register_is_reported_and_skipped():
    with pytest.warns(ZooPluginWarning, match="'broken' failed to register.*boom in registration"):
        with use_plugins({"broken": _plugin("half-registered", fail=True), "good": _plugin("good-model")}) as host:
            names = zoo.list_models()
            assert "good-model" in names and "independent" in names
            assert "half-registered" not in names  # nothing of a failed plugin is kept
            status = {p.name: (p.status, p.error) for p in host.plugins()}
    assert status["broken"][0] == "failed" and "boom" in status["broken"][1]


def test_a_plugin_that_registers_the_wrong_thing_fails_alone():
    bad = _plugin(datasets=[object()])
    with pytest.warns(ZooPluginWarning, match="non-empty str `name`"):
        with use_plugins({"bad": bad}):
            assert "independent" in zoo.list_models()


def test_two_plugins_claiming_one_name_keep_the_first_and_warn_naming_both():
    with use_plugins({"first": _plugin("same"), "second": _plugin("same")}) as host:
        with pytest.warns(
            ZooPluginWarning,
            match="plugin 'second' registers model name 'same', which plugin "
            "'first' already registered.*ZOO_DISABLE_PLUGINS=second",
        ):
            assert "same" in zoo.list_models()
        assert zoo.info("same").plugin == "first"
        info = {p.name: p for p in host.plugins()}
    assert info["second"].skipped == ["model 'same' (already registered by 'first')"]
    assert info["first"].registered["models"] == ["same"] and info["second"].registered["models"] == []


def test_conflict_with_an_entry_point_plugin_keeps_the_built_in():
    with use_plugins({"zz-copycat": _plugin("independent", "copycat-own")}):
        with pytest.warns(
            ZooPluginWarning,
            match="plugin 'zz-copycat' registers model name 'independent'.*ZOO_DISABLE_PLUGINS=zz-copycat",
        ):
            names = zoo.list_models()
        assert "independent" in names and "copycat-own" in names  # the rest of the newcomer still registers
        assert zoo.info("independent").plugin == "independent"


def test_deny_and_allow_lists():
    host = PluginHost(environ={"ZOO_DISABLE_PLUGINS": "independent"})
    assert "independent" not in host.registry.models
    assert host.info["independent"].status == "disabled"
    host = PluginHost(environ={"ZOO_PLUGINS": "independent"})
    assert set(host.registry.models) == {"independent"}
    assert all(i.status == "disabled" for n, i in host.info.items() if n != "independent")


def test_broken_entry_point_is_skipped(add_entry_point):
    """An entry point whose module fails to import: a warning, the rest works."""
    add_entry_point("ghost", "zoo_no_such_module.plugin")
    with pytest.warns(ZooPluginWarning, match="'ghost' failed to import"):
        host = PluginHost()
    assert "independent" in host.registry.models
    assert host.info["ghost"].status == "failed" and "ModuleNotFoundError" in host.info["ghost"].error
    assert "Traceback" in host.info["ghost"].traceback and "zoo_no_such_module" in host.info["ghost"].traceback


def test_zoo_plugins_verbose_shows_a_failed_plugins_traceback(add_entry_point, cli_runner, fresh_plugins):
    add_entry_point("ghost", "zoo_no_such_module.plugin")
    with pytest.warns(ZooPluginWarning):
        r = cli_runner("plugins")
        assert "ModuleNotFoundError" in r.output and "(-v: traceback)" in r.output and "Traceback" not in r.output
        r = cli_runner("plugins", "-v")
        assert "| Traceback (most recent call last):" in r.output and "import_module" in r.output


def test_listing_imports_no_model_code():
    import subprocess
    import sys

    code = (
        "import sys, zoo; names = zoo.list_models(); "
        "ends = ('.model', '.pixelcnn', '.gated', '.rowlstm', '.diagonal', '.dcgan'); "
        "mods = [m for m in sys.modules if m.endswith(ends)]; "
        "print(len(names) > 0, mods, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True [] False"
