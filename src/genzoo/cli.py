"""The `genzoo` command (contract in DESIGN.md; other tools script against it, keep it stable)."""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import sys
from pathlib import Path

from genzoo.errors import GenzooError
from genzoo.files import read_utf8
from genzoo.sampling import MASK_REGIONS
from genzoo.train.config import SEED_LIMIT

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line like every other user error."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"genzoo: error: {message}; see `{self.prog} --help`\n")


DEVICE_HELP = "auto (CUDA, then MPS, then CPU), cpu, cuda or mps"


def out_path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("--out must not be empty")
    return Path(text)


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the seed must be a whole number, got '{text}'") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"the seed must be in 0 .. 2**32 - 1, got {text}")
    return value


EVALUATE_METRICS = """metrics, by the data they apply to:
  images, vectors   nll (nll_kind, bpd), fid, kid, is, precision, recall, density, coverage,
                    classes (labelled data), memorization, modes (toy2d-ring, toy2d-grid)
  text (gpt)        nll, loss_per_token, bpc, perplexity
  text pairs        nll, exact_match, chrf, bleu (seq2seq)
  music             nll (nll_per_frame)
  audio             nll (bpd)
  tables            quality (quality_score, column_shapes, column_pair_trends), detection
                    (detection_auc), ml_efficacy (--target COLUMN; default: the data's target),
                    privacy (dcr_share, exact_copy_rate, mia_auc)
  series            discriminative_score, predictive_score (TimeGAN's, 0 is best); forecasters
                    (deepar): mase, smape, crps, coverage on rolling origins over the test part
"""


