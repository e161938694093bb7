"""genzoo's normalizing flows side by side with zuko 1.6 and normflows 1.7: MAF on a 2-d toy
(`toy2d-moons`) and on `digits` (8x8, 17 levels, flattened to 64-d), RealNVP (multi-scale) on `digits`.

What is compared, per pair: optimizer steps per second on the same batches, the test NLL both reach
after the same number of steps, and samples per second (1000 samples, `torch.inference_mode`).

Data, split and preprocessing. genzoo's own datasets and splits (`load_dataset(NAME).split(...)`).
Both networks model the same input h, made by genzoo's fixed preprocessing (its model's `_to_unit`
and `LogitTransform`, no parameters): toy points are rescaled from [-4, 4] to [-1, 1] (genzoo's MAF on
continuous vectors); digits are dequantised as genzoo dequantises them, v = (k + u) / 17 with u
~ U[0, 1) from the global stream at every step, then h = logit(0.05 + 0.9 v). The peer's step runs the
same preprocessing and then its own loss (`-flow().log_prob(h).mean()` for zuko, `forward_kld(h)`
for normflows). Batches: genzoo's Trainer batches; the peer draws the same batches (the same
per-epoch seeded permutations of the same training tensor, the short last batch included).

Optimizer. AdamW, lr 1e-3, betas (0.9, 0.999), weight decay 0 (genzoo's MAF default is 1e-5 and
RealNVP's 5e-5, but genzoo exempts 1-d tensors from decay, a split the peers do not make: 0 keeps
the two optimizers identical), gradient-norm clip 10 on both (genzoo's default), constant lr, no
warm-up, no EMA. Batch 128 for MAF, 64 for RealNVP (genzoo's defaults).

Quality, one code path for both (`test_nll`): the test split, each side's log-density of the flow
input space v, turned into nats per example by the same lines. For the toy that is log p(x) =
log p(v) + log |dv/dx| (the exact density in dataset units); for digits the uniform-dequantisation
bound -log P(x) <= -log p(v) + D log 17 with one fixed-seed noise draw shared by both sides
(genzoo's `log_prob` estimator; the genzoo side is checked equal to `model.log_prob`). The peer's
log p(v) is its own `log_prob(logit(v))` plus the logit's log-Jacobian. Over three seeds (network
initialisation, batches, dequantisation noise): the timed run is seed 0, seeds 1 and 2 train both
sides again for the same steps untimed; the table gives the mean and standard deviation.

Architectures and what differs:

- zuko / maf: `zuko.flows.MAF(D, transforms=5, hidden_features=(128, 128))` against genzoo `maf`
  (5 MADE layers, hidden (128, 128), relu, orders alternating natural/reversed, as zuko's) with
  `actnorm=False`, since zuko's MAF has no ActNorm. Same layer shapes, the same parameter count.
  Differences: the scale (genzoo 1e-3 + 2 sigmoid(a) (1 - 1e-3), in (1e-3, 2); zuko exp of
  a / (1 + |a / log 1e-3|)) and the output layer's initialisation (genzoo zero, so every layer starts
  as the identity; zuko default). Because genzoo's bounded scale leaves each dimension's overall
  scale to ActNorm, the rows also give genzoo's MAF with its default `actnorm=True` (4 D more
  parameters), trained alone for the same seeds and steps (`quality.genzoo_alone`).
- normflows / maf: `nf.flows.MaskedAffineAutoregressive(D, 128, num_blocks=1,
  use_residual_blocks=False)` x 5 with `nf.flows.ActNorm` between them (genzoo's default
  `actnorm=True` kept) and a reversing `nf.flows.Permute` between layers (genzoo reverses the MADE
  order instead; the same family of maps), base `DiagGaussian(trainable=False)` as genzoo's N(0, I).
  That MADE has genzoo's three layer shapes (D->128, 128->128, 128->2D), hence the same count, but
  no nonlinearity between its first two layers (nflows' block order); the default residual MADE
  (num_blocks=2) would be 40-90% larger. Its scale is sigmoid(a + 2) + 1e-3, in (1e-3, 1.001) (genzoo's
  in (1e-3, 2), 1 at the start); both add the shift after the scale.
  normflows' `MaskedAffineAutoregressive` is the nflows transform whose one-pass direction is
  `forward`, while `NormalizingFlow.log_prob` calls `inverse` (D sequential MADE passes, an IAF in
  effect). Used as shipped, a MAF therefore trains D times slower; we wrap it the way normflows wraps
  its own autoregressive spline (`AutoregressiveRationalQuadraticSpline`: forward = inverse and back),
  so density is one pass and sampling D passes, as in genzoo and zuko. The stock orientation's
  training rate on digits is measured for a few steps and recorded in the row's notes.
- normflows / realnvp: normflows' multi-scale building blocks arranged as genzoo's `realnvp`
  (n_scales 2, couplings 3, hidden 64, depth 2): scale 1 has 3 checkerboard couplings, a squeeze,
  3 channel couplings (alternating halves), then half the channels factored out (`MultiscaleFlow`
  with `Merge("channel_inv")`, as genzoo keeps the second half); scale 2 has 4 checkerboard couplings;
  `nf.flows.ActNorm` after every coupling; fixed N(0, I) priors. Each coupling net is
  `nf.nets.ConvNet2d` with genzoo's convolutions (3x3, then depth x (3x3, 1x1), then a zero-initialised
  3x3, width 64) but without genzoo's residual connections (ConvNet2d has none). Other differences:
  normflows' checkerboard coupling packs the conditioning pixels into a half-width image (C channels),
  genzoo masks the full image and feeds the mask as an extra channel (C + 1 input channels); the scale
  is exp(s) unbounded ('exp', RealNVP's; normflows' 'sigmoid' would not start at the identity), genzoo
  uses a learned per-channel bound, scale * tanh(s). Counts differ by the mask channels and the bounds.
"""

