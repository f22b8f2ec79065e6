"""Bad input and faults (issue 18, part 1): every case gives a clear zoo error, never a silently wrong
answer nor a raw traceback. Training's cases (resume of a finished run, damaged checkpoints) are in
tests/test_train_resume.py, beside the other resume tests."""

from __future__ import annotations

import json
import math
import os
import sys
import types

import numpy as np
import pytest
import torch

import zoo
from zoo.errors import ArgumentError, WeightsError
from zoo.factory import create
from zoo.plugins import PluginHost, ZooPluginWarning, use_plugins
from zoo.protocols import DataSpec
from zoo.sampling import choose


def tiny(name: str):
    return create(name, **zoo.info(name).test_config)


LIKELIHOOD_MODELS = [n for n in zoo.list_models() if "likelihood" in zoo.info(n).capabilities]
SAMPLERS = [n for n in zoo.list_models() if "sampler" in zoo.info(n).capabilities]


# -- plugins ----------------------------------------------------------------------------------------------------
@pytest.fixture
def exiting_plugin(tmp_path, monkeypatch, add_entry_point):
    """An installed entry point `quitter` whose module calls sys.exit(3) at import."""
    (tmp_path / "zoo_quitter.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    add_entry_point("quitter", "zoo_quitter")
    yield
    sys.modules.pop("zoo_quitter", None)


def test_a_plugin_calling_sys_exit_at_import_is_contained(exiting_plugin, fresh_plugins):
    with pytest.warns(ZooPluginWarning, match="'quitter' failed to import.*SystemExit: 3"):
        names = zoo.list_models()
    assert "pixelcnn" in names and "independent" in names
    assert zoo.plugins.get_host().info["quitter"].status == "failed"


def test_zoo_commands_survive_a_plugin_calling_sys_exit(exiting_plugin, fresh_plugins, cli_runner):
    with pytest.warns(ZooPluginWarning):
        listed = cli_runner("list")
        shown = cli_runner("plugins")
    assert listed.exit_code == 0 and "pixelcnn" in listed.output
    assert shown.exit_code == 0 and "quitter" in shown.output and "SystemExit" in shown.output


@pytest.mark.parametrize("hook", ["models", "datasets"])
def test_a_plugin_calling_sys_exit_while_registering_is_contained(hook):
    mod = types.ModuleType("quitting_registration")

    @zoo.hookimpl
    def register(register):
        raise SystemExit(4)

    setattr(mod, f"zoo_register_{hook}", register)
    with pytest.warns(ZooPluginWarning, match="'quitter' failed to register.*SystemExit"):
        with use_plugins({"quitter": mod}):
            assert "pixelcnn" in zoo.list_models()


def test_keyboard_interrupt_in_a_plugin_is_not_swallowed():
    mod = types.ModuleType("interrupted")

    @zoo.hookimpl
    def zoo_register_models(register):
        raise KeyboardInterrupt

    mod.zoo_register_models = zoo_register_models
    with use_plugins({"interrupted": mod}):
        with pytest.raises(KeyboardInterrupt):
            zoo.list_models()


@pytest.mark.parametrize(
    "var, value, suggestion",
    [
        ("ZOO_PLUGINS", "zoo_pixelcn", "zoo_pixelcnn"),
        ("ZOO_PLUGINS", "zoo_pixelcnn,zoo_pixlrnn", "zoo_pixelrnn"),
        ("ZOO_DISABLE_PLUGINS", "zoo_gna", "zoo_gan"),
    ],
)
def test_a_plugin_list_naming_no_installed_plugin_warns(var, value, suggestion):
    with pytest.warns(
        ZooPluginWarning, match=f"{var} names .*which is no installed plugin; did you mean .*{suggestion}"
    ):
        PluginHost(environ={var: value})


def test_a_correct_plugin_list_does_not_warn(recwarn):
    PluginHost(environ={"ZOO_PLUGINS": "zoo_pixelcnn", "ZOO_DISABLE_PLUGINS": "zoo_gan"})
    assert not [w for w in recwarn if issubclass(w.category, ZooPluginWarning)]


def _registers(*names):
    mod = types.ModuleType("copycat")

    @zoo.hookimpl
    def zoo_register_models(register):
        for n in names:
            register(
                zoo.ModelSpec(
                    name=n,
                    family="test",
                    summary="an impostor",
                    paper="-",
                    builder="zoo_independent.model:IndependentPixels",
                    config={"height": 4, "width": 4},
                    data_spec=DataSpec(1, 4, 4, 2),
                )
            )

    mod.zoo_register_models = zoo_register_models
    return mod


@pytest.mark.parametrize("builtin", ["pixelcnn", "pixelrnn-diag", "dcgan"])
def test_a_plugin_reusing_a_built_in_name_is_skipped_and_named(builtin, cli_runner):
    # "aaa" sorts before every built-in plugin: the built-ins still register first and keep their names
    with use_plugins({"aaa-copycat": _registers(builtin, "copycat-own")}):
        with pytest.warns(
            ZooPluginWarning,
            match=f"plugin 'aaa-copycat' registers model name '{builtin}'.*ZOO_DISABLE_PLUGINS=aaa-copycat",
        ):
            names = zoo.list_models()
        assert builtin in names and "copycat-own" in names
        assert zoo.info(builtin).plugin.startswith("zoo_") and zoo.info(builtin).summary != "an impostor"
        shown = cli_runner("plugins")
        as_json = {p["name"]: p for p in json.loads(cli_runner("plugins", "--json").output)}
    assert shown.exit_code == 0 and f"skipped: model '{builtin}'" in shown.output
    assert as_json["aaa-copycat"]["skipped"] == [
        f"model '{builtin}' (already registered by '{zoo.info(builtin).plugin}')"
    ]


# -- sampling arguments ----------------------------------------------------------------------------------------
BAD_TEMPERATURES = [math.nan, math.inf, -math.inf, -1.0, "1", True, None]


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("temperature", BAD_TEMPERATURES, ids=repr)
def test_every_sampler_refuses_a_bad_temperature(name, temperature):
    model = tiny(name)
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        zoo.sample(model, 2, temperature=temperature)
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        model.sample(2, temperature=temperature)


def test_the_gan_checks_its_temperature_when_called_directly():
    with pytest.raises(ValueError, match="temperature"):
        tiny("dcgan").draw(2, temperature=math.nan)


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_cli_sample_refuses_a_bad_temperature(value, cli_runner, tmp_path):
    res = cli_runner(
        "sample", "independent", "--tiny", "-n", "1", "--temperature", value, "--out", str(tmp_path / "s.png")
    )
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "temperature" in res.output.lower() and not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("temperature", [1e-310, 5e-324, 1e-300])
def test_a_vanishing_temperature_picks_the_most_likely_level(temperature):
    logits = torch.tensor([[0.0, 3.0, 1.0], [400.0, -5.0, 399.0], [-1e3, -2e3, -999.0]])
    u = torch.tensor([0.0001, 0.5, 0.9999])
    assert choose(logits, u, temperature).tolist() == logits.argmax(-1).tolist()


@pytest.mark.parametrize("name", ["pixelcnn", "pixelrnn-row", "gated-pixelcnn"])  # random logits: no ties
def test_a_vanishing_temperature_samples_as_temperature_zero(name):
    model = tiny(name)
    zero = zoo.sample(model, 2, temperature=0, generator=torch.Generator().manual_seed(1))
    tiny_t = zoo.sample(model, 2, temperature=1e-310, generator=torch.Generator().manual_seed(1))
    assert torch.equal(zero, tiny_t)


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2"])
def test_sample_refuses_a_bad_count(n):
    with pytest.raises(ValueError, match="n must be a positive int"):
        zoo.sample(tiny("independent"), n)


# -- zoo check --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("trials", [0, -1, 1.5, True])
def test_check_refuses_trials_that_check_nothing(trials):
    from zoo.checks import check

    with pytest.raises(ArgumentError, match="trials must be a positive int"):
        check(tiny("independent"), trials=trials)


@pytest.mark.parametrize("trials", ["0", "-3"])
def test_cli_check_refuses_trials_that_check_nothing(trials, cli_runner):
    res = cli_runner("check", "independent", "--tiny", "--trials", trials)
    assert res.exit_code == 2 and "--trials" in res.output and "PASSED" not in res.output.upper()


# -- images to complete -----------------------------------------------------------------------------------------
def _png(path, array, mode=None):
    from PIL import Image

    Image.fromarray(array, mode=mode).save(path)
    return path


def test_a_16_bit_png_maps_its_full_range_onto_the_levels(tmp_path):
    from zoo.images import read_image

    values = np.array([[0, 16384, 32767, 65535]], dtype=np.uint16).repeat(4, 0)
    path = _png(tmp_path / "deep.png", values)
    assert read_image(path, DataSpec(1, 4, 4, 2))[0, 0].tolist() == [0, 0, 0, 1]  # 32767/65535 < 1/2
    assert read_image(path, DataSpec(1, 4, 4, 256))[0, 0].tolist() == [0, 64, 127, 255]
    assert read_image(path, DataSpec(3, 4, 4, 256)).shape == (3, 4, 4)  # greyscale fills every channel


def test_an_8_bit_png_maps_as_before(tmp_path):
    from zoo.images import read_image

    path = _png(tmp_path / "plain.png", np.array([[0, 64, 128, 255]], dtype=np.uint8).repeat(4, 0))
    assert read_image(path, DataSpec(1, 4, 4, 2))[0, 0].tolist() == [0, 0, 1, 1]
    assert read_image(path, DataSpec(1, 4, 4, 256))[0, 0].tolist() == [0, 64, 128, 255]


@pytest.mark.parametrize("case", ["float", "wrong size", "not an image", "32-bit beyond 16 bits"])
def test_images_that_do_not_fit_are_refused(case, tmp_path):
    from PIL import Image

    from zoo.images import read_image

    path = tmp_path / "bad.tiff"
    if case == "float":
        Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32), mode="F").save(path)
    elif case == "wrong size":
        path = _png(tmp_path / "big.png", np.zeros((5, 4), np.uint8))
    elif case == "not an image":
        path.write_bytes(b"hello")
    else:
        Image.fromarray(np.full((4, 4), 1 << 20, dtype=np.int32), mode="I").save(path)
    with pytest.raises(ArgumentError, match="bad|big"):
        read_image(path, DataSpec(1, 4, 4, 2))