ANOMALY_SCORES = """scores (higher = more anomalous):
  auto              likelihood-ratio with --background; complexity for image models with a
                    likelihood; else nll, reconstruction, denoising or critic, as the model offers
  nll               -log p(x) (flows, autoregressive, VAE estimate, diffusion bound, dbn)
  likelihood-ratio  nll minus a background run's nll (Ren et al. 2019; train the background with
                    --set data.mutation=0.2); several --background runs: their equal mixture's
  complexity        nll in bits minus the bits of a PNG of the image (Serra et al. 2020)
  typicality        |nll - mean nll of the run's validation split| (Nalisnick et al. 2019)
  reconstruction    VAE, TVAE: -log p(x | z = the posterior mean)
  denoising         DDPM, TabDDPM: error predicting the noise over several noise levels
  critic            GANs, CTGAN: minus the critic's score
  mahalanobis       gaussian-copula: the Mahalanobis distance of a row's normal scores
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="genzoo",
        description="Train, sample, evaluate and compare deep generative models on your own data.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    # --debug after the command too; SUPPRESS keeps it from overwriting one given before.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    sub.add_parser = functools.partial(sub.add_parser, parents=[debug])

    p = sub.add_parser("list", help="list the registered models")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--data", action="store_true", help="list dataset names instead of models")
    p.add_argument(
        "--presets", action="store_true", help="list the presets behind the README's figures instead"
    )

    p = sub.add_parser("config", help="print a model's settings and their defaults, as YAML for --config")
    p.add_argument("model", help="model name (see `genzoo list`)")

    p = sub.add_parser("train", help="train a model into a run directory")
    p.add_argument("model", help="model name (see `genzoo list`)")
    p.add_argument("--data", required=True, help="dataset name (digits, mnist, toy2d-ring, ...) or a path")
    p.add_argument("--out", required=True, type=out_path, help="run directory to create (or resume)")
    p.add_argument(
        "--config", type=Path, help="YAML file of settings (flat, or grouped under model/train/data)"
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting")
    p.add_argument(
        "--preset", help="settings behind a README figure (`genzoo list --presets`); --set overrides them"
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--max-steps", type=int, help="optimizer steps to train for")
    budget.add_argument("--epochs", type=float, help="passes over the training split")
    budget.add_argument("--time-budget", help="stop after this long: 90s, 5m, 1h")
    p.add_argument("--seed", type=seed, help="random seed (default 0)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="data-parallel processes on this machine (torchrun's --nproc_per_node; one GPU each on CUDA)",
    )

    p = sub.add_parser("sample", help="draw samples from a trained run")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("-n", type=int, help="number of samples (default 64; 1 for text models)")
    p.add_argument(
        "--out",
        type=out_path,
        help=".png (grid or scatter) or .npy (raw, dataset units); .txt for text; .mid or .wav for music and audio",
    )
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--temperature", type=float, help="scale of the sampling noise, where the family has one")
    p.add_argument("--sampler", help="diffusion sampler: ddpm, ddim, dpm-solver++ or sde-dpm-solver++")
    p.add_argument("--steps", type=int, help="sampler steps")
    p.add_argument("--eta", type=float, help="DDIM noise: 0 deterministic, 1 like DDPM")
    p.add_argument("--guidance", type=float, help="classifier-free guidance weight w >= 0 (with --label)")
    p.add_argument("--label", type=int, help="class to sample, for class-conditional models")
    p.add_argument("--top-k", type=int, dest="top_k")
    p.add_argument("--top-p", type=float, dest="top_p")
    # Text models (gpt, seq2seq): the text goes to stdout, as it is generated for a single gpt sample.
    p.add_argument("--prompt", help="gpt: text to continue")
    p.add_argument("--max-new-tokens", type=int, dest="max_new_tokens", help="gpt: tokens to generate")
    p.add_argument("--stop", action="append", help="gpt: stop a sample at this string (repeatable)")
    p.add_argument("--no-kv-cache", action="store_false", dest="kv_cache", default=None, help="gpt")
    p.add_argument("--input", help="seq2seq: the text to map, or a file with one input per line")
    p.add_argument("--beam-size", type=int, dest="beam_size", help="seq2seq: beam search width (1 = greedy)")
    p.add_argument("--length-penalty", type=float, dest="length_penalty", help="seq2seq: beam length penalty")
    p.add_argument("--seconds", type=float, help="audio and music: length of each sample in seconds")
    p.add_argument("--primer", type=Path, help="music: a .mid file the samples continue")
    p.add_argument("--where", help='tables: fix columns, e.g. "sex=Female,income=>50K"')
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = sub.add_parser("inpaint", help="fill the masked part of images with a trained model")
    p.add_argument("run", type=Path, help="run directory")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--images", type=Path, help=".npy of images in dataset units, (N, C, H, W) or (C, H, W)"
    )
    source.add_argument("--split", help="take the first -n images of this split of the run's data")
    p.add_argument("-n", type=int, default=16, help="images taken from --split (default 16)")
    p.add_argument(
        "--mask",
        required=True,
        help=f"region to fill: {', '.join(MASK_REGIONS)}, or a .npy of booleans (True = fill)",
    )
    p.add_argument("--out", required=True, type=out_path, help=".npy (filled images) or .png (grid)")
    p.add_argument("--sampler", help="diffusion sampler: ddpm or ddim")
    p.add_argument("--steps", type=int, help="sampler steps")
    p.add_argument("--resample", type=int, help="RePaint resampling per step (1 = plain replacement)")
    p.add_argument("--eta", type=float, help="DDIM noise: 0 deterministic, 1 like DDPM")
    p.add_argument(
        "--reconstruction", type=float, help="reconstruction guidance weight (0 = replacement only)"
    )
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = sub.add_parser(
        "evaluate",
        help="measure a trained run on a data split",
        epilog=EVALUATE_METRICS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--split", help="test (default), or val/train; data without a test split use val")
    p.add_argument("--metrics", default="nll", help="comma-separated metric names (listed below)")
    p.add_argument(
        "--num-samples", type=int, default=1000, help="samples drawn for sample metrics (default 1000)"
    )
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--target", help="tables: the column ml_efficacy predicts")
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = sub.add_parser(
        "anomaly",
        help="score data for anomalies / out-of-distribution inputs with a trained run",
        epilog=ANOMALY_SCORES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--data", help="dataset name or path to score (default: the run's own data)")
    p.add_argument("--split", default="all", help="all (default), train, val or test")
    p.add_argument("--out", type=out_path, help="scores.csv; plots are written beside it")
    p.add_argument("--score", default="auto", help="which score (listed below; default auto)")
    threshold = p.add_mutually_exclusive_group()
    threshold.add_argument(
        "--fpr", type=float, help="share of the run's validation split flagged (default 0.05)"
    )
    threshold.add_argument(
        "--contamination", type=float, help="share of the scored data expected anomalous, in (0, 0.5)"
    )
    p.add_argument("--labels", help="file of 0/1 per example (1 = anomaly), or a column of the table")
    p.add_argument(
        "--background",
        type=Path,
        action="append",
        help="likelihood-ratio: a run trained on noised data; repeat it for the equal mixture of several",
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = sub.add_parser("compress", help="code data losslessly with a trained run's likelihood (pixelcnn)")
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--data", help="dataset name or path, or a .npy of images (default: the run's own data)")
    p.add_argument("--split", default="all", help="all (default), train, val or test")
    p.add_argument("--out", required=True, type=out_path, help="the compressed file, e.g. images.gzoo")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = sub.add_parser("decompress", help="restore what `genzoo compress` coded, bit for bit")
    p.add_argument("run", type=Path, help="the run directory that compressed the file")
    p.add_argument("file", type=Path, help="the compressed file")
    p.add_argument("--out", required=True, type=out_path, help="a .npy file, or a folder for PNG images")
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = sub.add_parser("forecast", help="probabilistic forecasts past the end of a series (deepar)")
    p.add_argument("run", type=Path, help="run directory of a forecaster")
    p.add_argument("--data", help="series CSV or name to continue (default: the run's own series)")
    p.add_argument("--horizon", type=int, required=True, help="steps to forecast")
    p.add_argument("--out", type=out_path, help="forecast.csv; a fan chart is written beside it")
    p.add_argument("--quantiles", default="0.1,0.5,0.9", help="levels to report (default 0.1,0.5,0.9)")
    p.add_argument("--samples", type=int, default=200, help="sample paths per series (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object (the forecast rows included)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = sub.add_parser(
        "compare", help="train several models alike and write a report that says which to pick"
    )
    p.add_argument("--data", required=True, help="dataset name or path, as for train")
    p.add_argument("--models", default="", help="comma-separated model names (see `genzoo list`)")
    p.add_argument(
        "--out", required=True, type=out_path, help="report directory (index.html, results.json, runs/)"
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--time-budget", default="3m", help="training time per model and repeat: 90s, 3m, 1h")
    budget.add_argument("--max-steps", type=int, help="train every model this many steps instead of a budget")
    p.add_argument(
        "--steps-from",
        type=Path,
        help="train the step counts an earlier report directory calibrated (same models and --time-budget)",
    )
    p.add_argument("--repeats", type=int, default=1, help="seeds per model (default 1)")
    p.add_argument("--seed", type=seed, default=0, help="first seed (default 0)")
    p.add_argument("--priority", default="quality", help="quality, likelihood, speed or diversity")
    p.add_argument("--runs", default="", help="comma-separated existing run directories to include")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODEL.KEY=VALUE",
        help="one model's setting (data.KEY=VALUE: a dataset option, for every model)",
    )
    p.add_argument("--num-samples", type=int, default=1000, help="samples for the sample metrics")
    p.add_argument(
        "--nll-examples", type=int, default=0, help="NLL on the split's first N examples (default 0: all)"
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument(
        "--threads", type=int, default=0, help="torch threads for training and evaluation (0 = default)"
    )
    p.add_argument(
        "--executor",
        default="local",
        help="local (this machine, one run after another) or ray (each run a Ray task; genzoo[distributed])",
    )
    p.add_argument(
        "--address", help="ray: the cluster's address (auto, ray://host:10001; default: a local one)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = sub.add_parser(
        "ui", help="serve the web UI (genzoo[ui]): train, sample, compare and apply in a browser"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument(
        "--workspace", type=Path, default=Path("genzoo-workspace"), help="folder for uploads, runs, outputs"
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--max-upload-mb", type=float, default=100.0, help="largest file a user may upload")
    p.add_argument("--max-samples", type=int, default=256, help="most samples one request may ask for")
    p.add_argument("--concurrency", type=int, default=2, help="requests computed at once (the rest wait)")
    return parser


def cmd_list(args: argparse.Namespace) -> None:
    if args.data:
        from genzoo.data import dataset_names

        names = dataset_names()
        print(json.dumps(names) if args.json else "\n".join(names))
        return
    if args.presets:
        from genzoo.models.registry import describe_presets

        presets = describe_presets()
        if args.json:
            print(json.dumps(presets, indent=2))
        for p in [] if args.json else presets:
            sets = " ".join(
                f"--set {k}={json.dumps(v, separators=(',', ':'))}" for k, v in p["settings"].items()
            )
            print(f"genzoo train {p['model']} --data {p['data']} --preset {p['preset']}")
            print(f"    {p['figure']}\n    the same as: {sets}")
        return
    from genzoo.models import describe_models

    rows = describe_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    table = [["name", "family", "modalities", "log_prob", "description"]]
    table += [
        [r["name"], r["family"], ",".join(r["modalities"]), r["log_prob"] or "-", r["description"]]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print(" ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)), row[4])


def cmd_config(args: argparse.Namespace) -> None:
    from genzoo.train.run import default_settings_yaml

    print(default_settings_yaml(args.model), end="")


def cmd_train(args: argparse.Namespace) -> None:
    from genzoo.settings import parse_assignments, parse_duration, read_config_file
    from genzoo.train.distributed import launch, world_from_env
    from genzoo.train.run import train

    if args.nproc < 1:
        raise GenzooError(f"--nproc must be >= 1, got {args.nproc}")
    if args.nproc > 1 and not world_from_env().sharded:  # start the processes; each runs this command
        launch(args.nproc, without_nproc(args.argv))
        return

    settings = read_config_file(args.config) if args.config else {}
    settings.update(parse_assignments(args.set))
    flags = {
        "train.max_steps": args.max_steps,
        "train.epochs": args.epochs,
        "train.time_budget": parse_duration(args.time_budget) if args.time_budget else None,
        "train.seed": args.seed,
    }
    settings.update({k: v for k, v in flags.items() if v is not None})
    model, metrics = train(
        args.model,
        args.data,
        args.out,
        settings,
        resume=args.resume,
        device=args.device,
        quiet=args.quiet,
        preset=args.preset,
    )
    if world_from_env().main:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
        print(f"trained {model.name} into {args.out}: {shown}")


def without_nproc(argv: list[str]) -> list[str]:
    """The command line minus `--nproc N` / `--nproc=N` (what each launched process runs)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            kept.append(arg)
    return kept


