"""genzoo's table models beside SDV's on one split: adult (or a scikit-learn table), the same metrics.

    OMP_NUM_THREADS=1 python benchmarks/tabular_adult.py [--epochs 100]   -> results/tabular_adult.json
    python benchmarks/tabular_adult.py --data wine    (or breast_cancer)   -> results/tabular_wine.json
    python benchmarks/tabular_adult.py --quick        (2000 adult rows, 2 epochs: a ~2-minute smoke run)

Seven synthesizers, each trained on genzoo's fixed seeded train split (`load_dataset(...).frames`):
genzoo's ctgan, tvae, gaussian-copula and tabddpm, and SDV's CTGANSynthesizer, TVAESynthesizer and
GaussianCopulaSynthesizer (the `peers` extra). SDV's metadata is detected from the same train frame,
then every column's sdtype is set from genzoo's kinds, so both libraries see the same column types.

Equal budgets: each GAN/VAE pair trains the same number of epochs (`--epochs`) at batch 500 with
SDV's default network sizes, which genzoo's configs are set to explicitly (CTGAN: noise 128,
generator and critic (256, 256), pac 10, one critic step; TVAE: encoder and decoder (128, 128),
latent 128, loss factor 2). A genzoo epoch is ceil(rows / 500) steps, as SDV's TVAE loader (SDV's
CTGAN takes floor(rows / 500) full batches). tabddpm trains its default steps (its epochs are in
the JSON). Both libraries run in this process with the same torch thread count: one, since on the
2-core CPU two were slower (10 adult epochs: genzoo TVAE 42 s against 21 s, SDV CTGAN 61 s against
55 s; measured with other jobs on the machine, whose load average the JSON records). Seconds per
epoch are training seconds over epochs, each library's fixed costs (fitting its column transforms,
genzoo's validations and checkpoints) included.

Each model draws as many rows as the train split, and all seven are measured with
`genzoo.metrics.tabular.table_metrics` against the train split (quality, detection, privacy's
members) and the test split (train-on-synthetic ml_efficacy, privacy's holdout). Categories are
compared as text on both sides (genzoo decodes a category read as a number, like wine's class 0, to
the string "0"; SDV returns the number). The published SDGym anchors are saved beside the numbers
for context only: they come from other splits, epochs and metric versions.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from common import RESULTS, machine, save

import genzoo
from genzoo.data import load_dataset
from genzoo.metrics.tabular import table_metrics

BATCH = 500
METRICS = ["quality", "detection", "ml_efficacy", "privacy"]
SKLEARN_TABLES = ("breast_cancer", "wine")
QUICK_ROWS = 2000  # train rows of a --quick run on adult
QUICK_EPOCHS = 2
QUICK_TABDDPM_STEPS = 100
# SDV's defaults, which genzoo's configs are set to (they are genzoo's defaults too, said explicitly).
CTGAN_SIZES = {"embedding_dim": 128, "generator_dim": (256, 256), "discriminator_dim": (256, 256), "pac": 10}
TVAE_SIZES = {"compress_dims": (128, 128), "decompress_dims": (128, 128), "embedding_dim": 128}
# name -> (library, genzoo model or SDV synthesizer, the other library's counterpart)
MODELS: dict[str, tuple[str, str, str | None]] = {
    "gaussian-copula": ("genzoo", "gaussian-copula", "sdv-gaussian-copula"),
    "sdv-gaussian-copula": ("sdv", "GaussianCopulaSynthesizer", "gaussian-copula"),
    "tvae": ("genzoo", "tvae", "sdv-tvae"),
    "sdv-tvae": ("sdv", "TVAESynthesizer", "tvae"),
    "ctgan": ("genzoo", "ctgan", "sdv-ctgan"),
    "sdv-ctgan": ("sdv", "CTGANSynthesizer", "ctgan"),
    "tabddpm": ("genzoo", "tabddpm", None),
}
EPOCH_MODELS = ("tvae", "sdv-tvae", "ctgan", "sdv-ctgan")
# Published numbers on adult, for context (SDGym's leaderboard; TSTR F1 of the >50K class).
ANCHORS = {
    "source": "SDGym adult (sdv-dev/SDGym results; CTGAN paper protocol for the F1)",
    "quality_score": {"TVAE": 0.881, "CopulaGAN": 0.870, "GaussianCopula": 0.846, "CTGAN": 0.842},
    "train_on_synthetic_f1": {"TVAE": 0.619, "CTGAN": 0.608, "real": 0.663},
    "note": "other splits, epochs (300) and metric versions than this run: context, not a target",
}


# ----------------------------------------------------------------------------- the data


def prepare_data(name: str, quick: bool, tmp: Path) -> tuple[str, dict[str, Any], str]:
    """(what genzoo.train reads as data, its data options, the target column)."""
    if name == "adult":
        if not quick:
            return "adult", {}, "income"
        # QUICK_ROWS train rows: a seeded sample of adult's rows, re-split 80/10/10 by genzoo, with
        # adult's kinds declared so that nothing is inferred differently.
        full = load_dataset("adult")
        rows = pd.concat(list(full.frames.values()), ignore_index=True)
        rows = rows.sample(n=round(QUICK_ROWS / 0.8), random_state=0)
        path = tmp / "adult_quick.csv"
        rows.to_csv(path, index=False)
        return str(path), {"columns": full.schema.kinds(), "target": "income"}, "income"
    if name in SKLEARN_TABLES:
        from sklearn import datasets

        frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
        path = tmp / f"{name}.csv"
        frame.to_csv(path, index=False)
        return str(path), {"columns": {"target": "categorical"}, "target": "target"}, "target"
    sys.exit(f"--data: choose adult or one of {', '.join(SKLEARN_TABLES)}, got '{name}'")


def as_text_categories(frame: pd.DataFrame, kinds: dict[str, str]) -> pd.DataFrame:
    """Categorical columns as strings (missing stays missing), so 0 and "0" are one category."""
    frame = frame.copy()
    for column, kind in kinds.items():
        if kind == "categorical":
            values = frame[column].astype(object)
            frame[column] = values.where(values.isna(), values.astype(str))
    return frame


# ----------------------------------------------------------------------------- training


def run_genzoo(model: str, data: str, options: dict, work: Path, settings: dict, n: int) -> dict:
    run = work / model
    shutil.rmtree(run, ignore_errors=True)
    started = time.perf_counter()
    genzoo.train(model, data, run, {**options, **settings}, quiet=True)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    synthetic = genzoo.sample(run, n, seed=0, quiet=True)
    sample_seconds = time.perf_counter() - started
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = max((entry.get("step", 0) for entry in log), default=0)
    trainer = max((entry["time"] for entry in log if entry.get("time") is not None), default=None)
    return {
        "synthetic": synthetic,
        "train_seconds": train_seconds,
        "trainer_seconds": trainer,  # the Trainer's own clock: the steps and validations, no setup
        "sample_seconds": sample_seconds,
        "steps": steps,
        "settings": settings,
    }


def sdv_metadata(train: pd.DataFrame, kinds: dict[str, str]):
    """SDV metadata detected from `train`, then each column's sdtype set from genzoo's kind."""
    from sdv.metadata import Metadata

    metadata = Metadata.detect_from_dataframes({"table": train})
    if metadata.tables["table"].primary_key is not None:
        metadata.remove_primary_key()
    detected = metadata.to_dict()["tables"]["table"]["columns"]
    wanted = {"continuous": {"sdtype": "numerical"}, "integer": {"sdtype": "numerical", "decimal_places": 0},
              "datetime": {"sdtype": "datetime"}}  # fmt: skip
    for column, kind in kinds.items():
        sdtype = wanted.get(kind, {"sdtype": kind})  # categorical and boolean keep their names
        # A detected column of the right sdtype keeps what SDV learned of it (ranges, categories).
        if detected[column]["sdtype"] != sdtype["sdtype"]:
            metadata.update_column(column, **sdtype)
    metadata.validate()
    return metadata


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_sdv(synthesizer: str, train: pd.DataFrame, kinds: dict[str, str], settings: dict, n: int) -> dict:
    from sdv import single_table

    # SDV asks to save the metadata as JSON "for replicability"; the JSON saves the settings instead.
    warnings.filterwarnings("ignore", message=".*save_to_json.*")
    metadata = sdv_metadata(train, kinds)
    model = getattr(single_table, synthesizer)(metadata, **settings)
    seed_everything(0)
    started = time.perf_counter()
    model.fit({"table": train})  # SDV 2 takes and returns {table name: frame}, one table here
    train_seconds = time.perf_counter() - started
    seed_everything(0)
    started = time.perf_counter()
    synthetic = model.sample(num_rows=n)["table"]
    sample_seconds = time.perf_counter() - started
    shown = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
    return {
        "synthetic": synthetic,
        "train_seconds": train_seconds,
        "sample_seconds": sample_seconds,
        "settings": shown,
    }


def model_settings(name: str, epochs: int, steps_per_epoch: int, quick: bool) -> dict:
    """The settings each model trains with: equal epochs, batch and sizes across a pair.

    genzoo's models get their epochs as optimizer steps, `epochs * steps_per_epoch`: genzoo's own
    `epochs` setting counts the batches a step draws, and a CTGAN step draws two (critic and
    generator phase), so it would give CTGAN half the updates of SDV's epochs, each of which is one
    critic and one generator update per batch."""
    if name == "ctgan":
        return {"max_steps": epochs * steps_per_epoch, "batch_size": BATCH, "n_critic": 1, **CTGAN_SIZES}
    if name == "tvae":
        sizes = {k: v for k, v in TVAE_SIZES.items() if k != "embedding_dim"}
        return {"max_steps": epochs * steps_per_epoch, "batch_size": BATCH,
                "latent_dim": TVAE_SIZES["embedding_dim"], "loss_factor": 2.0, **sizes}  # fmt: skip
    if name == "sdv-ctgan":
        return {"epochs": epochs, "batch_size": BATCH, "discriminator_steps": 1, **CTGAN_SIZES}
    if name == "sdv-tvae":
        return {"epochs": epochs, "batch_size": BATCH, "loss_factor": 2, **TVAE_SIZES}
    if name == "tabddpm" and quick:
        return {"max_steps": QUICK_TABDDPM_STEPS, "lr_decay_steps": QUICK_TABDDPM_STEPS, "sample_steps": 50}
    return {}


# ----------------------------------------------------------------------------- the table


COLUMNS = [
    ("quality", lambda r: r["metrics"]["quality_score"], "{:.3f}"),
    ("detect", lambda r: r["metrics"]["detection_auc"], "{:.3f}"),
    ("tstr", lambda r: r["metrics"]["synthetic_score"], "{:.3f}"),
    ("ml_eff", lambda r: r["metrics"]["ml_efficacy"], "{:.3f}"),
    ("dcr", lambda r: r["metrics"]["dcr_share"], "{:.3f}"),
    ("copies", lambda r: r["metrics"]["exact_copy_rate"], "{:.4f}"),
    ("mia", lambda r: r["metrics"]["mia_auc"], "{:.3f}"),
    ("epochs", lambda r: r.get("epochs"), "{:g}"),
    ("train_s", lambda r: r["train_seconds"], "{:.1f}"),
    ("s/epoch", lambda r: r.get("seconds_per_epoch"), "{:.2f}"),
    ("sample_s", lambda r: r["sample_seconds"], "{:.1f}"),
]


def table(runs: dict) -> str:
    lines = [f"{'model':<22}" + "".join(f"{name:>10}" for name, _, _ in COLUMNS)]
    for model, row in runs.items():
        if "error" in row:
            lines.append(f"{model:<22}  FAILED: {row['error']}")
            continue
        cells = []
        for _, get, fmt in COLUMNS:
            value = get(row)
            cells.append(f"{'-' if value is None else fmt.format(value):>10}")
        lines.append(f"{model:<22}" + "".join(cells))
    return "\n".join(lines)


def round_floats(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: round_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [round_floats(v) for v in value]
    return value


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="adult", help=f"adult or {' or '.join(SKLEARN_TABLES)}")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of each GAN/VAE (default: per data)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, for both libraries")
    parser.add_argument("--models", default=",".join(MODELS), help="a subset of: " + ",".join(MODELS))
    parser.add_argument("--quick", action="store_true", help="a smoke run: few epochs and steps")
    parser.add_argument("--work", type=Path, default=None, help="where genzoo's runs go")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        sys.exit(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    torch.set_num_threads(args.threads)
    # On adult, one thread: the four GAN/VAE runs take ~9 s per epoch together (measured: genzoo
    # TVAE 1.3, CTGAN 2.1, SDV TVAE 2.1, CTGAN 3.6), the rest ~11 minutes (tabddpm's 6000 steps and
    # 1000-step sampling most of it), so 100 epochs take ~26 minutes, room under 40 for a busier
    # machine. The small scikit-learn tables train the papers' 300.
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else 100 if args.data == "adult" else 300)
    name = f"tabular_{args.data}" + ("_quick" if args.quick else "")
    work = args.work or Path("runs") / name.replace("_", "-")
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])

    with tempfile.TemporaryDirectory() as tmp:
        data, options, target = prepare_data(args.data, args.quick, Path(tmp))
        dataset = load_dataset(data, **options)
        train, test = dataset.frames["train"], dataset.frames["test"]
        kinds = dataset.schema.kinds()
        n = len(train)
        steps_per_epoch = math.ceil(n / BATCH)
        print(f"{args.data}: train {n} rows, test {len(test)} rows, {len(kinds)} columns; "
              f"{epochs} epochs = {epochs * steps_per_epoch} genzoo steps at batch {BATCH}; "
              f"{torch.get_num_threads()} torch threads", flush=True)  # fmt: skip
        train_text, test_text = as_text_categories(train, kinds), as_text_categories(test, kinds)
        runs: dict[str, dict] = {}
        load_start = round(os.getloadavg()[0], 2)
        started = time.perf_counter()
        for model in models:
            library, what, counterpart = MODELS[model]
            settings = model_settings(model, epochs, steps_per_epoch, args.quick)
            print(f"[{time.perf_counter() - started:7.1f}s] {model} ...", flush=True)
            try:
                if library == "genzoo":
                    result = run_genzoo(what, data, options, work, settings, n)
                else:
                    result = run_sdv(what, train, kinds, settings, n)
            except Exception as err:  # noqa: BLE001 - one model failing must not lose the others
                runs[model] = {"library": library, "error": f"{type(err).__name__}: {err}"}
                print(f"    {model} failed: {runs[model]['error']}", flush=True)
                continue
            synthetic = as_text_categories(result.pop("synthetic"), kinds)
            measured = time.perf_counter()
            metrics = table_metrics(METRICS, train_text, synthetic, test_text, kinds, target=target, seed=0)
            row = {"library": library, "model": what, "counterpart": counterpart, **result}
            if model in EPOCH_MODELS:
                row["epochs"] = epochs
                row["seconds_per_epoch"] = result["train_seconds"] / epochs
            elif "steps" in result and result["steps"]:
                row["epochs"] = round(result["steps"] / math.ceil(n / train_batch(what, settings)), 2)
            row["metric_seconds"] = time.perf_counter() - measured
            row["metrics"] = metrics
            runs[model] = round_floats(row)
            print(table({model: runs[model]}).splitlines()[1], flush=True)
            partial(name, runs)  # a long run that stops keeps what it measured
        wall = time.perf_counter() - started

    print()
    print(table(runs))
    real = next((r["metrics"]["real_score"] for r in runs.values() if "metrics" in r), None)
    metric = next((r["metrics"]["metric"] for r in runs.values() if "metrics" in r), None)
    print(f"train on real, test on real ({metric} of '{target}'): {real}")
    save(
        name,
        {
            "command": command,
            "data": args.data,
            "data_options": options if args.data != "adult" or args.quick else {},
            "split": "genzoo's seeded 80/10/10 split: trained on train, measured on train and test",
            "rows": {"train": n, "test": len(test)},
            "kinds": kinds,
            "target": target,
            "epochs": epochs,
            "batch_size": BATCH,
            "genzoo_steps_per_epoch": steps_per_epoch,
            # SDV's loops (the ctgan package): CTGAN floor(rows / batch) (at least 1), TVAE ceil(rows / batch).
            "sdv_steps_per_epoch": {"CTGAN": max(n // BATCH, 1), "TVAE": steps_per_epoch},
            "threads": torch.get_num_threads(),
            "quick": args.quick,
            "metrics": METRICS,
            "wall_seconds": round(wall, 1),
            # Other jobs on the machine slow every timing: the 1-minute load average at both ends.
            "load_average": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
            "real_score": real,
            "real_metric": metric,
            "table": {m: table_row(r) for m, r in runs.items()},
            "runs": runs,
            "anchors": ANCHORS if args.data == "adult" else None,
            "versions": versions(),
        },
    )


def train_batch(model: str, settings: dict) -> int:
    """The batch a genzoo model trained with: the benchmark's setting, else the model's default."""
    from genzoo.models import get_model_class

    return int(settings.get("batch_size") or get_model_class(model).train_defaults.get("batch_size", 64))


def table_row(row: dict) -> dict:
    if "error" in row:
        return {"error": row["error"]}
    return {name: get(row) for name, get, _ in COLUMNS}


def versions() -> dict:
    import sdv

    return {"sdv": sdv.__version__, "genzoo": genzoo.__version__, "torch": torch.__version__}


def partial(name: str, runs: dict) -> None:
    """RESULTS/name.json with the models measured so far (`finished` false), written quietly."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"finished": False, "runs": runs, "machine": machine()}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