def test_cli_complete_with_a_16_bit_png_keeps_its_dark_half(cli_runner, tmp_path):
    img = np.full((8, 8), 20000, dtype=np.uint16)  # dark grey: level 0 of 2 (clipping made it white)
    img[:, 4:] = 65535
    path = _png(tmp_path / "deep.png", img)
    out = tmp_path / "done.png"
    res = cli_runner(
        "sample",
        "independent",
        "--tiny",
        "--random-init",
        "-n",
        "1",
        "--complete",
        str(path),
        "--out",
        str(out),
        "--scale",
        "1",
    )
    assert res.exit_code == 0, res.output
    from PIL import Image

    grid = np.asarray(Image.open(out))[2:6, 2:10]  # the kept top half, inside the 2-pixel border
    assert (grid[:, :4] == 0).all() and (grid[:, 4:] == 255).all()  # not clipped to the top level


# -- integer images of any dtype ---------------------------------------------------------------------------------
INT_DTYPES = [torch.uint8, torch.int8, torch.int16, torch.int32]


@pytest.mark.parametrize("name", LIKELIHOOD_MODELS)
def test_every_integer_dtype_scores_like_int64(name):
    model = tiny(name).double()
    spec = model.data_spec
    x = torch.randint(0, min(spec.levels, 127), (2, *spec.shape), generator=torch.Generator().manual_seed(0))
    want_lp, want_logits = model.log_prob(x), model.logits(x)
    for dtype in INT_DTYPES:
        assert torch.equal(model.log_prob(x.to(dtype)), want_lp), dtype
        assert torch.equal(model.logits(x.to(dtype)), want_logits), dtype


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_known_pixels_of_any_integer_dtype(dtype):
    model = tiny("pixelcnn")
    spec = model.data_spec
    known = torch.ones(spec.shape, dtype=dtype)
    mask = torch.zeros(spec.height, spec.width, dtype=torch.bool)
    mask[0] = True
    out = zoo.sample(model, 2, known=known, mask=mask, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.long and (out[:, :, 0] == 1).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bool, torch.complex64])