from __future__ import annotations

import normflows as nf
import torch
import zuko
from sidebyside import alternate, batches, genzoo_trainer, over_seeds, parameter_count, row, run_alone, spread

from genzoo.data import load_dataset
from genzoo.metrics.likelihood import discrete_nll_from_density
from genzoo.nn.likelihoods import uniform

OPTIM = {
    "lr": 1e-3,
    "betas": (0.9, 0.999),
    "weight_decay": 0.0,
    "grad_clip": 10.0,
    "lr_schedule": "constant",
    "warmup_steps": 0,
    "ema_decay": 0.0,
}
SAMPLES = 1000
EVAL_SEED = 0

# (rounds, calls per round) of training steps: 1 warm-up step + rounds * calls in all.
# (rounds, calls) of training steps, and of 1000-sample draws (a toy draw takes ~10 ms: many a round).
# Quality over `seeds` seeds: the timed run and untimed reruns of the same steps.
FULL = {"maf_toy": (4, 75), "maf_digits": (4, 75), "realnvp": (4, 30), "seeds": 3,
        "sample": {"maf_toy": (6, 10), "maf_digits": (4, 1), "realnvp": (4, 1)}}  # fmt: skip
QUICK = {"maf_toy": (2, 10), "maf_digits": (2, 10), "realnvp": (2, 5), "seeds": 2,
         "sample": {"maf_toy": (2, 3), "maf_digits": (1, 1), "realnvp": (1, 1)}}  # fmt: skip


