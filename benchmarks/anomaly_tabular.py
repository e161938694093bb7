"""genzoo's table models as anomaly detectors beside PyOD's, on a table with known anomalies.

    OMP_NUM_THREADS=1 python benchmarks/anomaly_tabular.py            -> results/anomaly_tabular.json
    python benchmarks/anomaly_tabular.py --quick       (1 seed, a few steps: a ~1-2 minute smoke run)
    python benchmarks/anomaly_tabular.py --epochs 300 --only genzoo   -> ..._epochs300_genzoo.json

The data (the ODDS "wbc" construction, as PyOD's benchmark uses it): scikit-learn's
`load_breast_cancer`, all 357 benign rows and a seeded random draw of 21 of the 212 malignant ones
(`DATA_SEED`), so that the malignant rows are about 5.6% of the 378 (ODDS wbc: 378 rows, 21
outliers); 30 numeric features; label 1 = malignant, the anomaly. The set is drawn once: the
seeds below vary the split and the detectors, not which malignant rows are in it.

The protocol (PyOD's benchmark convention): for each of 5 seeds a stratified random 60/40
train/test split; every detector is fitted on the train rows without their labels (unsupervised,
and contaminated: the train rows hold their share of malignant ones) and scores the test rows,
higher = more anomalous; AUROC and AUPRC (average precision) per seed, then mean and std over seeds.

- PyOD (its defaults, `random_state` = the seed where it takes one, CPU): IForest, KNN, HBOS, LOF,
  COPOD, ECOD, OCSVM, AutoEncoder, VAE, DeepSVDD; the features standardized with a scaler fitted on
  the train rows; test rows scored with `decision_function`.
- genzoo, through its public API: the train rows (features only, no label column) are written as a
  CSV and `genzoo.train(MODEL, csv, run, settings)` trains a table model on it; the test rows, a CSV
  with the same columns, are scored by `genzoo.anomaly(run, test_csv, score=KIND)`, whose
  `frame["score"]` is per row in file order. Models and scores: tvae "reconstruction", ctgan
  "critic", tabddpm "denoising", gaussian-copula "mahalanobis" (fitted, not trained: no steps). A
  table model reads the raw features and normalizes each column itself (mode-specific or quantile
  normalization), so it is given no scaler. Note that genzoo splits a table file 80/10/10 itself
  (`split_seed`, set to the seed here): a genzoo model learns from 80% of the given train rows (val:
  10%, which `anomaly()` calibrates its flag threshold on; AUROC and AUPRC do not depend on the
  threshold). genzoo's vector models (vae, maf, ...) are not run: no registered dataset loads a
  numeric CSV as `vector` data.

genzoo's settings: the table models' defaults are sized for adult (26k train rows, batch 500-1024,
3000-6000 steps); here they see ~180 rows. Every model trains at one batch size (`BATCH`, a whole
number of CTGAN's packs of 10) for one number of epochs of genzoo's train split (`--epochs`,
default `EPOCHS`, sized to the time budget, not chosen by test scores), the same for all seeds;
network sizes and learning rates stay at genzoo's defaults, tabddpm's cosine decay is fitted to the
run's length; gaussian-copula has nothing to train and keeps its defaults. Other epoch counts are a
sensitivity check, run separately (`--epochs N --only genzoo`, saved as
anomaly_tabular_epochsN_genzoo.json), never used to choose the headline setting.

Runs and their CSVs go under runs/anomaly_tabular/ (git-ignored); one torch thread throughout.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from common import save  # noqa: E402

import genzoo  # noqa: E402

torch.set_num_threads(1)

DATA_SEED = 0  # which malignant rows join the benign ones
N_OUTLIERS = 21  # ODDS wbc: 21 of 378
SEEDS = (0, 1, 2, 3, 4)
TEST_SIZE = 0.4
BATCH = 50  # rows per step for every genzoo model (5 packs of CTGAN's 10)
EPOCHS = 100  # of genzoo's train split (80% of the train rows): 4 steps each at BATCH 50
QUICK_EPOCHS = 5
GENZOO = {
    "tvae": "reconstruction",
    "ctgan": "critic",
    "tabddpm": "denoising",
    "gaussian-copula": "mahalanobis",
}
FITTED = ("gaussian-copula",)  # fitted in one pass over the rows: no steps, no epochs
PYOD = ("IForest", "KNN", "HBOS", "LOF", "COPOD", "ECOD", "OCSVM", "AutoEncoder", "VAE", "DeepSVDD")
WORK = Path(__file__).resolve().parent.parent / "runs" / "anomaly_tabular"


# ----------------------------------------------------------------------------- the data


def wbc() -> tuple[pd.DataFrame, np.ndarray]:
    """Features (378 x 30) and labels (1 = malignant) of the ODDS-style wbc set."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    features, malignant = bunch.data, (bunch.target.to_numpy() == 0)  # sklearn: 0 = malignant
    drawn = np.random.default_rng(DATA_SEED).choice(np.flatnonzero(malignant), N_OUTLIERS, replace=False)
    rows = np.concatenate([np.flatnonzero(~malignant), np.sort(drawn)])
    return features.iloc[rows].reset_index(drop=True), malignant[rows].astype(int)


