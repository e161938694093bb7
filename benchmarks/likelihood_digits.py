"""Exact-likelihood families on digits with their default configs: training time and test NLL for
PixelCNN, Glow, RealNVP and the DBN, and PixelCNN completions of the bottom half of test digits.

    python benchmarks/likelihood_digits.py [--models pixelcnn glow realnvp dbn] [--seed 0] [--reuse]
                                           [--n-complete 200] [--candidates 16] [--work runs/bench-likelihood-digits]

Targets (issue 6), nats per image on the digits test split: PixelCNN <= 88, RealNVP or Glow <= 115;
PixelCNN completions (top half given) classified as the true digit >= 80% of the time by genzoo's
domain classifier. References from the "Deep Generative Modeling" course code on the same split:
autoregressive about 88.7, RealNVP about 124. The flows' numbers are the uniform-dequantization
bound on the discrete likelihood (the standard reported number); PixelCNN's is exact; the DBN's is
an estimate (AIS for log Z, importance-weighted over its recognition weights). VAE and IWAE have
their own script (vae_digits.py). Runs evaluated by earlier invocations stay in the JSON.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from common import earlier_runs, logged_train_seconds, save, save_grid

from genzoo.data import load_dataset
from genzoo.evaluation import evaluate_run
from genzoo.metrics import classifier_cache_dir, domain_classifier_for
from genzoo.models import load
from genzoo.train import train

REFERENCE = {"pixelcnn": 88.7, "realnvp": 124.0, "glow": 124.0}
TARGET = {"pixelcnn": 88.0, "realnvp": 115.0, "glow": 115.0}


def completions(run: Path, n: int, seed: int, candidates: int) -> dict:
    """Give the top half of the first `n` test digits, let the PixelCNN draw the bottom half: exact
    samples of p(bottom | top), and the most probable of `candidates` draws (mode-seeking)."""
    model = load(run)
    data = load_dataset("digits")
    classifier = domain_classifier_for(data, classifier_cache_dir())
    x, y = (t[:n] for t in data.split("test").tensors)
    known = torch.zeros(8, 8, dtype=torch.bool)
    known[:4] = True
    filled = model.complete(x, known, generator=torch.Generator().manual_seed(seed))
    best = model.complete(x, known, generator=torch.Generator().manual_seed(seed), candidates=candidates)
    shown = x[:10].clone()
    shown[:, :, 4:] = 0
    save_grid(
        "likelihood_digits_pixelcnn_completions", torch.cat([x[:10], shown, filled[:10]]), 0, 16, ncol=10
    )

    def agreement(images: torch.Tensor) -> float:
        return round(float((classifier.predict(images) == y).float().mean()), 4)

    return {
        "n": n,
        "given": "top half (rows 0-3)",
        "label_agreement": agreement(filled),
        f"label_agreement_most_probable_of_{candidates}": agreement(best),
        "classifier_accuracy_on_real": agreement(x),
        "exact_sampling_ceiling": top_half_ceiling(data, x, y),
    }


def top_half_ceiling(data, x: torch.Tensor, y: torch.Tensor) -> float:
    """What a perfect model sampling p(bottom | top) would score: the mean probability of the true
    digit given only the top half, from a calibrated classifier fitted on train + val top halves."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    def top(images: torch.Tensor):
        return images[:, :, :4].flatten(1).numpy()

    fit_x, fit_y = zip(*(data.split(s).tensors for s in ("train", "val")), strict=True)
    model = CalibratedClassifierCV(SVC(C=10.0), method="isotonic", ensemble=False)
    model.fit(top(torch.cat(fit_x)), torch.cat(fit_y).numpy())
    probs = model.predict_proba(top(x))
    return round(float(probs[range(len(y)), y.numpy()].mean()), 4)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["pixelcnn", "glow", "realnvp", "dbn"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="evaluate existing runs instead of retraining")
    parser.add_argument("--n-complete", type=int, default=200, help="test digits completed by the PixelCNN")
    parser.add_argument(
        "--candidates", type=int, default=16, help="draws per digit of the mode-seeking completion"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 suits a shared 2-core CPU)")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-likelihood-digits"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runs = {}
    for name in args.models:
        run = args.work / name
        if not (args.reuse and (run / "model.safetensors").is_file()):
            shutil.rmtree(run, ignore_errors=True)
            train(name, "digits", run, {"seed": args.seed}, quiet=True)
        result = {
            "model": name,
            "seed": args.seed,
            "train_seconds": logged_train_seconds(run),
            "target_nll": TARGET.get(name),
            "reference_nll": REFERENCE.get(name),
            **evaluate_run(run, split="test", metrics=["nll"]),
        }
        if name == "pixelcnn":
            result["completion"] = completions(run, args.n_complete, args.seed, args.candidates)
        runs[name] = result
        print(result, flush=True)
    save(
        "likelihood_digits",
        {
            "command": "genzoo train MODEL --data digits --out R --seed S; genzoo evaluate R --split test --metrics nll",
            "reference": "Deep Generative Modeling course code, same split: autoregressive 88.7, RealNVP 124",
            "runs": {**earlier_runs("likelihood_digits"), **runs},
        },
    )


if __name__ == "__main__":
    main()
