"""Out-of-distribution detection with likelihoods: the failure, shown and fixed.

A likelihood model of MNIST can give images that look nothing like MNIST a *higher* likelihood
than MNIST itself (Nalisnick et al. 2019, "Do deep generative models know what they don't
know?"): simple images (constant, smooth, mostly dark) are cheap to code for any model, whatever
it was trained on. This script trains a PixelCNN and a flow on MNIST-10k, scores the MNIST test
split (in-distribution, label 0) against several out-of-distribution sets (label 1), and reports
the AUROC of the raw NLL (an AUROC below 0.5 is the failure: the OOD set looks *more* normal
than MNIST) and of the corrections in `genzoo.apps.anomaly`:

- `complexity` (Serra et al. 2020): NLL in bits minus the bits of a lossless PNG of the image;
- `typicality` (Nalisnick et al. 2019b, per example): |NLL - mean NLL of the run's val split|;
- `likelihood-ratio` (Ren et al. 2019): NLL minus that of a background model, a twin: the same
  model trained on the same data with a share of the pixels replaced by noise;
- `likelihood-ratio-general`: the same ratio against a general-domain background (Schirrmeister et
  al. 2020 use one trained on Tiny Images): the same model trained for `GENERAL_STEPS` on the MNIST
  training images plus 10,000 crops of the two photos scikit-learn bundles (china.jpg, flower.jpg,
  in no OOD set), 20% mutated (`--mutation`; without the noise its predictions are overconfident
  off its data);
- `likelihood-ratio-mixture`: the ratio against a twin and the general background at once, their
  equal mixture (`genzoo anomaly RUN --background A --background B`): each explains away what it
  models best.

The twin's share of noise is a hyperparameter, and Ren et al. choose it on a validation OOD set: here
twins are trained at 5%, 10% and 20% (`--twin-mutations`) and, per ratio, the one with the best
worst-picture AUROC on `validation_ood` is reported: crops of ten other pictures scikit-image
bundles (Hubble deep field, horse silhouette, Shepp-Logan phantom, checkerboard, logo, retina,
microaneurysms, immunohistochemistry, colour wheel, cat; none in a reported set or the general
background) against the MNIST val split. Every twin's minimum AUROC on the reported sets is saved
too (`min_auroc_every_twin_mutation`), to show what the choice gained or cost.

    python benchmarks/ood_likelihood.py [--models pixelcnn glow] [--steps N] [--mutation 0.2]
                                        [--twin-mutations 0.05 0.1 0.2]
                                        [--reuse] [--work runs/bench-ood-likelihood] [--quick]

Each model is trained five times (the model, its three twins and the general background) from its
defaults with a fixed step budget (`STEPS`, `GENERAL_STEPS`; a PixelCNN's 1500 steps take 40 minutes
on one core, Glow's 300 ten); `--reuse` scores runs already trained in `--work`. Runs evaluated by earlier invocations stay in the JSON, so the models can be
run as separate processes. `--quick` is a smoke test (a few steps, a few images per set) that
writes `ood_likelihood_quick.json` instead. Results: benchmarks/results/ood_likelihood.json (per
model: AUROC per set and score, mean bits/dim per set under the model, the background and PNG,
training steps and seconds, settings) and ood_likelihood_sets.png (ten MNIST test images, then ten
of each set, a row each, in the order below).

The data. In-distribution: the MNIST-10k test split (1000 images; the model is trained on the
8000-image train split, the typicality centre comes from the 1000-image val split). The OOD sets,
all built offline and deterministically (seeded) in `ood_sets`, 28x28 grey, integers 0..255:

- `constant`: one random level per image (the classic case where the raw likelihood fails; for a
  model of MNIST, whose background is black, mainly the dark levels);
- `dark`: one level 0..15 per image, all pixels equal: the near-black constants that a model of
  MNIST's black background finds cheaper than digits (the failure itself, shown on its own);
- `noise`: i.i.d. uniform pixels (the easy case: every score should get it);
- `inverted`: 255 - the MNIST test images (same strokes, white background: a strong test of
  whether a score reacts to the statistics of the background, which dominate the likelihood);
- `skimage`: random square crops (side 28 px up to half the image) of scikit-image's bundled
  grey and greyed natural photos and scans (camera, astronaut, coins, moon, text, page, clock,
  grass, gravel, brick, cell, chelsea, coffee, rocket), resized to 28x28 by area averaging: natural
  images, from smooth patches to textures, a stand-in for the CIFAR/SVHN sets of the papers;
- `digits`: scikit-learn's 8x8 handwritten digits (levels 0..16 scaled to 0..255) upscaled to
  28x28 bilinearly: the same concept (digits) with other statistics (blurry, filling the frame),
  the near-OOD case, akin to the papers' MNIST vs. Fashion/KMNIST;
- `faces`: the 200 25x25 LFW faces scikit-image bundles, resized to 28x28 bilinearly: another
  natural-image category, smooth grey faces.

Whether the raw NLL fails depends on the set and on the model: `share_more_likely_than_median_mnist`
says, per set, how many of its images the model finds more likely than the median MNIST test image.
Ren et al.'s ratio fails with the PixelCNN on every OOD set whose pixels are predictable from their
neighbours (constants, photos, upscaled digits, faces): its background, trained to expect a noise
pixel anywhere, learned that a pixel says little about the next, so on any smooth image it pays more
than the model trained on clean digits, whose local smoothness carries over. Measured after 150 and
1500 steps: below 0.5 on those sets both times. A general
background, which has seen smooth natural images, is cheaper than the model there, as the ratio needs.

PixelCNN at 28x28 samples pixel by pixel (784 full passes), so the 64-sample preview every run
writes at the end would take longer than training on one core; this script skips the preview.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import earlier_runs, logged_train_seconds, save, save_grid, train_unless_reused

from genzoo.apps.anomaly import Scorer, complexity_bits, mixture_nll
from genzoo.data import load_dataset
from genzoo.metrics.anomaly import detection_metrics
from genzoo.models import load

NAME = "ood_likelihood"
MODELS = ("pixelcnn", "glow", "realnvp")
# Step budgets: about 1.7 s a PixelCNN step, 2 s a Glow step and 2.6 s a RealNVP step (batch 64,
# 28x28) on one core with other jobs running. The PixelCNN trains for 40 minutes: at 150 steps its
# NLL was 1.26 bits per dimension on MNIST test, at 1500 1.15.
STEPS = {"pixelcnn": 1500, "glow": 300, "realnvp": 100}
QUICK_STEPS = 3
QUICK_N = 48  # images per set in --quick
SCORES = (
    "nll", "complexity", "typicality", "likelihood-ratio", "likelihood-ratio-general", "likelihood-ratio-mixture",
)  # fmt: skip
# Where each likelihood ratio's background NLL is reported, in bits per dimension per set.
BACKGROUND_BPD = {
    "likelihood-ratio": "background_bpd",
    "likelihood-ratio-general": "general_background_bpd",
    "likelihood-ratio-mixture": "mixture_background_bpd",
}
# The general background (`general_images`): crops of scikit-learn's two photos beside the MNIST
# training images, trained for GENERAL_STEPS (it learns low-level image statistics, fast).
GENERAL_CROPS = 10_000
GENERAL_STEPS = {"pixelcnn": 600, "glow": 300, "realnvp": 100}
# Scoring batch: on one CPU core a 28x28 PixelCNN scores 32 images at a time twice as fast per image
# as 256 (the Scorer's default), its 256-level logits no longer thrashing the cache.
SCORE_BATCH = 32
SKIMAGE_IMAGES = (
    "camera", "astronaut", "coins", "moon", "text", "page", "clock",
    "grass", "gravel", "brick", "cell", "chelsea", "coffee", "rocket",
)  # fmt: skip
# The twin's mutation rate is chosen per ratio on a validation OOD set, as Ren et al. choose theirs:
# crops of scikit-image's other bundled pictures (none in SKIMAGE_IMAGES or the general background),
# VALIDATION_CROPS each, against the MNIST val split; the rate with the highest worst-picture AUROC.
TWIN_MUTATIONS = (0.05, 0.1, 0.2)
VALIDATION_IMAGES = (
    "hubble_deep_field", "horse", "shepp_logan_phantom", "checkerboard", "logo",
    "retina", "microaneurysms", "immunohistochemistry", "colorwheel", "cat",
)  # fmt: skip
VALIDATION_CROPS = 50
SETS = {
    "constant": "one uniformly drawn level 0..255 per image, all pixels equal",
    "dark": "one uniformly drawn level 0..15 per image, all pixels equal",
    "noise": "i.i.d. uniform pixels 0..255",
    "inverted": "255 - the MNIST test images",
    "skimage": "random square crops (side 28 px to half the image) of scikit-image's sample photos "
    f"({', '.join(SKIMAGE_IMAGES)}; colour ones greyed), area-resized to 28x28",
    "digits": "scikit-learn's 8x8 digits, 0..16 scaled to 0..255, bilinearly upscaled to 28x28",
    "faces": "scikit-image's 200 LFW faces (25x25), bilinearly resized to 28x28",
}
SIZES = {
    "constant": 300,
    "dark": 300,
    "noise": 1000,
    "inverted": 1000,
    "skimage": 1000,
    "digits": 1000,
    "faces": 200,
}


# ---- the out-of-distribution sets ------------------------------------------------------------
def _resize(images: np.ndarray, mode: str) -> torch.Tensor:
    """(N, H, W) values in 0..255 -> (N, 1, 28, 28) integers 0..255 as float."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32)).unsqueeze(1)
    if mode == "bilinear":
        x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    else:
        x = F.interpolate(x, size=(28, 28), mode=mode)
    return x.round().clamp(0, 255)