def test_non_integer_images_keep_a_clear_error(dtype):
    model = tiny("pixelcnn")
    x = torch.zeros(1, *model.data_spec.shape, dtype=dtype)
    for call in (model.log_prob, model.logits):
        with pytest.raises(ArgumentError, match="expected an integer tensor"):
            call(x)


def test_a_meta_tensor_is_refused():
    model = tiny("pixelcnn")
    with pytest.raises(ArgumentError, match="meta tensor"):
        model.log_prob(torch.zeros(1, *model.data_spec.shape, dtype=torch.long, device="meta"))


# -- devices -----------------------------------------------------------------------------------------------------
BAD_DEVICES = ["bogus", "cuda:99", "meta", "", 3, ["cpu"]] + ([] if torch.cuda.is_available() else ["cuda", "cuda:0"])


@pytest.mark.parametrize("device", BAD_DEVICES, ids=repr)
def test_load_refuses_a_device_it_cannot_use(device):
    with pytest.raises(ArgumentError, match="device"):
        zoo.load("independent", device=device)


@pytest.mark.parametrize("command", ["eval", "train"])
@pytest.mark.parametrize("device", ["bogus", "cuda:99"] + ([] if torch.cuda.is_available() else ["cuda"]))
def test_cli_refuses_a_device_it_cannot_use(command, device, cli_runner, tmp_path):
    args = [command, "independent", "--device", device]
    if command == "train":
        args += ["--tiny", "--out", str(tmp_path / "run"), "--quiet"]
    res = cli_runner(*args)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert f"'{device}'" in res.output and "device" in res.output