# ---- the fixed preprocessing and the one NLL estimator ---------------------------------------------
def flow_input(gz, x: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
    """Dataset units -> h, what both networks model (genzoo's rescale or dequantise + logit)."""
    v, _ = gz._to_unit(x, u)
    v = v.reshape(len(v), *gz._flow_shape())
    return gz.logit(v)[0] if gz.use_logit else v


def peer_log_density(gz, peer_log_prob):
    """log p(v) in the flow's input space from a peer's log p(h): h = logit(v) plus its Jacobian."""

    def density(v: torch.Tensor) -> torch.Tensor:
        v = v.reshape(len(v), *gz._flow_shape())
        if not gz.use_logit:
            return peer_log_prob(v)
        h, logdet = gz.logit(v)
        return peer_log_prob(h) + logdet

    return density


def genzoo_log_density(gz):
    return lambda v: gz._log_density_unit(v)[0]


@torch.no_grad()
def test_nll(gz, density, x: torch.Tensor, batch: int = 500) -> float:
    """Mean test NLL in nats per example, the same lines for both sides: one fixed-seed
    dequantisation draw (discrete data), each side's log p(v), then genzoo's conversion to
    dataset units (the dequantisation bound, or the rescale's Jacobian)."""
    x = gz._check(x)
    u = None
    if gz.discrete:
        u = uniform(tuple(x.shape), torch.Generator().manual_seed(EVAL_SEED), x.device).to(x.dtype)
    total = 0.0
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        v, log_jac = gz._to_unit(xb, None if u is None else u[i : i + batch])
        log_pv = density(v)
        if gz.discrete:
            log_px = -discrete_nll_from_density(log_pv, gz.numel, 1.0 / int(gz.config.data_levels))
        else:
            log_px = log_pv + log_jac
        total += float(log_px.double().sum())
    return -total / len(x)


def genzoo_nll(gz, x: torch.Tensor) -> float:
    with gz.inference():
        nll = test_nll(gz, genzoo_log_density(gz), x)
        check = -float(gz.log_prob(x).detach().double().mean())  # genzoo's own estimator agrees
    assert abs(nll - check) < 1e-3 * max(1.0, abs(check)), (nll, check)
    return nll


def peer_nll(gz, module, log_prob, x: torch.Tensor) -> float:
    module.eval()
    nll = test_nll(gz, peer_log_density(gz, log_prob), x)
    module.train()
    return nll


# ---- the peer's training step ----------------------------------------------------------------------
class PeerSteps:
    """One optimizer step of the peer: genzoo's batches (the same seeded permutations), the same
    dequantisation and preprocessing, then the peer's own loss, AdamW and clipping as genzoo's."""

    def __init__(self, gz, train_x: torch.Tensor, batch_size: int, module: torch.nn.Module, loss, seed=0):
        self.gz, self.x, self.batch_size, self.module, self.loss, self.seed = (
            gz,
            train_x,
            batch_size,
            module,
            loss,
            seed,
        )
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(
            self.params, lr=OPTIM["lr"], betas=OPTIM["betas"], weight_decay=OPTIM["weight_decay"]
        )
        self.stream = batches(train_x, batch_size, seed)

    def __call__(self) -> None:
        x = next(self.stream)
        u = torch.rand_like(x) if self.gz.discrete else None
        h = flow_input(self.gz, x, u)
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(h)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, OPTIM["grad_clip"])
        self.opt.step()


# ---- peer networks ---------------------------------------------------------------------------------
def zuko_maf(dim: int):
    flow = zuko.flows.MAF(dim, transforms=5, hidden_features=(128, 128))
    return (
        flow,
        (lambda h: -flow().log_prob(h).mean()),
        (lambda h: flow().log_prob(h)),
        (lambda n: flow().sample((n,))),
    )


class DensityFirst(nf.flows.Flow):
    """An nflows-style autoregressive transform turned round for `NormalizingFlow`, whose `inverse`
    is the density direction: as normflows' own `AutoregressiveRationalQuadraticSpline` does."""

    def __init__(self, transform: nf.flows.Flow):
        super().__init__()
        self.transform = transform

    def forward(self, z):
        z, log_det = self.transform.inverse(z)
        return z, log_det.view(-1)

    def inverse(self, z):
        z, log_det = self.transform(z)
        return z, log_det.view(-1)


def _reverse(dim: int) -> nf.flows.Permute:
    permute = nf.flows.Permute(dim, mode="shuffle")
    permute.perm.copy_(torch.arange(dim).flip(0))
    permute.inv_perm.copy_(torch.arange(dim).flip(0))
    return permute


def normflows_maf(dim: int, layers: int = 5, actnorm: bool = True, stock: bool = False):
    density_order: list[nf.flows.Flow] = []  # data -> latent, as genzoo lists its layers
    for i in range(layers):
        made = nf.flows.MaskedAffineAutoregressive(dim, 128, num_blocks=1, use_residual_blocks=False)
        density_order.append(made if stock else DensityFirst(made))
        if i < layers - 1:
            if actnorm:
                density_order.append(nf.flows.ActNorm((dim,)))
            density_order.append(_reverse(dim))
    model = nf.NormalizingFlow(nf.distributions.DiagGaussian(dim, trainable=False), density_order[::-1])
    return model, model.forward_kld, model.log_prob, (lambda n: model.sample(n)[0])