def split(x: pd.DataFrame, y: np.ndarray, seed: int):
    from sklearn.model_selection import train_test_split

    return train_test_split(x, y, test_size=TEST_SIZE, stratify=y, random_state=seed)


def measure(y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {"auroc": float(roc_auc_score(y, scores)), "auprc": float(average_precision_score(y, scores))}


# ----------------------------------------------------------------------------- the detectors


def genzoo_settings(model: str, epochs: float, train_rows: int, seed: int) -> dict[str, Any]:
    """One setting rule for every model: BATCH rows a step, `epochs` passes over genzoo's train split."""
    if model in FITTED:
        return {"seed": seed, "split_seed": seed}
    steps = max(1, round(epochs * math.ceil(train_rows / BATCH)))
    settings: dict[str, Any] = {
        "batch_size": BATCH,
        "max_steps": steps,
        "eval_every": max(1, steps // 4),
        "checkpoint_every": steps,
        "seed": seed,
        "split_seed": seed,
    }
    if model == "tabddpm":  # its cosine decay is fixed at 6000 steps unless told the run's length
        settings["lr_decay_steps"] = steps
    return settings


def genzoo_train_rows(n: int) -> int:
    """The rows of genzoo's own train split of an n-row table (genzoo.data.tabular: 80/10/10)."""
    from genzoo.data.tabular import SPLIT_FRACTIONS

    return int(round(SPLIT_FRACTIONS[0] * n))


def run_genzoo(
    model: str, train_csv: Path, test_csv: Path, run: Path, settings: dict
) -> tuple[np.ndarray, dict]:
    shutil.rmtree(run, ignore_errors=True)
    started = time.perf_counter()
    genzoo.train(model, train_csv, run, settings, quiet=True)
    trained = time.perf_counter()
    report = genzoo.anomaly(run, test_csv, score=GENZOO[model], quiet=True)
    scored = time.perf_counter()
    return report.frame["score"].to_numpy(), {
        "train_seconds": round(trained - started, 2),
        "score_seconds": round(scored - trained, 2),
        "val_rows": report.summary["reference_n"],
    }


def pyod_detector(name: str, seed: int, n_features: int):
    """A PyOD 3 detector with its defaults, seeded, quiet, on the CPU."""
    if name == "IForest":
        from pyod.models.iforest import IForest

        return IForest(random_state=seed)
    if name == "KNN":
        from pyod.models.knn import KNN

        return KNN()
    if name == "HBOS":
        from pyod.models.hbos import HBOS

        return HBOS()
    if name == "LOF":
        from pyod.models.lof import LOF

        return LOF()
    if name == "COPOD":
        from pyod.models.copod import COPOD

        return COPOD()
    if name == "ECOD":
        from pyod.models.ecod import ECOD

        return ECOD()
    if name == "OCSVM":
        from pyod.models.ocsvm import OCSVM

        return OCSVM()
    if name == "AutoEncoder":
        from pyod.models.auto_encoder import AutoEncoder

        return AutoEncoder(random_state=seed, device="cpu", verbose=0)
    if name == "VAE":
        from pyod.models.vae import VAE

        return VAE(random_state=seed, device="cpu", verbose=0)
    if name == "DeepSVDD":
        from pyod.models.deep_svdd import DeepSVDD

        return DeepSVDD(n_features=n_features, random_state=seed, verbose=0)
    raise ValueError(name)


def run_pyod(name: str, train: np.ndarray, test: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train)
    detector = pyod_detector(name, seed, train.shape[1])
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        detector.fit(scaler.transform(train))
        fitted = time.perf_counter()
        scores = detector.decision_function(scaler.transform(test))
    return np.asarray(scores, dtype=np.float64), {
        "train_seconds": round(fitted - started, 2),
        "score_seconds": round(time.perf_counter() - fitted, 2),
    }


# ----------------------------------------------------------------------------- the table


def summarize(per_seed: dict[str, dict]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric in ("auroc", "auprc"):
        values = np.array([r[metric] for r in per_seed.values()])
        out[metric] = {
            "per_seed": {s: round(float(r[metric]), 4) for s, r in per_seed.items()},
            "mean": round(float(values.mean()), 4),
            "std": round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 4),
        }
    out["train_seconds_mean"] = round(float(np.mean([r["train_seconds"] for r in per_seed.values()])), 2)
    return out


def table(detectors: dict[str, dict]) -> str:
    lines = [f"{'detector':<24} {'library':<7} {'AUROC':>15} {'AUPRC':>15} {'train s':>8}"]
    for name, d in sorted(detectors.items(), key=lambda kv: -kv[1]["auroc"]["mean"]):
        a, p = d["auroc"], d["auprc"]
        lines.append(
            f"{name:<24} {d['library']:<7} {a['mean']:.3f} ± {a['std']:.3f}   {p['mean']:.3f} ± {p['std']:.3f}"
            f" {d['train_seconds_mean']:>8.1f}"
        )
    return "\n".join(lines)


def best(detectors: dict[str, dict], library: str) -> dict | None:
    mine = {n: d for n, d in detectors.items() if d["library"] == library}
    if not mine:
        return None
    name = max(mine, key=lambda n: mine[n]["auroc"]["mean"])
    d = mine[name]
    return {"detector": name, "auroc": d["auroc"]["mean"], "auroc_std": d["auroc"]["std"],
            "auprc": d["auprc"]["mean"], "auprc_std": d["auprc"]["std"]}  # fmt: skip


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"1 seed, {QUICK_EPOCHS} epochs: a smoke run")
    parser.add_argument("--epochs", type=float, default=None, help=f"genzoo epochs (default {EPOCHS})")
    parser.add_argument("--seeds", type=int, default=None, help=f"how many of the seeds {SEEDS}")
    parser.add_argument("--only", choices=("genzoo", "pyod"), default=None, help="one library's detectors")
    parser.add_argument("--models", default=",".join(GENZOO), help="genzoo models, comma separated")
    args = parser.parse_args()
    seeds = SEEDS[: args.seeds or (1 if args.quick else len(SEEDS))]
    epochs = args.epochs if args.epochs is not None else (QUICK_EPOCHS if args.quick else EPOCHS)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in GENZOO]
    if unknown:
        sys.exit(f"--models: {', '.join(unknown)} has no anomaly score here; choose from {', '.join(GENZOO)}")
    if args.only == "pyod":
        models = []
    pyod = [] if args.only == "genzoo" else list(PYOD)
    name = "anomaly_tabular" + ("_quick" if args.quick else "")
    if args.epochs is not None and not args.quick and args.epochs != EPOCHS:
        name += f"_epochs{args.epochs:g}"
    if args.only is not None and not args.quick:
        name += f"_{args.only}"

    x, y = wbc()
    print(f"wbc: {len(x)} rows, {int(y.sum())} malignant ({y.mean():.1%}), {x.shape[1]} features")
    load_start = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    results: dict[str, dict[str, dict]] = {m: {} for m in models} | {p: {} for p in pyod}
    settings_used: dict[str, dict] = {}
    splits = {}
    for seed in seeds:
        x_train, x_test, y_train, y_test = split(x, y, seed)
        splits[str(seed)] = {"train": len(x_train), "train_outliers": int(y_train.sum()),
                             "test": len(x_test), "test_outliers": int(y_test.sum())}  # fmt: skip
        work = WORK / f"seed{seed}"
        work.mkdir(parents=True, exist_ok=True)
        train_csv, test_csv = work / "train.csv", work / "test.csv"
        x_train.to_csv(train_csv, index=False)  # features only: the labels stay here
        x_test.to_csv(test_csv, index=False)
        for model in models:
            settings = genzoo_settings(model, epochs, genzoo_train_rows(len(x_train)), seed)
            settings_used[model] = {k: v for k, v in settings.items() if k not in ("seed", "split_seed")}
            scores, info = run_genzoo(model, train_csv, test_csv, work / model, settings)
            results[model][str(seed)] = {**measure(y_test, scores), **info}
            print(f"seed {seed} {model:<12} {results[model][str(seed)]}", flush=True)
        train_np, test_np = x_train.to_numpy(np.float64), x_test.to_numpy(np.float64)
        for detector in pyod:
            scores, info = run_pyod(detector, train_np, test_np, seed)
            results[detector][str(seed)] = {**measure(y_test, scores), **info}
            print(f"seed {seed} {detector:<12} {results[detector][str(seed)]}", flush=True)
    wall = time.perf_counter() - started

    detectors = {
        **{f"genzoo-{m}": {"library": "genzoo", "score": GENZOO[m], **summarize(results[m])} for m in models},
        **{p: {"library": "pyod", **summarize(results[p])} for p in pyod},
    }
    print()
    print(table(detectors))
    best_genzoo, best_pyod = best(detectors, "genzoo"), best(detectors, "pyod")
    import pyod as pyod_package
    import sklearn

    save(
        name,
        {
            "command": "OMP_NUM_THREADS=1 python "
            + " ".join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
            "quick": args.quick,
            "data": {
                "source": "sklearn.datasets.load_breast_cancer, the ODDS 'wbc' construction",
                "rows": len(x),
                "outliers": int(y.sum()),
                "outlier_share": round(float(y.mean()), 4),
                "features": x.shape[1],
                "benign_rows": int((y == 0).sum()),
                "malignant_drawn": f"{N_OUTLIERS} of 212 malignant rows, numpy default_rng({DATA_SEED})",
                "label": "1 = malignant (the anomaly)",
            },
            "protocol": {
                "seeds": list(seeds),
                "split": f"stratified random train/test {1 - TEST_SIZE:g}/{TEST_SIZE:g} "
                "(sklearn train_test_split, random_state = seed)",
                "fit": "train rows without labels (unsupervised, contaminated)",
                "metrics": "AUROC and AUPRC (average precision) of the test rows' scores; std over seeds (ddof 1)",
                "splits": splits,
                "pyod": "defaults, random_state = seed, features standardized (StandardScaler fitted on train), "
                "decision_function on test",
                "genzoo": "genzoo.train(MODEL, train.csv, run, settings) on the raw features, then "
                "genzoo.anomaly(run, test.csv, score=KIND).frame['score']; genzoo trains on its own 80% "
                "train split of train.csv (10% val: the flag threshold's reference)",
                "genzoo_train_rows": genzoo_train_rows(splits[str(seeds[0])]["train"]),
                "vector_models": "not run: no registered genzoo dataset loads a numeric CSV as vector data",
            },
            "genzoo_settings": {
                "rule": f"one batch ({BATCH}) and one epoch count for every trained model and seed, "
                "sized to the time budget, not chosen by test scores; network sizes and learning rates "
                "at genzoo's defaults; tabddpm's lr_decay_steps = max_steps; gaussian-copula fitted "
                "with its defaults; seed and split_seed = the seed",
                "epochs": epochs,
                "models": settings_used,
            },
            "wall_seconds": round(wall, 1),
            "threads": torch.get_num_threads(),
            "load_average": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
            "detectors": detectors,
            "best": {
                "genzoo": best_genzoo,
                "pyod": best_pyod,
                "rule": "the highest mean AUROC of each library",
                "auroc_gap": round(best_genzoo["auroc"] - best_pyod["auroc"], 4)
                if best_genzoo and best_pyod
                else None,
            },
            "per_seed": results,
            "versions": {"pyod": pyod_package.__version__, "sklearn": sklearn.__version__},
        },
    )


if __name__ == "__main__":
    main()
