"""Named presets (`genzoo train --preset NAME`): the settings behind README figures, in the family."""

from __future__ import annotations

import json

import pytest

from genzoo.cli import main
from genzoo.models import get_model_class, model_names
from genzoo.models.registry import describe_presets
from genzoo.settings import route
from genzoo.train.config import TrainConfig
from genzoo.train.run import RunSpec, new_run_spec, setting_fields, train

ALL_PRESETS = [(p["model"], p["preset"]) for p in describe_presets()]


def test_the_readme_presets_are_registered():
    # The figures the defaults alone do not reproduce (README, Results); each family keeps its own.
    assert {
        ("pixelcnn", "binarized-mnist"),
        ("pixelcnn", "conditional"),
        ("glow", "binarized-mnist"),
        ("dbn", "binarized-mnist"),
        ("dbn", "rbm"),
        ("vae", "binarized-mnist"),
        ("iwae", "binarized-mnist"),
        ("dcgan", "mnist10k"),
        ("dcgan", "mnist10k-conditional"),
        ("ddpm", "mnist10k"),
        ("ctgan", "adult"),
        ("tvae", "adult"),
        ("deepar", "monthly"),
        ("deepar", "yearly"),
    } <= set(ALL_PRESETS)


@pytest.mark.parametrize(("model", "name"), ALL_PRESETS)
def test_every_preset_is_valid_settings_for_its_data(model, name):
    cls = get_model_class(model)
    preset = cls.preset(name)
    assert preset.figure and "README" in preset.figure
    routed = route(dict(preset.settings), setting_fields(model, preset.data))  # unknown keys raise
    config = {**cls.Config().to_dict(), **routed["model"]}
    cls.Config.from_dict(config)  # wrong types raise
    TrainConfig.from_dict({**cls.train_defaults, **routed["train"]})


def test_a_preset_sits_between_the_data_defaults_and_the_users_settings(tmp_path):
    run = tmp_path / "cond"
    # The preset says 1000 steps, dropout 0.2, conditional; the user shortens it and changes dropout.
    train("pixelcnn", "digits", run, {"max_steps": 2, "dropout": 0.3}, device="cpu", quiet=True,
          preset="conditional")  # fmt: skip
    spec = RunSpec.read(run)
    assert spec.preset == "conditional"
    assert spec.model_settings["conditional"] is True and spec.model_settings["dropout"] == 0.3
    # The user's length replaces the preset's, and its schedule horizon with it (as for data defaults).
    assert spec.train_settings["max_steps"] == 2 and "lr_decay_steps" not in spec.train_settings
    assert spec.train_settings["eval_every"] == 100
    assert json.loads((run / "config.json").read_text())["config"]["conditional"] is True
    card = (run / "README.md").read_text()
    assert "| model | `conditional` | `true` | `false` | preset `conditional` |" in card
    assert "| model | `dropout` | `0.3` | `0` | given |" in card
    assert "Preset `conditional`" in card and "79.5" in card
    # Resuming keeps the preset; naming another one is refused, with the run untouched.
    train("pixelcnn", "digits", run, {"max_steps": 3}, resume=True, device="cpu", quiet=True,
          preset="conditional")  # fmt: skip
    assert RunSpec.read(run).train_settings["max_steps"] == 3
    before = (run / "run.json").read_bytes()
    assert main(["train", "pixelcnn", "--data", "digits", "--out", str(run), "--resume", "--preset",
                 "binarized-mnist", "--quiet"]) == 2  # fmt: skip
    assert (run / "run.json").read_bytes() == before


def test_a_preset_length_makes_the_data_defaults_length_give_way():
    spec, _ = new_run_spec("dcgan", "digits", preset="mnist10k-conditional")
    # The preset's channels and length win over the small-image settings DCGAN picks; the rest stays.
    assert list(spec.model_settings["g_channels"]) == [16, 32] and spec.model_settings["r1_weight"] == 1.0
    assert spec.train_settings["max_steps"] == 3000 and spec.train_settings["lr_decay_steps"] == 3000
    assert (
        "max_steps" not in spec.data_defaults["train"] and spec.data_defaults["train"]["ema_decay"] == 0.999
    )
    # A time budget replaces both lengths: the plan then sets the horizon to the steps that fit.
    spec, _ = new_run_spec("dcgan", "digits", {"time_budget": 60.0}, preset="mnist10k-conditional")
    assert {"max_steps", "lr_decay_steps"}.isdisjoint(spec.train_settings)
    assert spec.train_settings["time_budget"] == 60.0 and list(spec.model_settings["g_channels"]) == [16, 32]


def test_unknown_preset_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "vae", "--data", "digits", "--out", str(out), "--preset", "binarised-mnist"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "'vae' has no preset 'binarised-mnist' (did you mean 'binarized-mnist'?)" in err[0]
    assert not out.exists()
    assert main(["train", "maf", "--data", "digits", "--out", str(out), "--preset", "x"]) == 2
    assert "(its presets: none)" in capsys.readouterr().err


def test_list_presets_prints_the_commands(capsys):
    assert main(["list", "--presets"]) == 0
    out = capsys.readouterr().out
    assert "genzoo train pixelcnn --data mnist-binary --preset binarized-mnist" in out
    assert "--set hidden=[500,1000]" in out
    assert main(["list", "--presets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["model"], r["preset"]) for r in rows} == set(ALL_PRESETS)
    assert main(["list", "--json"]) == 0
    listed = {r["name"]: r["presets"] for r in json.loads(capsys.readouterr().out)}
    assert set(listed) == set(model_names()) and "conditional" in listed["pixelcnn"]
