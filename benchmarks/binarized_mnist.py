"""Binarized MNIST-10k: test NLL of PixelCNN, a flow, the DBN and an RBM (AIS), and VAE/IWAE in one
table; the RBM's pseudo-likelihood beside scikit-learn's BernoulliRBM trained on the same data;
PixelCNN completions of the bottom half of 200 test digits, judged by genzoo's domain classifier
(issue 6 asks that >= 80% be classified as the true digit).

    python benchmarks/binarized_mnist.py [--runs pixelcnn glow dbn rbm vae iwae sklearn-rbm] [--reuse]

Data: `mnist-binary`, static binarization at 0.5 of the t10k file (the offline copy): first 8,000
train, next 1,000 val, last 1,000 test. Published full-MNIST figures (60,000 training images, so
not comparable, only context): Gated PixelCNN about 81.3, DBN about 84.6, IWAE about 84.8 nats.
Every NLL is in nats per image over the 784 binary pixels; the flow's is the uniform-dequantization
bound on that discrete likelihood; the DBN's and RBM's rest on AIS estimates of log Z.
Models are sized for a 2-core CPU (minutes each, one thread), not for the best numbers.
Runs evaluated by earlier invocations stay in the JSON, so `--runs` can add one at a time.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from common import earlier_runs, half_completions, logged_train_seconds, save, train_unless_reused

from genzoo.data import load_dataset
from genzoo.evaluation import evaluate_run
from genzoo.models import get_model_class, load
from genzoo.models.dbn import BINARIZED_MNIST_AIS, RBM

PUBLISHED_FULL_MNIST = {"Gated PixelCNN": 81.3, "DBN": 84.6, "IWAE": 84.8}
# Each run is `genzoo train MODEL --data mnist-binary --preset PRESET` (`genzoo list --presets`).
RUNS = {
    "pixelcnn": ("pixelcnn", "binarized-mnist"),
    "glow": ("glow", "binarized-mnist"),
    "dbn": ("dbn", "binarized-mnist"),
    "rbm": ("dbn", "rbm"),
    "vae": ("vae", "binarized-mnist"),
    "iwae": ("iwae", "binarized-mnist"),
}
# PixelCNN completions of the bottom half of test digits: exact samples, and the most probable of 16
# (3,200 completions, a few minutes on one core now that a pixel costs one row of work).
COMPLETIONS = {"n": 200, "candidates": 16}
SKLEARN_RBM = {"n_components": 500, "learning_rate": 0.05, "batch_size": 20, "n_iter": 20}


def split_units(data, split: str) -> torch.Tensor:
    """A split's images as (N, 784) float 0/1 rows, what an RBM's visible layer sees."""
    return data.split(split).tensors[0].flatten(1).float()


def sklearn_mean_score(weight: torch.Tensor, visible_bias, hidden_bias, x: np.ndarray, seed: int) -> float:
    """scikit-learn's own pseudo-likelihood estimate (one random pixel flipped per image, times 784)
    for these weights: a reference implementation to hold genzoo's exact figure against."""
    from sklearn.neural_network import BernoulliRBM

    reference = BernoulliRBM(n_components=weight.shape[1], random_state=seed)
    reference.components_ = weight.T.double().numpy()
    reference.intercept_visible_ = visible_bias.double().numpy()
    reference.intercept_hidden_ = hidden_bias.double().numpy()
    return float(reference.score_samples(x.astype(np.float64)).mean())


def rbm_report(rbm: RBM, test: torch.Tensor, seed: int) -> dict:
    """Exact pseudo-likelihood (genzoo) and scikit-learn's estimate of it, per test image."""
    return {
        "test_pseudo_nll": round(-float(rbm.pseudo_log_likelihood(test).mean()), 2),
        "test_pseudo_nll_sklearn_estimate": round(
            -sklearn_mean_score(
                rbm.weight.detach(), rbm.visible_bias.detach(), rbm.hidden_bias.detach(), test.numpy(), seed
            ),
            2,
        ),
    }


