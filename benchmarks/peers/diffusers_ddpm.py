"""Hugging Face diffusers (`UNet2DModel`, `DDPMScheduler` for training, `DDIMPipeline` for sampling)
beside genzoo's `ddpm` on 8x8 digits (17 levels).

    python benchmarks/peers/diffusers_ddpm.py [--quick]

What is made equal:
- Network: genzoo's default UNet (width 32, channel_mults (1, 2), one residual block per level,
  self-attention at level 1 and in the middle, dropout 0.1, 128-d sinusoidal timestep embedding
  through a two-layer MLP, scale-and-shift conditioning of every residual block) and the diffusers
  `UNet2DModel` built to the same plan: block_out_channels (32, 64), layers_per_block 1,
  DownBlock2D + AttnDownBlock2D / AttnUpBlock2D + UpBlock2D, UNetMidBlock2D with attention, 4 heads
  of 16 channels, resnet_time_scale_shift "scale_shift", [cos, sin] embedding with freq_shift 0,
  dropout 0.1. Both unconditional: genzoo's `conditional=False` (its default class embedding and
  label dropout are off), diffusers without class embeddings.
- Data: genzoo's `digits` train split (1,000 images), mapped to [-1, 1] by genzoo's own `Rescale`
  (the preprocessing its DDPM applies); batches of 64, the peer's from a seeded permutation of the
  same tensor (`sidebyside.batches`).
- Objective: epsilon prediction, uniform t over T = 1000, MSE of the noise; the cosine schedule on
  both (diffusers' "squaredcos_cap_v2" gives genzoo's betas to 2e-8 and abar to 3e-7, float32 rounding).
  The peer's step is the diffusers training recipe (`scheduler.add_noise`, `unet(...).sample`, MSE).
- Optimizer: AdamW lr 1e-3, betas (0.9, 0.999), weight decay 0, constant lr, no warmup, gradient
  norm clipped at 1.0 on both (genzoo's default clip), no EMA on either side.
- Sampling: DDIM with 50 steps, eta 0, x0 clipped to [-1, 1] and epsilon re-derived from the clipped
  x0 (genzoo's ddim does this; diffusers with `use_clipped_model_output=True`), 256 samples per
  call, in `torch.inference_mode()`, both networks in eval mode (no dropout).

What differs, and why:
- diffusers' `Upsample2D` has a 3x3 conv after the nearest-neighbour upsampling (64 -> 64 channels,
  36,928 parameters) that genzoo's UNet does not (it interpolates only), and no UNet2DModel option
  removes it; its middle attention has no GroupNorm when resnet_time_scale_shift is "scale_shift"
  (-128). So the peer has 754,881 parameters to genzoo's 718,081 (+5.1%) and does slightly more work.
- GroupNorm groups: diffusers takes one count for all layers (16 here); genzoo picks per width
  (16 for 32 channels, 32 for 64 and more). Initialisation is each library's own (genzoo zeroes
  the last conv of every residual branch and of the output).
- DDIM timesteps: diffusers' DDIM steps from t to t - T / steps whatever the spacing, so the
  self-consistent spacing is "trailing" (999, 979, ..., 19, then x0); genzoo's are 50 evenly spaced
  from 999 down to 0 (rounded), then x0. Same number of network calls (50) per sample.

Quality after the same number of steps, by one code path for both: FID in the features of genzoo's
digits domain classifier (`domain_classifier_for`, the cached one `genzoo evaluate` uses), samples
mapped to dataset units by genzoo's `Rescale.to_data` (snapped to the 17 levels) on both sides,
against the 447 test images. The samples are the ones the sampling row timed (DDIM-50, seeded).

Budget: 301 training steps per side (1 warmup + 4 alternating rounds of 75) and 2 x 256 samples per
side (FID on those 512): about 2.5 minutes on an idle core, 6-7 minutes when the 2 cores are shared
three ways; `--quick`: 21 steps and 256 samples per side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sidebyside import alternate, batches, genzoo_trainer, parameter_count, row, run_alone

from genzoo.metrics import classifier_cache_dir, domain_classifier_for, frechet_distance

BATCH, LR, CLIP, T, SAMPLE_BATCH, DDIM_STEPS = 64, 1e-3, 1.0, 1000, 256, 50


def diffusers_unet(dropout: float = 0.1):
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        mid_block_type="UNetMidBlock2D",
        attention_head_dim=16,  # 64 channels -> 4 heads, as genzoo's SelfAttention
        norm_num_groups=16,
        resnet_time_scale_shift="scale_shift",
        flip_sin_to_cos=True,  # [cos, sin], as genzoo's sinusoidal_embedding
        freq_shift=0,
        dropout=dropout,
    )


def run(quick: bool) -> list[dict]:
    from diffusers import DDIMPipeline, DDIMScheduler, DDPMScheduler

    rounds, calls = (2, 10) if quick else (4, 75)
    steps = 1 + rounds * calls  # alternate's warmup call + the timed ones
    sample_calls = 1 if quick else 2  # calls of 256 samples each side (no warmup: the nets ran already)
    fid_n = sample_calls * SAMPLE_BATCH  # FID on the first fid_n of them

    settings = {"conditional": False, "batch_size": BATCH, "lr": LR, "betas": [0.9, 0.999], "weight_decay": 0.0,
                "lr_schedule": "constant", "warmup_steps": 0, "grad_clip": CLIP, "ema_decay": 0.0,
                "max_steps": steps, "lr_decay_steps": steps}  # fmt: skip
    trainer = genzoo_trainer("ddpm", "digits", settings)
    ours = trainer.model
    data = trainer.data
    train_x = ours.rescale.to_internal(data.split("train").tensors[0].float())  # genzoo's [-1, 1] map
    test_x = data.split("test").tensors[0].float()

    torch.manual_seed(0)
    unet = diffusers_unet(dropout=ours.config.dropout)
    noise_scheduler = DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2",
                                    prediction_type="epsilon")  # fmt: skip
    optimizer = torch.optim.AdamW(unet.parameters(), lr=LR, betas=(0.9, 0.999), weight_decay=0.0)
    stream = batches(train_x, BATCH)

    def peer_step() -> float:
        unet.train()
        x0 = next(stream)
        noise = torch.randn_like(x0)
        t = torch.randint(0, T, (len(x0),))
        noisy = noise_scheduler.add_noise(x0, noise, t)
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(unet(noisy, t).sample, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), CLIP)
        optimizer.step()
        return float(loss.detach())

    train_rates = alternate({"genzoo": lambda: trainer.train_steps(1), "diffusers": peer_step}, rounds, calls)
    assert trainer.step == train_rates["diffusers"]["calls"] == steps

    # ---- DDIM-50 sampling, timed; the same samples give the FID ------------------------------
    ddim = DDIMScheduler.from_config(noise_scheduler.config, timestep_spacing="trailing", set_alpha_to_one=True,
                                     clip_sample=True, clip_sample_range=1.0)  # fmt: skip
    pipe = DDIMPipeline(unet=unet, scheduler=ddim)
    pipe.set_progress_bar_config(disable=True)
    unet.eval()
    ours.eval()
    drawn: dict[str, list[torch.Tensor]] = {"genzoo": [], "diffusers": []}
    gen_ours, gen_peer = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)

    def ours_sample() -> None:
        with torch.inference_mode():
            drawn["genzoo"].append(
                ours.sample(SAMPLE_BATCH, generator=gen_ours, sampler="ddim", steps=DDIM_STEPS)
            )

    def peer_sample() -> None:
        with torch.inference_mode():
            images = pipe(batch_size=SAMPLE_BATCH, generator=gen_peer, num_inference_steps=DDIM_STEPS, eta=0.0,
                          use_clipped_model_output=True, output_type="pt").images  # fmt: skip
            drawn["diffusers"].append(ours.rescale.to_data(images * 2 - 1))  # [0, 1] -> [-1, 1] -> data units

    sample_rates = alternate(
        {"genzoo": ours_sample, "diffusers": peer_sample}, sample_calls, calls=1, warmup=0
    )

    classifier = domain_classifier_for(data, classifier_cache_dir())
    real = classifier.features(test_x)
    fid = {
        name: frechet_distance(classifier.features(torch.cat(parts)[:fid_n].float()), real)
        for name, parts in drawn.items()
    }
    params = {"genzoo": parameter_count(ours), "peer": parameter_count(unet)}
    common = {"parameters": params, "settings": {"batch": BATCH, "lr": LR, "grad_clip": CLIP, "ema": False,
              "schedule": "cosine (squaredcos_cap_v2)", "T": T, "conditional": False, "dropout": 0.1}}  # fmt: skip
    quality = {"metric": f"FID (digits classifier, {fid_n} DDIM-50 samples vs test)",
               "genzoo": round(fid["genzoo"], 3), "peer": round(fid["diffusers"], 3), "better": "lower"}  # fmt: skip
    return [
        row("diffusers / ddpm", f"training, batch {BATCH}, {steps} steps", "steps/s", train_rates,
            ("genzoo", "diffusers"), quality=quality, seconds={k: round(v["seconds"], 1) for k, v in
            train_rates.items()}, **common),
        row("diffusers / ddpm", f"DDIM-{DDIM_STEPS} sampling, batches of {SAMPLE_BATCH}", "samples/s",
            sample_rates, ("genzoo", "diffusers"), per_call=SAMPLE_BATCH, samples=sample_calls * SAMPLE_BATCH, note="these samples gave the training row's FID", **common),
    ]  # fmt: skip


if __name__ == "__main__":
    run_alone("diffusers_ddpm", run)