# The flags `sample` hands to the model's sample() as options, when given.
SAMPLE_OPTIONS = (
    "temperature", "sampler", "steps", "eta", "guidance", "label", "top_k", "top_p",
    "prompt", "max_new_tokens", "stop", "kv_cache", "beam_size", "length_penalty", "where",
)  # fmt: skip
INPAINT_OPTIONS = ("sampler", "steps", "eta", "resample", "reconstruction")


def cmd_sample(args: argparse.Namespace) -> None:
    from genzoo.models import get_model_class
    from genzoo.sampling import is_text, sample
    from genzoo.train.run import RunSpec

    spec = RunSpec.read(args.run)
    text = is_text(spec)
    if args.out is None and not text:
        raise GenzooError(
            "--out is required: a .png or .npy file for the samples (.mid or .wav for music and audio, "
            ".csv for tables)"
        )
    options = {k: getattr(args, k) for k in SAMPLE_OPTIONS if getattr(args, k) is not None}
    if args.input is not None:  # seq2seq: the text to map, or a file with one input per line
        path = Path(args.input)
        is_file = len(args.input) < 4096 and path.is_file()
        lines = read_utf8(path, "--input ").splitlines() if is_file else None
        options["inputs"] = [line for line in lines if line.strip()] if is_file else args.input
    shown: list[str] = []
    accepts_stream = "stream" in inspect.signature(get_model_class(spec.model).sample).parameters
    if text and (args.n or 1) == 1 and accepts_stream:

        def show(piece: str) -> None:  # one gpt sample is printed as it is generated
            if not shown:  # the prompt first, once the model has accepted it
                print(options.get("prompt", ""), end="")
            shown.append(piece)
            print(piece, end="", flush=True)

        options["stream"] = show
    samples = sample(
        args.run, args.n, seed=args.seed, device=args.device, out=args.out, seconds=args.seconds,
        primer=args.primer, quiet=args.quiet or "stream" in options, **options,
    )  # fmt: skip
    if not text:
        print(f"wrote {len(samples)} samples to {args.out}")
        set_directly = getattr(samples, "attrs", {}).get("where", {}).get("rows_set_directly", 0)
        if set_directly:
            print(f"genzoo: {set_directly} of {len(samples)} rows did not meet --where when drawn; "
                  "their conditioned columns were set to the asked values", file=sys.stderr)  # fmt: skip
    elif shown:
        print()
    else:
        print("\n".join(samples) if "inputs" in options else "\n\n----\n\n".join(samples))


