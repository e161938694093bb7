"""`make demo`: train a VAE on the embedded digits, then show samples, reconstructions and the test NLL.

python -m genzoo.demo --out demo_out
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from genzoo.evaluation import evaluate_run
from genzoo.train import load_run, train
from genzoo.viz import save_image_grid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("demo_out"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run = args.out / "vae-digits"

    if (run / "model.safetensors").exists():
        print(f"re-using the finished run in {run} (delete it to train again)")
    else:
        print("training a VAE on scikit-learn's 8x8 digits (1000 training images) ...")
        start = time.perf_counter()
        train("vae", "digits", run, {"seed": args.seed})
        print(f"trained in {time.perf_counter() - start:.0f} s")

    model, spec = load_run(run)
    data = spec.load_data()
    info, test = data.info, data.split("test").tensors[0]
    # Decoder means read better than pixel-wise draws from an 8x8 image's independent pixels.
    means = model.sample(64, generator=torch.Generator().manual_seed(args.seed), mean=True)
    save_image_grid(means, args.out / "samples.png", info.low, info.high)
    originals = test[:32]
    torch.manual_seed(args.seed)
    pairs = torch.stack([originals, model.reconstruct(originals)], dim=1).flatten(0, 1)
    save_image_grid(pairs, args.out / "reconstructions.png", info.low, info.high, ncol=16)
    rows = [model.interpolate(test[i], test[i + 1], steps=10) for i in range(0, 16, 2)]
    save_image_grid(torch.cat(rows), args.out / "interpolations.png", info.low, info.high, ncol=10)

    print("evaluating on the 447 test images ...")
    result = evaluate_run(run, split="test", metrics=["nll"], seed=args.seed)
    print(
        f"test NLL: {result['nll']:.2f} nats per image (IWAE estimate; -ELBO bound {result['nll_bound']:.2f})"
    )
    print(f"          {result['bpd']:.3f} bits per pixel")
    for name in ("samples", "reconstructions", "interpolations"):
        print(f"wrote {args.out / (name + '.png')}")


if __name__ == "__main__":
    main()