# -- listings ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pattern", [None, 3, ["pixel*"], b"pixel*"], ids=repr)
def test_listings_refuse_a_pattern_that_is_not_a_string(pattern):
    with pytest.raises(ArgumentError, match="pattern must be"):
        zoo.list_models(pattern)
    with pytest.raises(ArgumentError, match="pattern must be"):
        zoo.data.list_datasets(pattern)


# -- config.json of a release folder -----------------------------------------------------------------------------
@pytest.fixture
def release(tmp_path):
    from zoo.release import save_pretrained

    folder = tmp_path / "release"
    save_pretrained(tiny("independent"), folder)
    return folder


def _edit(folder, change):
    cfg = json.loads((folder / "config.json").read_text())
    change(cfg)
    (folder / "config.json").write_text(json.dumps(cfg))


def _set(path, value):
    def change(cfg):
        *parents, last = path.split(".")
        target = cfg
        for p in parents:
            target = target[p]
        target[last] = value

    return change


BAD_CONFIGS = {
    "architecture an int": (_set("architecture", 3), "'architecture' must be"),
    "architecture a list": (_set("architecture", ["independent"]), "'architecture' must be"),
    "architecture empty": (_set("architecture", ""), "'architecture' must be"),
    "config a list": (_set("config", [1, 2]), "'config' must be"),
    "data_spec a string": (_set("data_spec", "abc"), "'data_spec' must be"),
    "data_spec of strings": (
        _set("data_spec", {"channels": "1", "height": 8, "width": 8, "levels": 2}),
        "'data_spec' must be",
    ),
    "data_spec of floats": (
        _set("data_spec", {"channels": 1.0, "height": 8, "width": 8, "levels": 2}),
        "'data_spec' must be",
    ),
    "data_spec with 1 level": (
        _set("data_spec", {"channels": 1, "height": 8, "width": 8, "levels": 1}),
        "levels must be",
    ),
    "weights a string": (_set("weights", "model.safetensors"), "'weights' must be"),
    "weights.file a number": (_set("weights.file", 5), "'weights.file' must be"),
    "weights.file outside the folder": (_set("weights.file", "../other/model.safetensors"), "'weights.file' must be"),
    "weights.file absolute": (_set("weights.file", "/etc/passwd"), "'weights.file' must be"),
    "weights.file with a backslash": (_set("weights.file", "..\\other\\model.safetensors"), "'weights.file' must be"),
    "sha256 an int": (_set("weights.sha256", 12345), "'weights.sha256' must be"),
    "sha256 not hex": (_set("weights.sha256", "z" * 64), "'weights.sha256' must be"),
    "sha256 too short": (_set("weights.sha256", "ab" * 8), "'weights.sha256' must be"),
    "every field missing": (lambda cfg: cfg.clear(), "lacks"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_a_malformed_config_json_is_one_weights_error(case, release):
    change, match = BAD_CONFIGS[case]
    _edit(release, change)
    with pytest.raises(WeightsError, match=match):
        zoo.load(f"local-dir:{release}")


def test_weights_outside_the_release_folder_are_never_loaded(release):
    """The file would pass its sha256 check: only its place refuses it."""
    other = release.parent / "other"
    other.mkdir()
    (other / "model.safetensors").write_bytes((release / "model.safetensors").read_bytes())
    (release / "model.safetensors").unlink()
    _edit(release, _set("weights.file", "../other/model.safetensors"))
    with pytest.raises(WeightsError, match="inside the release folder"):
        zoo.load(f"local-dir:{release}")


def test_a_deeply_nested_config_json(release):
    (release / "config.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(WeightsError, match="config.json"):
        zoo.load(f"local-dir:{release}")


def test_config_json_a_directory(release):
    (release / "config.json").unlink()
    (release / "config.json").mkdir()
    with pytest.raises(WeightsError, match="is a directory"):
        zoo.load(f"local-dir:{release}")


@pytest.mark.parametrize("text", ["", "{", "null", "[1]", '"x"', "\xff"])
def test_config_json_that_is_no_json_object(text, release):
    (release / "config.json").write_text(text, errors="surrogateescape") if text != "\xff" else (
        release / "config.json"
    ).write_bytes(b"\xff\xfe")
    with pytest.raises(WeightsError):
        zoo.load(f"local-dir:{release}")


# -- datasets ----------------------------------------------------------------------------------------------------
def test_an_unpinned_data_file_with_levels_out_of_range_is_refused(tmp_path, monkeypatch):
    from zoo.data import CachedDataset, DataError
    from zoo.data.cache import save_arrays

    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))

    class TwoLevels(CachedDataset):
        name = "two-levels"
        data_spec = DataSpec(1, 2, 2, 2)
        splits = ("train",)

    ds = TwoLevels()
    x = np.zeros((3, 1, 2, 2), dtype=np.uint8)
    x[1, 0, 1, 1] = 3  # a level a 2-level dataset cannot have
    save_arrays(ds.cache_path("train"), x, levels=256)  # intact, and no checksum pins it
    with pytest.raises(DataError, match=r"expected levels in \[0, 2\), got values in \[0, 3\].*removed"):
        ds.load("train")
    assert not ds.cache_path("train").exists()
    save_arrays(ds.cache_path("train"), np.ones((3, 1, 2, 2), np.uint8), levels=2)
    assert ds.load("train")[0].sum() == 12  # a good file still loads


# -- file modes --------------------------------------------------------------------------------------------------
@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_write_and_release_files_are_0644(umask_022, tmp_path):
    from zoo.release import save_pretrained
    from zoo.util import atomic_write

    with atomic_write(tmp_path / "a.bin") as tmp:
        tmp.write_bytes(b"x")
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644
    save_pretrained(tiny("independent"), tmp_path / "release")
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "release").iterdir() if p.is_file()}
    assert modes and set(modes.values()) == {0o644}, modes