def rbm_from_sklearn(model, train_x: torch.Tensor) -> RBM:
    """A genzoo RBM holding a fitted scikit-learn BernoulliRBM's weights, so genzoo's exact
    pseudo-likelihood and AIS score both alike; `train_x` gives the AIS base rates."""
    rbm = RBM(train_x.shape[1], model.components_.shape[0], visible="binomial", levels=2)
    with torch.no_grad():
        rbm.weight.copy_(torch.from_numpy(model.components_.T).float())
        rbm.visible_bias.copy_(torch.from_numpy(model.intercept_visible_).float())
        rbm.hidden_bias.copy_(torch.from_numpy(model.intercept_hidden_).float())
        rbm.data_mean.copy_(train_x.mean(0))  # the AIS base rates, as a genzoo RBM tracks them
        rbm.data_count.fill_(len(train_x))
    return rbm


def sklearn_rbm(data, seed: int) -> dict:
    """scikit-learn's BernoulliRBM (PCD) on the same training images; scored with genzoo's AIS and
    exact pseudo-likelihood by loading its weights into a genzoo RBM."""
    from sklearn.neural_network import BernoulliRBM

    train_x, test = split_units(data, "train"), split_units(data, "test")
    model = BernoulliRBM(**SKLEARN_RBM, random_state=seed)
    start = time.perf_counter()
    model.fit(train_x.numpy())
    seconds = round(time.perf_counter() - start, 1)
    rbm = rbm_from_sklearn(model, train_x)
    log_z = rbm.ais_log_partition(
        BINARIZED_MNIST_AIS["ais_betas"],
        BINARIZED_MNIST_AIS["ais_chains"],
        generator=torch.Generator().manual_seed(seed),
    ).log_z
    with torch.no_grad():
        nll = float((rbm.free_energy(test) + log_z).mean())
    return {
        "model": "sklearn BernoulliRBM",
        "settings": SKLEARN_RBM,
        "train_seconds": seconds,
        "nll": round(nll, 2),
        "nll_kind": "estimate",
        **rbm_report(rbm, test, seed),
    }


def genzoo_run(name: str, work: Path, reuse: bool, seed: int, data) -> dict:
    model_name, preset = RUNS[name]
    run = work / name
    train_unless_reused(model_name, "mnist-binary", run, {"seed": seed}, reuse, preset=preset)
    result = {
        "model": model_name,
        "preset": preset,
        "settings": get_model_class(model_name).preset(preset).settings,
        "train_seconds": logged_train_seconds(run),
        **evaluate_run(run, split="test", metrics=["nll"]),
    }
    if name == "rbm":
        result.update(rbm_report(load(run).rbms[0], split_units(data, "test"), seed))
    if name == "pixelcnn":
        result["completion"] = half_completions(
            run,
            data,
            COMPLETIONS["n"],
            [seed],
            COMPLETIONS["candidates"],
            "binarized_mnist_pixelcnn_completions",
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", nargs="+", default=[*RUNS, "sklearn-rbm"], choices=[*RUNS, "sklearn-rbm"])
    parser.add_argument("--work", type=Path, default=Path("runs/bench-binarized-mnist"))
    parser.add_argument("--reuse", action="store_true", help="evaluate existing runs instead of retraining")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 suits a shared 2-core CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("mnist-binary")
    results = {}
    for name in args.runs:
        if name == "sklearn-rbm":
            results[name] = sklearn_rbm(data, args.seed)
        else:
            results[name] = genzoo_run(name, args.work, args.reuse, args.seed, data)
        print(name, results[name], flush=True)
    save(
        "binarized_mnist",
        {
            "command": "genzoo train MODEL --data mnist-binary --out R --preset PRESET; "
            "genzoo evaluate R --split test --metrics nll",
            "split": "t10k file: train first 8000, val next 1000, test last 1000; binarized at 0.5",
            "published_full_mnist_nll": PUBLISHED_FULL_MNIST,
            "bits_per_pixel_factor": 1 / (784 * math.log(2)),
            "runs": {**earlier_runs("binarized_mnist"), **results},
        },
    )


if __name__ == "__main__":
    main()
