"""Name parsing, lookup, create and the errors around them."""

import pytest

import zoo
from zoo.errors import UnknownNameError, ZooError
from zoo.protocols import DataSpec
from zoo.registry import ModelSpec, ParsedName, WeightsSpec, parse_name


@pytest.mark.parametrize(
    "name, parsed",
    [
        ("pixelrnn-diag", ParsedName("registry", arch="pixelrnn-diag")),
        ("pixelrnn-diag.binarized-mnist", ParsedName("registry", arch="pixelrnn-diag", tag="binarized-mnist")),
        ("hf-hub:org/repo", ParsedName("hub", repo_id="org/repo")),
        ("hf-hub:org/repo@v1.0", ParsedName("hub", repo_id="org/repo", revision="v1.0")),
        ("local-dir:/tmp/x", ParsedName("local", path="/tmp/x")),
    ],
)
def test_parse_name(name, parsed):
    assert parse_name(name) == parsed


@pytest.mark.parametrize(
    "bad", ["", "  ", "hf-hub:repo", "hf-hub:org/", "hf-hub:org/repo@", "local-dir:", ".tag", "arch.", 3]
)
def test_parse_name_rejects(bad):
    with pytest.raises(ValueError):
        parse_name(bad)


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean independent") as e:
        zoo.create("independant")
    assert isinstance(e.value, LookupError)
    with pytest.raises(UnknownNameError, match="unknown model 'nothing-like-it'"):
        zoo.info("nothing-like-it")


def test_list_models_patterns():
    names = zoo.list_models()
    assert names == sorted(names) and "independent" in names
    assert zoo.list_models("indep*") == ["independent"]
    assert zoo.list_models("no-such-*") == []


def test_info_and_create():
    spec = zoo.info("independent")
    assert spec.plugin == "independent" and spec.data_spec == DataSpec(1, 28, 28, 2)
    m = zoo.create("independent", height=5, width=6)
    assert m.data_spec == DataSpec(1, 5, 6, 2)
    assert m.zoo_name == "independent" and m.zoo_config["height"] == 5 and m.zoo_config["channels"] == 1


def test_create_rejects_unknown_options():
    with pytest.raises(ValueError, match="does not take option.*'depth'.*its options: channels, height, width, levels"):
        zoo.create("independent", depth=3)


def test_create_and_load_reject_other_schemes():
    with pytest.raises(ValueError, match="use zoo.load"):
        zoo.create("hf-hub:org/repo")
    with pytest.raises(ValueError, match="ARCH"):
        zoo.info("local-dir:/tmp")


def test_load_without_weights_is_a_clear_error():
    with pytest.raises(ZooError, match="'independent' has no released weights yet; .*zoo.create"):
        zoo.load("independent")


def test_modelspec_validation_and_tags():
    w = WeightsSpec(tag="mnist", hub_id="o/r", revision="abc", sha256="0" * 64)
    spec = ModelSpec("m", "f", "s", "p", "mod:Cls", {}, DataSpec(1, 2, 2, 2), {"likelihood"}, (w,))
    assert spec.default_tag == "mnist" and spec.weights_for(None) is w and spec.weights_for("mnist") is w
    with pytest.raises(UnknownNameError, match="no weights tagged 'cifar'; tags: mnist"):
        spec.weights_for("cifar")
    with pytest.raises(ValueError, match="unknown capabilities"):
        ModelSpec("m", "f", "s", "p", "mod:Cls", {}, DataSpec(1, 2, 2, 2), {"flying"})
    with pytest.raises(ValueError, match="module:callable"):
        ModelSpec("m", "f", "s", "p", "modCls", {}, DataSpec(1, 2, 2, 2))
    with pytest.raises(ValueError, match="may not contain"):
        ModelSpec("m.x", "f", "s", "p", "mod:Cls", {}, DataSpec(1, 2, 2, 2))
    assert spec.to_dict()["weights"][0]["sha256"] == "0" * 64


def test_import_time_is_light():
    import subprocess
    import sys

    code = "import sys, zoo; zoo.list_models(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", "import zoo / list_models must not import torch"


def test_the_data_spec_is_read_from_the_config():
    from zoo.protocols import DataSpec

    common = dict(name="m", family="f", summary="s", paper="p", builder="x:y")
    spec = ModelSpec(**common, config={"channels": 1, "height": 5, "width": 6, "levels": 4, "hidden": 3})
    assert spec.data_spec == DataSpec(1, 5, 6, 4)
    assert ModelSpec(**common, config={"height": 5}, data_spec=DataSpec(1, 5, 6, 4)).data_spec == DataSpec(1, 5, 6, 4)
    with pytest.raises(ValueError, match="disagrees with its config"):
        ModelSpec(**common, config={"height": 7}, data_spec=DataSpec(1, 5, 6, 4))
    with pytest.raises(ValueError, match="lacks levels"):
        ModelSpec(**common, config={"channels": 1, "height": 5, "width": 6})


def test_moved_names_warn_and_are_the_same_objects():
    """Names that moved in the layering (issue 16) keep their old import path for one release."""
    import importlib

    moved = [
        ("zoo.registry", "create", "zoo.factory"),
        ("zoo.registry", "load", "zoo.factory"),
        ("zoo.registry", "import_builder", "zoo.factory"),
        ("zoo.hub", "load_pretrained", "zoo.factory"),
        ("zoo.hub", "save_pretrained", "zoo.release"),
        ("zoo.hub", "render_release_card", "zoo.release"),
        ("zoo.hub", "publish", "zoo.release"),
        ("zoo.hub", "verify_claims", "zoo.release"),
        ("zoo.hub", "bundled_cards_dirs", "zoo.weights"),
        ("zoo.hub", "model_config", "zoo.weights"),
    ]
    for old, name, new in moved:
        with pytest.warns(DeprecationWarning, match=f"{old}.{name} moved to {new}"):
            got = getattr(importlib.import_module(old), name)
        assert got is getattr(importlib.import_module(new), name), (old, name)
    with pytest.warns(DeprecationWarning, match="zoo.cards moved to zoo.release"):
        from zoo import cards
    assert cards.render_card is importlib.import_module("zoo.release.card").render_card
