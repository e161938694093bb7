"""Loading what `GenerativeModel.save_pretrained` wrote (a model directory or a training run):
config.json names the family in the registry, model.safetensors holds the weights. Never pickle.

Apart from base.py so that the contract does not import the registry that imports it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from genzoo.errors import GenzooError, first_line
from genzoo.models.base import CONFIG_FILE, WEIGHTS_FILE, GenerativeModel, ModelConfig
from genzoo.models.registry import get_model_class


def load(directory: str | Path, *, device: str | torch.device = "cpu") -> GenerativeModel:
    """Load a model written by `save_pretrained` (or a training run directory)."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise GenzooError(
            f"'{directory}' is not a genzoo model or run: it needs {CONFIG_FILE} and {WEIGHTS_FILE} "
            "(train one with `genzoo train`)"
        )
    cls, config = _read_config(config_path)
    try:
        model = cls(config)
    except GenzooError:
        raise
    except (ValueError, TypeError, AssertionError, RuntimeError, ZeroDivisionError) as err:
        # Values of the right types that no network fits (e.g. n_embd not divisible by n_head).
        raise GenzooError(
            f"'{config_path}' is not a valid genzoo config (the model cannot be built from it: "
            f"{first_line(err)}); restore the run's original files or retrain"
        ) from err
    model.load_extra(directory)
    try:
        state = load_file(str(weights_path))
    except Exception as err:  # safetensors raises its own error types
        raise GenzooError(
            f"'{weights_path}' is not a readable safetensors file ({first_line(err)}); "
            "restore the run's original files or retrain"
        ) from err
    _check_weights(model, state, weights_path)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # what _check_weights does not foresee; torch writes a paragraph
        raise GenzooError(
            f"the weights '{weights_path}' do not match config.json ({first_line(err)}); "
            "retrain the model or restore the run's original files"
        ) from err
    return model.to(device).eval()


def _read_config(path: Path) -> tuple[type[GenerativeModel], ModelConfig]:
    """The model class and its config from config.json, or one line saying what is wrong with the file."""

    def invalid(reason: str) -> GenzooError:
        return GenzooError(
            f"'{path}' is not a valid genzoo config ({reason}); restore the run's original files or retrain"
        )

    try:
        payload = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise invalid(f"not UTF-8 text: byte {err.start}") from err
    except json.JSONDecodeError as err:
        raise invalid(f"not JSON: {first_line(err)}") from err
    except OSError as err:
        raise GenzooError(f"cannot read '{path}' ({err.strerror})") from err
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), str):
        raise invalid('it needs an object with "model" (a name) and "config" (an object)')
    if not isinstance(payload.get("config"), dict):
        raise invalid('"config" must be an object of the model\'s settings')
    try:
        cls = get_model_class(payload["model"])  # an unknown name says so, with the choices
        return cls, cls.Config.from_dict({**cls.Config.saved_before, **payload["config"]})
    except GenzooError as err:
        raise invalid(str(err)) from err
    except (TypeError, ValueError) as err:  # a config's own from_dict (e.g. VAE's old keys) met bad values
        raise invalid(first_line(err)) from err


def _check_weights(model: GenerativeModel, state: dict[str, torch.Tensor], path: Path) -> None:
    """Name the first tensor that does not fit the model config.json describes; torch's own
    error is a paragraph listing every key."""
    expected = model.state_dict()
    problem = ""
    for key, tensor in expected.items():
        if key not in state:
            problem = f"tensor '{key}' is missing"
        elif tuple(state[key].shape) != tuple(tensor.shape):
            problem = (
                f"tensor '{key}' has shape {tuple(state[key].shape)}, config.json needs {tuple(tensor.shape)}"
            )
        if problem:
            break
    else:
        unexpected = [key for key in state if key not in expected]
        if unexpected:
            problem = f"tensor '{unexpected[0]}' is not part of this model"
    if problem:
        raise GenzooError(
            f"the weights '{path}' do not match config.json ({problem}); "
            "retrain the model or restore the run's original files"
        )
