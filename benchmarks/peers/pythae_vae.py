"""genzoo's `vae` and `iwae` side by side with pythae 0.1.2's VAE and IWAE (issue 27).

What is compared: one optimizer step (batch 64) of each, timed in alternating rounds on one thread,
and the test NLL both reach after the same number of steps.

Data: `mnist-binary` (binary MNIST t10k, split 8000/1000/1000 by genzoo's loader), for both sides.
Why this data: pythae's reconstruction losses are only 'bce' (a Bernoulli likelihood on values in
[0, 1]) or 'mse' (a unit-variance Gaussian). genzoo's default likelihood on `digits` (17 levels) is
a discretised one that pythae cannot express, so the NLLs would not compare there. On binary data
both sides model p(x|z) as the same factorised Bernoulli: genzoo with `likelihood=bernoulli` (what its
"auto" picks for 2-level data anyway), pythae with `reconstruction_loss='bce'`. The peer draws its
batches from the same training tensor with the Trainer's own seeded permutation (seed 0, a fresh
permutation each epoch), so both sides see the same examples in the same order.

Networks: genzoo's defaults, hidden (256, 256), GELU, latent 16, dropout 0.1 on the hidden layers.
pythae's encoder and decoder are written here (pythae.models.nn.BaseEncoder / BaseDecoder) with the
same layers: encoder 784 -> 256 -> 256 -> 2x16 (mean, log-variance; the log-variance clamped to
[-12, 8] as genzoo does), decoder 16 -> 256 -> 256 -> 784, Linear -> GELU -> Dropout(0.1) per hidden
layer. The encoder sees 2x - 1 (genzoo maps data to [-1, 1] inside); the decoder returns sigmoid
probabilities because pythae's 'bce' loss takes probabilities (F.binary_cross_entropy), and keeps
a `logits` method for the evaluation below. Same initialisation scheme (torch's nn.Linear) and
seed; parameter counts are equal.

Objectives: vae - the ELBO with one posterior sample and the analytic KL on both sides. genzoo's
`kl_warmup_steps` (1000 by default) is set to 0, since pythae has no KL warm-up. iwae - the k = 5
importance-weighted bound on both (genzoo `train_samples=5`, `dreg=False` its default; pythae
`number_samples=5`). pythae writes its IWAE loss as -sum_i w~_i log w_i (w~ detached), genzoo as
-log 1/k sum_i w_i: different values, the same gradient.

Optimizer: genzoo's side is `sidebyside.genzoo_trainer` stepped by `train_steps(1)` (AdamW, lr 1e-3,
betas (0.9, 0.999), weight decay 0, constant lr, no warm-up, no gradient clipping, no EMA). pythae's
own trainer is not used: its model's forward (which returns the loss) runs in a closure with
torch.optim.AdamW set identically: zero_grad, forward(...).loss, backward, step.

What differs, and why: pythae's BCE is computed on probabilities (log clamped at -100 by torch)
where genzoo's works on logits; that is each library's own loss code, measured as it is. genzoo's
step also carries its Trainer's per-step work (the seeded permutation for the batch, a finiteness
check, logging four scalars); the peer's batches come from a permutation drawn once per epoch.

Quality: the test NLL (nats per image, lower is better) by ONE importance-sampled estimator for
both, `importance_sampled_nll` below: log p(x) ~ log 1/K sum_k p(x|z_k) p(z_k) / q(z_k|x) with
z_k ~ q(z|x), from an encoder callable (x -> mean, log-variance) and a decoder callable
(z -> Bernoulli logits) that each side provides, with the same noise (a seeded generator) for both,
the networks in eval mode (no dropout), after both sides trained the same number of steps.
Full mode: vae 2001 steps and iwae 1001 steps per side (1 untimed warm-up step, then 10 alternating
timed rounds of 200 / 100), NLL with K = 500 on all 1000 test images (the estimator agrees with
genzoo's own `log_prob` to ~0.02 nats at K = 1000). The timed run is seed 0; seeds 1 and 2 train
both sides again for the same steps, untimed, and the table gives the NLL's mean and standard
deviation over the three. --quick: 51 steps, K = 50, 200 test images, two seeds.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from pythae.data.datasets import DatasetOutput
from pythae.models import IWAE, VAE, IWAEConfig, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from sidebyside import alternate, batches, genzoo_trainer, over_seeds, parameter_count, row, run_alone
from torch import nn

from genzoo.data import load_dataset

DATA = "mnist-binary"
BATCH = 64
HIDDEN = (256, 256)
LATENT = 16
DROPOUT = 0.1
IWAE_SAMPLES = 5
LR, BETAS, WEIGHT_DECAY = 1e-3, (0.9, 0.999), 0.0
SEED = 0
_LOG_2PI = math.log(2 * math.pi)

# genzoo settings: model (the defaults, written out) and training (matched to the peer's AdamW).
GENZOO_SETTINGS = {
    "hidden": HIDDEN,
    "activation": "gelu",
    "latent_dim": LATENT,
    "dropout": DROPOUT,
    "likelihood": "bernoulli",
    "kl_warmup_steps": 0,  # pythae has no KL warm-up
    "lr": LR,
    "betas": BETAS,
    "weight_decay": WEIGHT_DECAY,
    "lr_schedule": "constant",
    "warmup_steps": 0,
    "grad_clip": 0.0,
    "ema_decay": 0.0,
    "batch_size": BATCH,
}


def _load():
    with warnings.catch_warnings():  # "only the t10k file was found": the 8000/1000/1000 split is meant
        warnings.simplefilter("ignore", UserWarning)
        return load_dataset(DATA)


def _hidden_layers(width: int, hidden: tuple[int, ...]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width, h), nn.GELU(), nn.Dropout(DROPOUT)]
        width = h
    return layers


class Encoder(BaseEncoder):
    """q(z|x) for pythae: the layers of genzoo's MLP encoder, on 2x - 1 as genzoo feeds it."""

    def __init__(self, numel: int):
        BaseEncoder.__init__(self)
        self.net = nn.Sequential(*_hidden_layers(numel, HIDDEN), nn.Linear(HIDDEN[-1], 2 * LATENT))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        mu, logvar = self.net((2 * x - 1).flatten(1)).chunk(2, dim=1)
        return ModelOutput(embedding=mu, log_covariance=logvar.clamp(-12.0, 8.0))