def normflows_realnvp(shape: tuple[int, int, int], couplings: int = 3, hidden: int = 64, depth: int = 2):
    """genzoo's realnvp with n_scales=2 out of normflows blocks (see the module docstring)."""
    c, h, w = shape
    kernels = [3] + [3, 1] * depth + [3]

    def coupling(channels: int, mode: str) -> list[nf.flows.Flow]:
        # checkerboard: the net sees the conditioning pixels packed into a half-width image (all
        # channels); channel: it sees half the channels and sets the other half's shift and scale.
        half = channels if "checkerboard" in mode else channels // 2
        net = nf.nets.ConvNet2d([half] + [hidden] * (2 * depth + 1) + [2 * half], kernels)
        block = nf.flows.AffineCouplingBlock(net, scale=True, scale_map="exp", split_mode=mode)
        return [block, nf.flows.ActNorm((channels, 1, 1))]

    scale1: list[nf.flows.Flow] = []  # density order
    for i in range(couplings):
        scale1 += coupling(c, "checkerboard" if i % 2 == 0 else "checkerboard_inv")
    scale1.append(nf.flows.Squeeze())  # its inverse squeezes: used in the density direction
    for i in range(couplings):
        scale1 += coupling(4 * c, "channel" if i % 2 == 0 else "channel_inv")
    scale2: list[nf.flows.Flow] = []
    for i in range(couplings + 1):
        scale2 += coupling(2 * c, "checkerboard" if i % 2 == 0 else "checkerboard_inv")
    latent = (2 * c, h // 2, w // 2)
    q0 = [nf.distributions.DiagGaussian(latent, trainable=False) for _ in range(2)]
    # MultiscaleFlow lists levels and flows in the sampling direction: the deepest level first.
    model = nf.MultiscaleFlow(
        q0, [scale2[::-1], scale1[::-1]], [nf.flows.Merge("channel_inv")], class_cond=False
    )
    return model, model.forward_kld, (lambda x: model.log_prob(x, None)), (lambda n: model.sample(n)[0])


# ---- one pair ----------------------------------------------------------------------------------------
def sample_decoded(gz, draw):
    """The peer's samples taken back to dataset units by genzoo's fixed maps (as genzoo's `sample`)."""

    def work(n: int = SAMPLES) -> torch.Tensor:
        h = draw(n)
        if gz.use_logit:
            h = gz.logit.inverse(h)
        return gz._from_unit(h.reshape(n, *gz.shape))

    return work


def compare(
    pair: str,
    gz_model: str,
    data: str,
    settings: dict,
    build,
    schedule: tuple[int, int],
    sample_plan: tuple[int, int],
    seeds: int,
    notes: str = "",
    extra=None,
    genzoo_alone: dict | None = None,
) -> list[dict]:
    """The pair's rows. `genzoo_alone`: genzoo settings whose quality is also measured, genzoo only,
    with the same seeds and steps (its own defaults where the pair had to turn them off)."""
    dataset = load_dataset(data)
    train_x = dataset.split("train").tensors[0].to(torch.float32)
    test_x = dataset.split("test").tensors[0]

    def both(seed: int):
        """genzoo's trainer and the peer's network and steps, each initialised from `seed`."""
        torch.manual_seed(seed)
        trainer = genzoo_trainer(gz_model, data, {**OPTIM, **settings}, seed=seed)
        torch.manual_seed(seed)
        module, loss, log_prob, draw = build(trainer.model)
        peer = PeerSteps(trainer.model, train_x, trainer.config.batch_size, module, loss, seed=seed)
        torch.manual_seed(seed)
        return trainer, module, log_prob, draw, peer

    def nlls(trainer, module, log_prob) -> tuple[float, float]:
        return genzoo_nll(trainer.model, test_x), peer_nll(trainer.model, module, log_prob, test_x)

    def again(seed: int) -> tuple[float, float]:
        trainer, module, log_prob, _, peer = both(seed)
        trainer.train_steps(steps)
        for _ in range(steps):
            peer()
        return nlls(trainer, module, log_prob)

    trainer, module, log_prob, draw, peer = both(0)
    gz = trainer.model
    counts = {"genzoo": parameter_count(gz), "peer": parameter_count(module)}
    peer_name = pair.split(" / ")[0]
    rounds, calls = schedule
    rates = alternate({"genzoo": lambda: trainer.train_steps(1), peer_name: peer}, rounds, calls)
    steps = rates["genzoo"]["calls"]
    assert trainer.step == steps == rates[peer_name]["calls"]
    quality = {
        "metric": "test NLL, nats/example" + (" (dequantisation bound)" if gz.discrete else ""),
        "better": "lower",
        **over_seeds(nlls(trainer, module, log_prob), again, seeds),
    }
    if genzoo_alone:
        alone = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            other = genzoo_trainer(gz_model, data, {**OPTIM, **settings, **genzoo_alone}, seed=seed)
            other.train_steps(steps)
            alone.append(genzoo_nll(other.model, test_x))
        quality["genzoo_alone"] = {"settings": genzoo_alone, **spread(alone)}
    settings_text = {
        "data": data,
        "batch_size": trainer.config.batch_size,
        "steps": steps,
        **OPTIM,
        **settings,
    }
    names = ("genzoo", peer_name)
    rows = [
        row(
            pair,
            f"train {data} (steps/s)",
            "steps/s",
            rates,
            names,
            parameters=counts,
            quality=quality,
            settings=settings_text,
            notes=notes,
            **(extra(gz) if extra else {}),
        )
    ]
    peer_sample = sample_decoded(gz, draw)
    module.eval()

    def gz_sample():
        with torch.inference_mode():
            return gz.sample(SAMPLES)

    def peer_sample_work():
        with torch.inference_mode():
            return peer_sample()

    srates = alternate({"genzoo": gz_sample, peer_name: peer_sample_work}, *sample_plan)
    rows.append(
        row(
            pair, f"sample {data} ({SAMPLES} samples)", "samples/s", srates, names, SAMPLES, parameters=counts
        )
    )
    for r in rows:
        print(
            f"{r['pair']:22s} {r['task']:38s} {r['genzoo']:10.4g} {r['peer']:10.4g} ratio {r['ratio']:.2f}",
            flush=True,
        )
    return rows


def stock_normflows_maf_rate(gz, steps: int = 3) -> dict:
    """normflows' MaskedAffineAutoregressive as shipped (density = D sequential MADE passes)."""
    import time

    torch.manual_seed(0)
    module, loss, _, _ = normflows_maf(gz.numel, stock=True)
    x = load_dataset("digits").split("train").tensors[0][:128]
    steps_fn = PeerSteps(gz, x.to(torch.float32), 128, module, loss)
    steps_fn()
    start = time.perf_counter()
    for _ in range(steps):
        steps_fn()
    return {"stock_orientation_steps_per_s": round(steps / (time.perf_counter() - start), 3)}


def run(quick: bool) -> list[dict]:
    plan = QUICK if quick else FULL
    rows: list[dict] = []
    stock_rate = lambda gz: stock_normflows_maf_rate(gz, 1 if quick else 3)  # noqa: E731
    mafs = [  # pair, genzoo settings, peer network, notes, extra figures (digits only)
        ("zuko / maf", {"actnorm": False}, zuko_maf,
         "genzoo actnorm=False (zuko's MAF has none); see the module docstring", None, {"actnorm": True}),
        ("normflows / maf", {"actnorm": True}, normflows_maf,
         "normflows' MAF turned to one-pass density (DensityFirst); see the module docstring", stock_rate,
         None),
    ]  # fmt: skip
    for pair, settings, network, notes, extra, alone in mafs:
        for data, key in (("toy2d-moons", "maf_toy"), ("digits", "maf_digits")):
            rows += compare(
                pair,
                "maf",
                data,
                settings,
                lambda gz, network=network: network(gz.numel),
                plan[key],
                plan["sample"][key],
                plan["seeds"],
                notes=notes,
                extra=extra if data == "digits" else None,
                genzoo_alone=alone,
            )
    rows += compare(
        "normflows / realnvp",
        "realnvp",
        "digits",
        {},
        lambda gz: normflows_realnvp(gz.shape),
        plan["realnvp"],
        plan["sample"]["realnvp"],
        plan["seeds"],
        notes="ConvNet2d has no residual connections; half-width checkerboard; exp scale; see the docstring",
        extra=lambda gz: {
            "profile": "torch.profiler, 5 training steps / 2 x 1000 samples, one thread: the same 300 / 120 "
            "convolutions take 2.1x / 2.0x the self CPU time in genzoo (mkldnn_convolution 695 vs 327 ms; "
            "4.14 vs 2.10 s sampling): its checkerboard couplings convolve all H x W pixels (the RealNVP "
            "paper's masking), normflows packs the conditioning half into H x W/2. Same parameters, "
            "~1.7x the convolution positions (3 x 64 + 4 x 16 + 3 x 16 vs 3 x 32 + 4 x 8 + 3 x 16)."
        },
    )
    return rows


if __name__ == "__main__":
    run_alone("flows_maf_realnvp", run)