def cmd_inpaint(args: argparse.Namespace) -> None:
    from genzoo.sampling import inpaint, read_npy

    options = {k: getattr(args, k) for k in INPAINT_OPTIONS if getattr(args, k) is not None}
    images = read_npy(args.images) if args.images is not None else None
    filled = inpaint(
        args.run, images, args.mask, split=args.split, n=args.n, seed=args.seed, device=args.device,
        out=args.out, quiet=args.quiet, **options,
    )  # fmt: skip
    print(f"wrote {len(filled)} inpainted images to {args.out}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from genzoo.evaluation import evaluate_run

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    result = evaluate_run(
        args.run,
        split=args.split,
        metrics=metrics,
        seed=args.seed,
        num_samples=args.num_samples,
        device=args.device,
        quiet=args.quiet,
        target=args.target,
    )
    if args.json:
        print(json.dumps(result))
        return
    width = max(len(k) for k in result)
    for key, value in result.items():
        if isinstance(value, list | dict):
            continue  # per-class detail: in --json only
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")


def cmd_anomaly(args: argparse.Namespace) -> None:
    from genzoo.apps.anomaly import anomaly

    report = anomaly(
        args.run, args.data, split=args.split, score=args.score, fpr=args.fpr,
        contamination=args.contamination, labels=args.labels, background=args.background,
        out=args.out, device=args.device, quiet=args.quiet,
    )  # fmt: skip
    summary = report.summary
    if args.json:
        print(json.dumps(summary))
        return
    print(
        f"{summary['flagged']} of {summary['n']} flagged by the {summary['score']} score ({summary['reason']})"
    )
    print(f"threshold {summary['threshold']:.6g}: {summary['threshold_rule']}")
    if "auroc" in summary:
        print(
            f"labels ({summary['labels']}): AUROC {summary['auroc']:.4f}, AUPRC {summary['auprc']:.4f}, "
            f"precision {summary['precision']:.3f}, recall {summary['recall']:.3f}"
        )
    for path in summary.get("files", []):
        print(f"wrote {path}")


def cmd_compress(args: argparse.Namespace) -> None:
    from genzoo.apps.compression import compress

    result = compress(args.run, args.data, split=args.split, out=args.out, quiet=args.quiet)
    summary = {"file": str(args.out), **result.summary()}
    if args.json:
        print(json.dumps(summary))
        return
    print(
        f"wrote {args.out}: {result.count} examples in {len(result.data):,} bytes, "
        f"{result.bits_per_dim:.4f} bits per dimension (the model's NLL: {result.nll_bits_per_dim:.4f})"
    )


def cmd_decompress(args: argparse.Namespace) -> None:
    from genzoo.apps.compression import decompress

    x = decompress(args.run, args.file, out=args.out, quiet=args.quiet)
    print(f"wrote {len(x)} examples to {args.out}")


def cmd_compare(args: argparse.Namespace) -> None:
    from genzoo.report import CompareConfig, run_compare
    from genzoo.settings import parse_assignments, parse_duration

    settings: dict[str, dict] = {}
    for key, value in parse_assignments(args.set).items():
        model, dot, name = key.partition(".")
        if not dot or not name:
            raise GenzooError(f"--set for compare takes MODEL.KEY=VALUE (e.g. vae.lr=1e-3), got '{key}'")
        settings.setdefault(model, {})[name] = value
    data_options = settings.pop("data", {})  # data.KEY=VALUE: the dataset's option, for every model
    config = CompareConfig(
        data=args.data,
        out=args.out,
        models=[m.strip() for m in args.models.split(",") if m.strip()],
        time_budget=parse_duration(args.time_budget) if args.time_budget else 180.0,
        max_steps=args.max_steps or 0,
        steps_from=args.steps_from,
        repeats=args.repeats,
        seed=args.seed,
        priority=args.priority,
        runs=[Path(r.strip()) for r in args.runs.split(",") if r.strip()],
        settings=settings,
        data_options=data_options,
        num_samples=args.num_samples,
        nll_examples=args.nll_examples,
        device=args.device,
        threads=args.threads,
        executor=args.executor,
        address=args.address,
        quiet=args.quiet,
    )
    results = run_compare(config)
    print(results["recommendation"]["summary"])
    print(f"report: {args.out / 'index.html'}")


def cmd_forecast(args: argparse.Namespace) -> None:
    from genzoo.apps.forecast import forecast

    result = forecast(
        args.run, args.data, horizon=args.horizon, quantiles=args.quantiles, samples=args.samples,
        seed=args.seed, device=args.device, out=args.out, quiet=args.quiet,
    )  # fmt: skip
    if args.json:
        rows = json.loads(result.frame.to_json(orient="records", date_format="iso"))
        print(json.dumps({**result.summary, "forecast": rows}))
        return
    print(result.frame.to_string(index=False, max_rows=40))
    for path in result.summary.get("files", []):
        print(f"wrote {path}")


def cmd_ui(args: argparse.Namespace) -> None:
    from genzoo.ui import Limits, serve

    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-samples", args.max_samples),
                        ("--concurrency", args.concurrency)):  # fmt: skip
        if value <= 0:
            raise GenzooError(f"{flag} must be positive, got {value:g}")
    limits = Limits(
        upload_bytes=int(args.max_upload_mb * 2**20),
        samples_per_request=args.max_samples,
        concurrency=args.concurrency,
    )
    serve(args.host, args.port, args.workspace, limits, device=args.device)


COMMANDS = {
    "list": cmd_list,
    "config": cmd_config,
    "train": cmd_train,
    "sample": cmd_sample,
    "inpaint": cmd_inpaint,
    "evaluate": cmd_evaluate,
    "anomaly": cmd_anomaly,
    "compress": cmd_compress,
    "decompress": cmd_decompress,
    "forecast": cmd_forecast,
    "compare": cmd_compare,
    "ui": cmd_ui,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a usage mistake already said in one line
        return int(stop.code or 0)
    args.argv = argv  # what `train --nproc N` hands on to the processes it starts
    try:
        COMMANDS[args.command](args)
    except GenzooError as err:
        if args.debug:
            raise
        print(f"genzoo: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # `genzoo list --json | head -1`: the reader left, and that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # a path the user gave cannot be written or read: full disk, read-only, ...
        if args.debug:
            raise
        where = f" '{err.filename}'" if err.filename else ""
        print(
            f"genzoo: error: {err.strerror or err}:{where}; check the path, its permissions and free space",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        hint = "; continue from the last checkpoint with --resume" if args.command == "train" else ""
        if args.command == "compare":
            hint = "; run the same command again to continue (finished runs are reused)"
        print(f"genzoo: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