class Decoder(BaseDecoder):
    """p(x|z) for pythae: genzoo's MLP decoder layers; probabilities for pythae's 'bce' loss."""

    def __init__(self, shape: tuple[int, ...]):
        BaseDecoder.__init__(self)
        self.shape = shape
        rev = HIDDEN[::-1]
        self.net = nn.Sequential(*_hidden_layers(LATENT, rev), nn.Linear(rev[-1], math.prod(shape)))

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def forward(self, z: torch.Tensor) -> ModelOutput:
        return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).view(len(z), *self.shape))


def pythae_model(name: str, shape: tuple[int, ...], seed: int = SEED) -> nn.Module:
    torch.manual_seed(seed)  # the initial weights, as genzoo's build_model seeds its own
    if name == "iwae":
        config = IWAEConfig(
            input_dim=shape, latent_dim=LATENT, reconstruction_loss="bce", number_samples=IWAE_SAMPLES
        )
        return IWAE(config, encoder=Encoder(math.prod(shape)), decoder=Decoder(shape))
    config = VAEConfig(input_dim=shape, latent_dim=LATENT, reconstruction_loss="bce")
    return VAE(config, encoder=Encoder(math.prod(shape)), decoder=Decoder(shape))


@torch.no_grad()
def importance_sampled_nll(
    encode, decode_logits, x: torch.Tensor, k: int, seed: int = 1, rows: int = 8192
) -> float:
    """Mean over x of -log p(x), log p(x) ~ logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K.

    encode: x (B, *shape) in {0, 1} -> (mean, log-variance), each (B, D); decode_logits: z (N, D) ->
    Bernoulli logits (N, numel). p(z) = N(0, I). The noise comes from a generator seeded with `seed`,
    so two models evaluated with the same arguments see the same eps. `rows` bounds the decoder rows
    of one forward pass.
    """
    generator = torch.Generator().manual_seed(seed)
    per_block = max(1, min(len(x), 256, rows))
    chunk = max(1, rows // per_block)
    total = 0.0
    for start in range(0, len(x), per_block):
        xb = x[start : start + per_block]
        b = len(xb)
        target = xb.flatten(1)
        mu, logvar = encode(xb)
        parts = []
        for done in range(0, k, chunk):
            n = min(chunk, k - done)
            eps = torch.randn(n, b, mu.shape[1], generator=generator)
            z = mu + torch.exp(0.5 * logvar) * eps
            logits = decode_logits(z.flatten(0, 1)).view(n, b, -1)
            log_px = -F.binary_cross_entropy_with_logits(
                logits, target.expand(n, b, -1), reduction="none"
            ).sum(-1)
            log_pz = -0.5 * (z * z + _LOG_2PI).sum(-1)
            log_qz = -0.5 * (eps * eps + logvar + _LOG_2PI).sum(-1)
            parts.append(log_px + log_pz - log_qz)
        log_px_estimate = torch.logsumexp(torch.cat(parts), 0) - math.log(k)
        total += float(log_px_estimate.sum())
    return -total / len(x)


def _genzoo_callables(model):
    def encode(x):
        return model._posterior(model.rescale.to_internal(x), None)

    def decode_logits(z):
        return model._decode_params(z, None).flatten(1)

    return encode, decode_logits


def _pythae_callables(model):
    def encode(x):
        out = model.encoder(x)
        return out.embedding, out.log_covariance

    return encode, model.decoder.logits


def pair(name: str, quick: bool) -> dict:
    dataset = _load()
    train = dataset.split("train").tensors[0]
    test = dataset.split("test").tensors[0]
    shape = tuple(train.shape[1:])
    settings = dict(GENZOO_SETTINGS, **({"train_samples": IWAE_SAMPLES} if name == "iwae" else {}))

    def both(seed: int):
        """genzoo's trainer, pythae's model and its optimizer step, each initialised from `seed`."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            trainer = genzoo_trainer(name, DATA, settings, seed=seed)
        theirs = pythae_model(name, shape, seed)
        theirs.train()
        optimizer = torch.optim.AdamW(theirs.parameters(), lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY)
        stream = batches(train, BATCH, seed)

        def peer_step() -> None:
            optimizer.zero_grad(set_to_none=True)
            loss = theirs(DatasetOutput(data=next(stream))).loss
            loss.backward()
            optimizer.step()

        return trainer, theirs, peer_step

    if quick:
        rounds, calls, k, n_test, seeds = 2, 25, 50, 200, 2
    elif name == "vae":
        rounds, calls, k, n_test, seeds = 10, 200, 500, len(test), 3
    else:
        rounds, calls, k, n_test, seeds = 10, 100, 500, len(test), 3
    x = test[:n_test]

    def nlls(trainer, theirs) -> tuple[float, float]:
        trainer.model.eval()
        theirs.eval()
        return (
            importance_sampled_nll(*_genzoo_callables(trainer.model), x, k),
            importance_sampled_nll(*_pythae_callables(theirs), x, k),
        )

    def again(seed: int) -> tuple[float, float]:
        trainer, theirs, peer_step = both(seed)
        trainer.train_steps(steps)
        for _ in range(steps):
            peer_step()
        return nlls(trainer, theirs)

    trainer, theirs, peer_step = both(SEED)
    ours = trainer.model
    genzoo_name, peer_name = f"genzoo {name}", f"pythae {name.upper()}"
    rates = alternate(
        {genzoo_name: lambda: trainer.train_steps(1), peer_name: peer_step}, rounds=rounds, calls=calls
    )
    steps = rates[genzoo_name]["calls"]
    assert steps == rates[peer_name]["calls"] == trainer.step
    quality = over_seeds(nlls(trainer, theirs), again, seeds, digits=3)
    return row(
        f"pythae / {name}",
        f"train {name} (batch {BATCH}, {DATA})",
        "steps/s",
        rates,
        (genzoo_name, peer_name),
        parameters={"genzoo": parameter_count(ours), "peer": parameter_count(theirs)},
        quality={"metric": f"test NLL (nats, IS K={k}, {n_test} images)", "better": "lower", **quality},
        settings={
            "steps": steps,
            "rounds": rounds,
            "calls_per_round": calls,
            "batch_size": BATCH,
            "hidden": list(HIDDEN),
            "activation": "gelu",
            "latent_dim": LATENT,
            "dropout": DROPOUT,
            "likelihood": "bernoulli / bce",
            "optimizer": f"AdamW lr={LR} betas={BETAS} weight_decay={WEIGHT_DECAY}, constant, no warm-up",
            "kl_warmup_steps": 0,
            **({"importance_samples": IWAE_SAMPLES} if name == "iwae" else {}),
        },
        seconds={n: round(r["seconds"], 2) for n, r in rates.items()},
    )


def run(quick: bool) -> list[dict]:
    return [pair("vae", quick), pair("iwae", quick)]


if __name__ == "__main__":
    run_alone("pythae_vae", run)