def _crops(photos: list[np.ndarray], n: int, rng: np.random.Generator) -> torch.Tensor:
    """`n` random square crops (side 28 px up to half the photo) of grey photos, area-resized to 28x28."""
    crops = []
    for _ in range(n):
        image = photos[rng.integers(len(photos))]
        h, w = image.shape
        side = int(rng.integers(28, min(h, w) // 2 + 1))
        top, left = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
        crops.append(_resize(image[None, top : top + side, left : left + side], "area"))
    return torch.cat(crops)


def _skimage_pictures(names: tuple[str, ...]) -> list[np.ndarray]:
    """scikit-image's bundled pictures, grey, values 0..255 (colour greyed, binary as 0/255)."""
    import skimage.data
    from skimage.color import rgb2gray

    pictures = []
    for name in names:
        image = getattr(skimage.data, name)()
        if image.ndim == 3:
            image = rgb2gray(image[..., :3]) * 255.0
        elif image.dtype != np.uint8:  # a binary mask or a float picture in 0..1
            image = image.astype(np.float32) * 255.0
        pictures.append(np.asarray(image, dtype=np.float32))
    return pictures


def _skimage_crops(n: int, rng: np.random.Generator) -> torch.Tensor:
    return _crops(_skimage_pictures(SKIMAGE_IMAGES), n, rng)


def validation_ood(seed: int = 0) -> dict[str, torch.Tensor]:
    """The OOD set the twin's mutation rate is chosen on: VALIDATION_CROPS crops of each of
    VALIDATION_IMAGES, by picture (the choice maximises the worst picture's AUROC)."""
    pictures = _skimage_pictures(VALIDATION_IMAGES)
    return {
        name: _crops([picture], VALIDATION_CROPS, np.random.default_rng([seed, 8, i]))
        for i, (name, picture) in enumerate(zip(VALIDATION_IMAGES, pictures, strict=True))
    }


def ood_sets(mnist_test: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Each set (N, 1, 28, 28), integer levels 0..255 as float32, the same for a given seed."""
    rng = lambda k: np.random.default_rng([seed, k])  # noqa: E731  one stream per set
    sets = {}
    levels = rng(0).integers(0, 256, SIZES["constant"]).astype(np.float32)
    sets["constant"] = torch.as_tensor(levels).view(-1, 1, 1, 1).expand(-1, 1, 28, 28).clone()
    dark = rng(6).integers(0, 16, SIZES["dark"]).astype(np.float32)
    sets["dark"] = torch.as_tensor(dark).view(-1, 1, 1, 1).expand(-1, 1, 28, 28).clone()
    sets["noise"] = torch.as_tensor(rng(1).integers(0, 256, (SIZES["noise"], 1, 28, 28)).astype(np.float32))
    sets["inverted"] = 255.0 - mnist_test[: SIZES["inverted"]]
    sets["skimage"] = _skimage_crops(SIZES["skimage"], rng(3))
    from sklearn.datasets import load_digits

    digits = load_digits().images  # (1797, 8, 8), 0..16
    pick = rng(4).choice(len(digits), SIZES["digits"], replace=False)
    sets["digits"] = _resize(digits[pick] * 255.0 / 16.0, "bilinear")
    import skimage.data

    sets["faces"] = _resize(skimage.data.lfw_subset()[: SIZES["faces"]] * 255.0, "bilinear")
    for name, x in sets.items():
        assert x.shape[1:] == (1, 28, 28) and x.min() >= 0 and x.max() <= 255, name
        assert torch.equal(x, x.round()), name
    return sets


# ---- training --------------------------------------------------------------------------------
def settings_for(steps: int, seed: int) -> dict:
    # One validation at the end (keep_best then keeps the last weights): a short run does not overfit.
    # No samples.png: a 28x28 PixelCNN draws its preview in 784 passes, longer than its training here.
    return {
        "max_steps": steps,
        "lr_decay_steps": steps,
        "eval_every": steps,
        "seed": seed,
        "preview_samples": 0,
    }


def general_images(folder: Path, mnist_train: torch.Tensor, seed: int) -> Path:
    """The general background's training images as a PNG folder: the in-distribution training
    images and `GENERAL_CROPS` crops of scikit-learn's two bundled photos (china.jpg, flower.jpg,
    greyed), none of them in any OOD set. Written once; the same images for a given seed."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    if (folder / "done").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    grey = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)  # scikit-image's rgb2gray weights
    photos = [np.asarray(image, dtype=np.float32) @ grey for image in load_sample_images().images]
    crops = _crops(photos, GENERAL_CROPS, np.random.default_rng([seed, 7]))
    for name, images in (("mnist", mnist_train), ("photo", crops)):
        for i, image in enumerate(images.to(torch.uint8).numpy()):
            Image.fromarray(image[0], mode="L").save(folder / f"{name}-{i:05d}.png")
    (folder / "done").write_text("")
    return folder


def general_settings(steps: int, seed: int, mutation: float) -> dict:
    settings = settings_for(steps, seed)
    # An image folder has a `seed` of its own (its split): the training seed is named in full.
    settings["train.seed"] = settings.pop("seed")
    return {**settings, "data.size": 28, "data.mutation": mutation}


# ---- scoring ---------------------------------------------------------------------------------
Candidates = dict[tuple[str, float | None], list]  # (ratio score, twin's mutation) -> backgrounds


def ratio_candidates(twins: dict[float, object], general) -> Candidates:
    """Every likelihood ratio on offer: against each twin, the general background, and each twin's
    equal mixture with the general background (`genzoo anomaly RUN --background A --background B`)."""
    candidates: Candidates = {("likelihood-ratio-general", None): [general]}
    for rate, twin in twins.items():
        candidates[("likelihood-ratio", rate)] = [twin]
        candidates[("likelihood-ratio-mixture", rate)] = [twin, general]
    return candidates


def all_scores(model, candidates: Candidates, x: torch.Tensor) -> dict:
    """The model's NLLs of `x` and each candidate ratio's (ratio, background NLL), one pass per model
    (a background in several ratios is scored once); the formulas are `Scorer`'s, which
    `check_against_scorer` confirms."""
    nll_of = {}
    for scored in [model, *(bg for group in candidates.values() for bg in group)]:
        if id(scored) not in nll_of:
            nll_of[id(scored)] = Scorer(scored, "nll", batch_size=SCORE_BATCH).score(x)
    nll, ratios = nll_of[id(model)], {}
    for key, group in candidates.items():
        background = mixture_nll(np.stack([nll_of[id(bg)] for bg in group]))
        ratios[key] = (nll - background, background)
    return {"nll": nll, "ratios": ratios}


def _auroc(normal: np.ndarray, ood: np.ndarray) -> float:
    labels = np.r_[np.zeros(len(normal)), np.ones(len(ood))]
    return round(detection_metrics(np.r_[normal, ood], labels)["auroc"], 4)


def _parts(names: list[str], sizes: list[int]) -> dict[str, slice]:
    bounds = np.cumsum([0, *sizes])
    return {name: slice(int(bounds[i]), int(bounds[i + 1])) for i, name in enumerate(names)}


def choose_twins(model, candidates: Candidates, val: torch.Tensor, validation: dict) -> tuple[dict, float]:
    """Per ratio score, the twin mutation chosen on the validation OOD set (MNIST val = 0, each
    picture's crops = 1): the highest worst-picture AUROC, ties to the higher mean. Returns the
    choice with every rate's validation AUROCs, and the model's mean val NLL (the typicality centre,
    what `Scorer(model, "typicality").fit(val)` centres on, from this same pass)."""
    scored = all_scores(model, candidates, torch.cat([val, *validation.values()]))
    part = _parts(["val", *validation], [len(val), *map(len, validation.values())])
    table: dict[str, dict] = {}
    for (kind, rate), (ratio, _) in scored["ratios"].items():
        if rate is None:
            continue
        per_picture = {name: _auroc(ratio[part["val"]], ratio[part[name]]) for name in validation}
        table.setdefault(kind, {})[rate] = {
            "min_auroc": min(per_picture.values()),
            "mean_auroc": round(float(np.mean(list(per_picture.values()))), 4),
            "auroc": per_picture,
        }
    chosen = {
        kind: max(by_rate, key=lambda r, b=by_rate: (b[r]["min_auroc"], b[r]["mean_auroc"]))
        for kind, by_rate in table.items()
    }
    selection = {
        kind: {"mutation": chosen[kind], "validation": {f"{r:g}": v for r, v in by_rate.items()}}
        for kind, by_rate in table.items()
    }
    return selection, float(scored["nll"][part["val"]].mean())


def check_against_scorer(model, backgrounds: dict, x: torch.Tensor, center: float, got: dict) -> None:
    for kind in [k for k in SCORES if k in got]:
        background = backgrounds.get(kind)
        scorer = Scorer(model, "likelihood-ratio" if background else kind, background, batch_size=SCORE_BATCH)
        scorer.center = center
        expected = scorer.score(x)
        if not np.allclose(expected, got[kind], rtol=1e-6, atol=1e-6):
            raise AssertionError(f"{kind}: Scorer gives {expected[:4]}, the benchmark {got[kind][:4]}")


def evaluate(
    run: Path, twin_runs: dict[float, Path], general_run: Path, val: torch.Tensor, test, sets, validation
) -> dict:
    """AUROC per set and score, each likelihood ratio with the twin chosen on `validation`."""
    model, general = load(run), load(general_run)
    candidates = ratio_candidates({rate: load(path) for rate, path in twin_runs.items()}, general)
    dims = math.prod(model.config.data_shape)
    start = time.time()
    selection, center = choose_twins(model, candidates, val, validation)
    mutation = {kind: choice["mutation"] for kind, choice in selection.items()}
    chosen = {kind: (kind, mutation.get(kind)) for kind in BACKGROUND_BPD}
    backgrounds = {kind: candidates[key] for kind, key in chosen.items()}
    names = ["mnist-test", *sets]
    x = torch.cat([test, *sets.values()])
    part = _parts(names, [len(test), *map(len, sets.values())])
    scored = all_scores(model, candidates, x)
    nll, png = scored["nll"], complexity_bits(x, model.config.data_low, model.config.data_high)
    scores = {"nll": nll, "complexity": nll / math.log(2) - png, "typicality": np.abs(nll - center)}
    scores.update({kind: scored["ratios"][key][0] for kind, key in chosen.items()})
    background_nll = {kind: scored["ratios"][key][1] for kind, key in chosen.items()}
    # The Scorer itself on the first batch: the same numbers. (Only a whole batch: a flow's
    # dequantization noise is drawn per batch, so an image's NLL depends on its place in it.)
    first = slice(0, min(len(x), SCORE_BATCH))
    check_against_scorer(model, backgrounds, x[first], center, {k: v[first] for k, v in scores.items()})
    normal = part["mnist-test"]

    def bits_per_dim(values: np.ndarray) -> float:
        return round(float(values.mean() / dims), 4)

    per_set = {}
    for name in names:
        s = part[name]
        entry = {
            "n": s.stop - s.start,
            "bpd": bits_per_dim(nll[s] / math.log(2)),
            **{
                BACKGROUND_BPD[kind]: bits_per_dim(values[s] / math.log(2))
                for kind, values in background_nll.items()
            },
            "png_bpd": bits_per_dim(png[s]),
        }
        if name != "mnist-test":
            entry["auroc"] = {kind: _auroc(values[normal], values[s]) for kind, values in scores.items()}
            # How often an OOD image gets a higher likelihood than the median MNIST test image.
            entry["share_more_likely_than_median_mnist"] = round(
                float((nll[s] < np.median(nll[normal])).mean()), 4
            )
        per_set[name] = entry
    ood = [n for n in names if n != "mnist-test"]
    # Every twin on the reported sets too, to show what the validation choice gained or cost.
    every_mutation = {
        kind: {
            f"{rate:g}": min(_auroc(ratio[normal], ratio[part[n]]) for n in ood)
            for (k, rate), (ratio, _) in scored["ratios"].items()
            if k == kind
        }
        for kind in selection
    }
    return {
        "val_bpd": round(center / math.log(2) / dims, 4),
        "twin_mutation": mutation,
        "twin_selection": selection,
        "sets": per_set,
        "min_auroc": {kind: min(per_set[n]["auroc"][kind] for n in ood) for kind in scores},
        "min_auroc_every_twin_mutation": every_mutation,
        "score_seconds": round(time.time() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["pixelcnn", "glow"], choices=MODELS)
    parser.add_argument(
        "--steps", type=int, default=None, help="training steps of every run (default: STEPS)"
    )
    parser.add_argument(
        "--mutation", type=float, default=0.2, help="noise share of the general background's data"
    )
    parser.add_argument(
        "--twin-mutations", type=float, nargs="+", default=list(TWIN_MUTATIONS),
        help="noise shares of the twins the validation set chooses from",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="score existing runs instead of retraining")
    parser.add_argument("--quick", action="store_true", help="smoke test: a few steps and images")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 suits a shared 2-core CPU)")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-ood-likelihood"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = f"{NAME}_quick" if args.quick else NAME
    work = args.work / "quick" if args.quick else args.work
    data = load_dataset("mnist")
    val, test = data.split("val").tensors[0], data.split("test").tensors[0]
    sets, validation = ood_sets(test, args.seed), validation_ood(args.seed)
    save_grid(f"{NAME}_sets", torch.cat([test[:10], *(x[:10] for x in sets.values())]), 0, 255, ncol=10)
    if args.quick:
        val, test = val[:QUICK_N], test[:QUICK_N]
        sets = {k: v[:QUICK_N] for k, v in sets.items()}
        validation = {k: v[: QUICK_N // 4] for k, v in validation.items()}
    runs = {}
    for model_name in args.models:
        steps = args.steps or (QUICK_STEPS if args.quick else STEPS[model_name])
        settings = settings_for(steps, args.seed)
        general_steps = QUICK_STEPS if args.quick else GENERAL_STEPS[model_name]
        general = general_settings(general_steps, args.seed, args.mutation)
        run = train_unless_reused(model_name, "mnist", work / model_name, settings, args.reuse)
        twins = {
            rate: train_unless_reused(
                model_name, "mnist", work / f"{model_name}-background-{rate:g}",
                {**settings, "data.mutation": rate}, args.reuse,
            )
            for rate in args.twin_mutations
        }  # fmt: skip
        images = general_images(work / "general-images", data.split("train").tensors[0], args.seed)
        general_run = work / f"{model_name}-general-background-{args.mutation:g}"
        train_unless_reused(model_name, str(images), general_run, general, args.reuse)
        runs[model_name] = {
            "model": model_name,
            "settings": settings,
            "twin_mutations": args.twin_mutations,
            "general_background_settings": general,
            "steps": steps,
            "train_seconds": logged_train_seconds(run),
            "twin_train_seconds": {f"{rate:g}": logged_train_seconds(path) for rate, path in twins.items()},
            "general_background_train_seconds": logged_train_seconds(general_run),
            **evaluate(run, twins, general_run, val, test, sets, validation),
        }
        print(model_name, runs[model_name]["twin_mutation"], runs[model_name]["min_auroc"], flush=True)
        save(name, result(runs if args.quick else {**earlier_runs(name), **runs}, sets, validation))


def result(runs: dict, sets: dict, validation: dict) -> dict:
    return {
        "command": "genzoo train MODEL --data mnist --out R [--set data.mutation=M for a twin]; "
        "scores as `genzoo anomaly R --score S [--background B ...]`, AUROC of MNIST test (0) vs each set (1)",
        "in_distribution": "MNIST-10k test split (1000); trained on its train split (8000), typicality "
        "centred on its val split (1000)",
        "sets": {k: {"n": len(v), "how": SETS[k]} for k, v in sets.items()},
        "validation": "the twin's mutation is chosen per ratio on MNIST val (0) against "
        f"{sum(map(len, validation.values()))} crops of scikit-image's {', '.join(validation)} (1, in no "
        "reported set): the highest worst-picture AUROC",
        "scores": {
            "nll": "-log p(x), nats (flows: the uniform-dequantization bound)",
            "complexity": "nll in bits - bits of a lossless PNG (Serra et al. 2020)",
            "typicality": "|nll - mean val nll| (Nalisnick et al. 2019b)",
            "likelihood-ratio": "nll - nll of a twin trained on mutated data (Ren et al. 2019)",
            "likelihood-ratio-general": "nll - nll of a general background, trained on the MNIST training "
            "images and 10,000 crops of scikit-learn's two sample photos, mutated 20% (a general-domain "
            "background as in Schirrmeister et al. 2020)",
            "likelihood-ratio-mixture": "nll - nll of the twin's and the general background's equal mixture, "
            "-log (p_twin + p_general) / 2",
        },
        "goal": "every correction's AUROC above 0.95 on every set; raw nll expected below 0.5 on some",
        "runs": runs,
    }


if __name__ == "__main__":
    main()
