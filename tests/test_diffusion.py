"""DDPM: the schedule's closed forms, the samplers' identities, the bound's terms, guidance and
inpainting, on tiny models; the sampler table, and DPM-Solver++ against the exact ODE of Gaussian data."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from genzoo.data import load_dataset
from genzoo.errors import GenzooError
from genzoo.models import get_model_class
from genzoo.models.diffusion import discretized_gaussian_log_prob, gaussian_kl
from genzoo.samplers import (
    SAMPLERS,
    NoiseSchedule,
    ddim_coefficients,
    ddim_sample,
    ddpm_sample,
    dpm_solver_pp_sample,
    reconstruction_guided,
)

TINY = {"channels": 8, "num_steps": 20, "channel_mults": (1, 2), "attention_levels": (1,), "dropout": 0.0}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _tiny(digits, **overrides):
    torch.manual_seed(0)
    model = get_model_class("ddpm").for_data(digits.info, **{**TINY, **overrides})
    # The UNet's output layer starts at zero (eps = 0); perturb it so the tests see a real function.
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_closed_form_q_matches_iterating_the_forward_process(kind):
    s = NoiseSchedule.make(kind, 50)
    x0 = torch.linspace(-1, 1, 7)
    mean, var = x0.double(), torch.zeros(7, dtype=torch.float64)
    for t in range(50):
        beta = s.betas[t]
        mean, var = (1 - beta).sqrt() * mean, (1 - beta) * var + beta
        m, v = s.q_mean_var(x0[None], torch.tensor([t]))
        assert torch.allclose(m[0].double(), mean, atol=1e-6) and torch.allclose(
            v[0].double(), var, atol=1e-6
        )
    assert float(s.alphas_cumprod[-1]) < 1e-3 and (s.alphas_cumprod.diff() < 0).all()


def test_posterior_coefficients_satisfy_known_identities():
    s = NoiseSchedule.make("cosine", 100)
    abar, abar_prev = s.alphas_cumprod, s.alphas_cumprod_prev
    # The posterior mean at a noiseless x_t = sqrt(abar_t) x0 is sqrt(abar_{t-1}) x0 ...
    assert torch.allclose(s.posterior_coef_x0 + s.posterior_coef_xt * abar.sqrt(), abar_prev.sqrt())
    # ... and mixing over x_t recovers q(x_{t-1}|x0)'s variance: ct^2 (1 - abar_t) + betatilde_t = 1 - abar_{t-1}.
    assert torch.allclose(s.posterior_coef_xt**2 * (1 - abar) + s.posterior_variance, 1 - abar_prev)
    assert torch.allclose(s.posterior_variance, s.betas * (1 - abar_prev) / (1 - abar))
    assert s.posterior_variance[0] == 0 and (s.posterior_variance[1:] <= s.betas[1:]).all()


def test_posterior_matches_bayes_rule_by_monte_carlo():
    s = NoiseSchedule.make("linear", 10)
    g = torch.Generator().manual_seed(0)
    x0, t = torch.full((200_000, 1), 0.5), 6
    x_prev = s.q_sample(x0, torch.full((len(x0),), t - 1), torch.randn(x0.shape, generator=g))
    beta = float(s.betas[t])
    x_t = math.sqrt(1 - beta) * x_prev + math.sqrt(beta) * torch.randn(x0.shape, generator=g)
    mean, var, _ = s.q_posterior(x0, x_t, torch.full((len(x0),), t))
    residual = x_prev - mean  # should be N(0, betatilde_t), independent of x_t
    assert residual.mean().abs() < 5e-3 and residual.var().item() == pytest.approx(var[0].item(), rel=0.02)
    assert abs(torch.corrcoef(torch.stack([residual[:, 0], x_t[:, 0]]))[0, 1]) < 0.01


def test_ddim_with_eta_1_on_all_steps_is_ddpm_with_the_posterior_variance():
    s = NoiseSchedule.make("cosine", 30)
    for t in range(1, 30):
        a, b, sigma = ddim_coefficients(s, t, t - 1, eta=1.0)
        assert sigma**2 == pytest.approx(float(s.posterior_variance[t]), rel=1e-9)
    eps_fn = lambda x, t: 0.3 * x + 0.01 * t.float().view(-1, 1, 1, 1)  # noqa: E731
    x_T = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    a = ddpm_sample(eps_fn, s, x_T, generator=torch.Generator().manual_seed(2), clip=False)
    b = ddim_sample(eps_fn, s, x_T, generator=torch.Generator().manual_seed(2), steps=30, eta=1.0, clip=False)
    assert torch.allclose(a, b, atol=1e-4)
    # eta = 0 is deterministic whatever the generator.
    c = ddim_sample(eps_fn, s, x_T, generator=torch.Generator().manual_seed(3), steps=10)
    d = ddim_sample(eps_fn, s, x_T, generator=torch.Generator().manual_seed(4), steps=10)
    assert torch.equal(c, d)


def test_timesteps_are_spread_and_end_at_the_noisiest():
    s = NoiseSchedule.make("linear", 1000)
    steps = s.timesteps(50)
    assert len(steps) == 50 and steps[0] == 0 and steps[-1] == 999 and steps == sorted(steps)
    with pytest.raises(GenzooError):
        s.timesteps(0)


def test_discretized_gaussian_is_a_distribution_over_the_levels():
    levels = 17
    grid = torch.linspace(-1, 1, levels)
    for mean, log_var in [(0.1, -3.0), (0.97, -8.0), (-2.0, 0.5), (0.3, -12.0)]:
        lp = discretized_gaussian_log_prob(
            grid, torch.full_like(grid, mean), torch.full_like(grid, log_var), levels
        )
        assert torch.isfinite(lp).all() and lp.exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def test_gaussian_kl_is_zero_for_equal_and_positive_otherwise():
    z = torch.zeros(3)
    assert torch.allclose(gaussian_kl(z, z, z, z), z)
    assert (gaussian_kl(torch.ones(3), z, z, torch.full((3,), 0.5)) > 0).all()


def test_the_bound_has_nonnegative_kl_terms_and_is_finite(digits):
    model = _tiny(digits)
    x = digits.split("test").tensors[0][:4]
    terms = model.vlb_terms(x)
    assert (
        (terms["prior"] >= 0).all() and (terms["diffusion"] >= -1e-5).all() and (terms["decoder"] >= 0).all()
    )
    assert terms["diffusion"].shape == (4, TINY["num_steps"] - 1)
    lp = model.log_prob(x)
    total = terms["prior"] + terms["diffusion"].sum(1) + terms["decoder"]
    assert torch.isfinite(lp).all() and torch.allclose(lp, -total, rtol=1e-5)
    assert torch.equal(lp, model.log_prob(x))  # seeded: repeated evaluations agree
    # A probability mass bound: never above log 1.
    assert (lp <= 0).all()


def test_guidance_zero_is_the_conditional_model_and_no_label_the_unconditional(digits):
    model = _tiny(digits)
    x = torch.randn(3, 1, 8, 8)
    t = torch.tensor([3, 7, 11])
    y = torch.tensor([1, 2, 3])
    null = torch.full((3,), 10)
    cond, uncond = model.net(x, t, y), model.net(x, t, null)
    assert torch.allclose(model.guided_eps(x, t, y, 0.0), cond)
    assert torch.allclose(model.guided_eps(x, t, None, 2.0), uncond)
    assert torch.allclose(model.guided_eps(x, t, y, 2.0), 3 * cond - 2 * uncond, atol=1e-5)
    assert not torch.allclose(cond, uncond)


def test_label_dropout_trains_the_unconditional_token(digits):
    model = _tiny(digits, label_dropout=1.0)
    x, y = digits.split("train").tensors
    model.train()
    model.loss((x[:8], y[:8]))["loss"].backward()
    grad = model.net.class_embed.weight.grad
    assert grad[10].abs().sum() > 0 and grad[:10].abs().sum() == 0


def test_reconstruction_guidance_moves_x0_by_its_formula(digits):
    # eps(x) = c x makes x0_hat(x) = k x, k = (1 - sqrt(1 - abar) c) / sqrt(abar), so
    # grad_x |keep * (k x - target)|^2 = 2 k keep (k x - target) and the guided x0 is
    # k x - w sqrt(abar) k keep (k x - target): kept pixels move towards the target, others stay.
    schedule = NoiseSchedule.make("linear", 100)
    c, w, index = 0.3, 2.0, torch.full((2,), 40)
    x, target = torch.randn(2, 1, 2, 2, dtype=torch.float64), torch.randn(2, 1, 2, 2, dtype=torch.float64)
    keep = torch.zeros(2, 1, 2, 2, dtype=torch.bool)
    keep[..., 0, :] = True
    guided = reconstruction_guided(lambda x, i: c * x, schedule, (target, keep), w)
    with torch.no_grad():  # the wrapper turns gradients on for itself, as samplers run without
        eps = guided(x, index)
    abar = schedule.alphas_cumprod[40]
    k = (1 - (1 - abar).sqrt() * c) / abar.sqrt()
    expected = k * x - w * abar.sqrt() * k * keep * (k * x - target)
    assert torch.allclose(schedule.predict_x0(x, index, eps), expected, atol=1e-10)
    with pytest.raises(GenzooError):
        _tiny(digits).inpaint(torch.zeros(1, 8, 8), torch.ones(8, 8), reconstruction=-1.0)


@pytest.mark.parametrize(
    "sampler, resample, reconstruction", [("ddpm", 1, 0.0), ("ddim", 2, 0.0), ("ddim", 1, 20.0)]
)
def test_inpainting_keeps_the_known_pixels(digits, sampler, resample, reconstruction):
    model = _tiny(digits)
    x = digits.split("test").tensors[0][:3]
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[4:] = True  # fill the bottom half
    g = torch.Generator().manual_seed(0)
    options = {"sampler": sampler, "steps": 10, "resample": resample, "reconstruction": reconstruction}
    out = model.inpaint(x, mask, generator=g, **options)
    assert out.shape == x.shape
    assert torch.equal(out[:, :, :4], x[:, :, :4])
    assert ((out >= 0) & (out <= 16) & (out == out.round())).all()
    again = model.inpaint(x, mask, generator=torch.Generator().manual_seed(0), **options)
    assert torch.equal(out, again)


def test_sampling_options(digits):
    model = _tiny(digits)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = model.sample(4, generator=g(), sampler="ddim", steps=5)
    b = model.sample(4, generator=g(), sampler="ddim", steps=5, label=[0, 1, 2, 3], guidance=1.0)
    c = model.sample(4, generator=g(), sampler="ddpm", steps=5, batch_size=3)
    assert a.shape == b.shape == c.shape == (4, 1, 8, 8) and not torch.equal(a, b)
    with pytest.raises(GenzooError):
        model.sample(2, sampler="euler")
    with pytest.raises(GenzooError):
        model.sample(2, label=10)
    with pytest.raises(GenzooError):
        model.sample(2, guidance=-1.0)


def test_a_few_training_steps_lower_the_loss(digits):
    model = _tiny(digits, num_steps=100)
    model.train()
    x, y = digits.split("train").tensors
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    torch.manual_seed(0)
    losses = []
    for i in range(40):
        rows = torch.arange(i * 32, (i + 1) * 32) % len(x)
        out = model.loss((x[rows], y[rows]))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10


# ---- the sampler table and DPM-Solver++ ---------------------------------------------------------
# Gaussian data x0 ~ N(MU, SD^2) per channel: x_t = sqrt(abar) x0 + sqrt(1 - abar) eps is Gaussian
# too, so the best noise prediction is known in closed form, E[eps | x_t] =
# sqrt(1 - abar) (x_t - sqrt(abar) MU) / (abar SD^2 + 1 - abar), and the probability-flow ODE keeps
# z = (x_t - sqrt(abar) MU) / sqrt(abar SD^2 + 1 - abar) constant: it maps x_T to MU + SD z_T.
MU = torch.tensor([0.3, -0.5, 0.0, 0.8], dtype=torch.float64).view(1, 4, 1, 1)
SD = torch.tensor([0.5, 0.1, 1.0, 0.2], dtype=torch.float64).view(1, 4, 1, 1)


def _gaussian_eps(schedule: NoiseSchedule):
    def eps_fn(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        abar = schedule.alphas_cumprod[index].view(-1, 1, 1, 1)
        return (1 - abar).sqrt() * (x - abar.sqrt() * MU) / (abar * SD**2 + 1 - abar)

    return eps_fn


def _x_T(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 4, 1, 1, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_dpm_solver_samples_gaussian_data_with_its_mean_and_std():
    schedule = NoiseSchedule.make("cosine", 1000)
    eps_fn, x_T = _gaussian_eps(schedule), _x_T(50_000, 0)

    def moments(x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x0.mean((0, 2, 3), keepdim=True), x0.std((0, 2, 3), keepdim=True)

    # Monte Carlo error on 50,000 draws: 0.45% of SD on the mean, 0.3% on the std.
    mean, std = moments(dpm_solver_pp_sample(eps_fn, schedule, x_T, steps=20, clip=False))
    assert ((mean - MU).abs() < 0.02 * SD).all() and ((std / SD - 1).abs() < 0.03).all()
    _, std = moments(ddim_sample(eps_fn, schedule, x_T, steps=20, clip=False))  # first order: far off
    assert (std / SD - 1).abs().max() > 0.1


def test_sde_dpm_solver_samples_gaussian_data_with_its_mean_and_std():
    """The stochastic solver draws from the data distribution too, and its noise comes from the generator."""
    schedule = NoiseSchedule.make("cosine", 1000)
    eps_fn, x_T = _gaussian_eps(schedule), _x_T(50_000, 0)

    def draw(seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return dpm_solver_pp_sample(
            eps_fn, schedule, x_T, generator=generator, steps=50, clip=False, stochastic=True
        )

    # An SDE solver's step error is larger than the ODE's: 50 steps put the std within 1% (20 steps: 4%).
    x0 = draw(1)
    mean, std = x0.mean((0, 2, 3), keepdim=True), x0.std((0, 2, 3), keepdim=True)
    assert ((mean - MU).abs() < 0.02 * SD).all() and ((std / SD - 1).abs() < 0.02).all()
    assert torch.equal(x0, draw(1)) and not torch.equal(x0, draw(2))
    ode = dpm_solver_pp_sample(eps_fn, schedule, x_T, steps=50, clip=False)
    assert (x0 - ode).abs().mean() > 0.05 * SD.mean()  # not the ODE's solution: the noise matters


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_dpm_solver_solves_the_probability_flow_ode_far_better_than_ddim(kind):
    schedule = NoiseSchedule.make(kind, 1000)
    eps_fn, x_T = _gaussian_eps(schedule), _x_T(500, 1)
    ode = ddim_sample(eps_fn, schedule, x_T, steps=1000, clip=False)  # DDIM eta 0 is the ODE's Euler
    abar_T = schedule.alphas_cumprod[-1]
    exact = MU + SD * (x_T - abar_T.sqrt() * MU) / (abar_T * SD**2 + 1 - abar_T).sqrt()
    assert (ode - exact).pow(2).mean().sqrt() < 0.002  # the 1000-step reference is the ODE's solution

    def error(sampler, steps: int) -> float:
        return (sampler(eps_fn, schedule, x_T, steps=steps, clip=False) - ode).pow(2).mean().sqrt().item()

    ddim, dpm = (
        {k: error(ddim_sample, k) for k in (10, 50)},
        {k: error(dpm_solver_pp_sample, k) for k in (10, 20)},
    )
    assert dpm[10] < ddim[10] / 3  # first order against second order, for the same 10 network calls
    assert dpm[20] < ddim[50]  # and more accurate than DDIM with 2.5 times the calls
    # Its grid matters: on DDIM's (uniform in the index) the last steps are far longer in log-SNR
    # than the ones before, and extrapolating over them loses the advantage.
    time_grid = dpm_solver_pp_sample(eps_fn, schedule, x_T, steps=10, clip=False, spacing="time")
    assert (time_grid - ode).pow(2).mean().sqrt() > 3 * dpm[10]


def test_log_snr_timesteps_are_distinct_and_even_in_log_snr():
    schedule = NoiseSchedule.make("cosine", 1000)
    steps = schedule.log_snr_timesteps(20)
    assert len(steps) == 20 and steps[0] == 0 and steps[-1] == 999 and steps == sorted(set(steps))
    gaps = schedule.log_snr[steps[:-1]].diff()  # the last point is T-1, below the -5 floor
    assert torch.allclose(gaps, gaps.mean(), rtol=0.25)  # up to snapping to whole indices
    assert schedule.log_snr_timesteps(1000) == list(range(1000)) and schedule.log_snr_timesteps(1) == [999]
    with pytest.raises(GenzooError):
        schedule.log_snr_timesteps(1001)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_in_the_table_has_the_one_signature_and_samples(digits, name):
    spec = SAMPLERS[name]
    accepted = inspect.signature(spec.fn).parameters
    assert spec.name == name and {"generator", "steps", "clip", *spec.options} <= accepted.keys()
    schedule = NoiseSchedule.make("cosine", 20)
    x = spec.fn(
        _gaussian_eps(schedule), schedule, _x_T(3, 0), generator=torch.Generator(), steps=4, clip=True
    )
    assert x.shape == (3, 4, 1, 1) and torch.isfinite(x).all()
    model = _tiny(digits)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = model.sample(3, generator=g(), sampler=name, steps=4)
    assert a.shape == (3, 1, 8, 8) and torch.equal(a, model.sample(3, generator=g(), sampler=name, steps=4))
    assert ((a >= 0) & (a <= 16) & (a == a.round())).all()


def test_sampler_options_are_checked_against_the_table(digits):
    model = _tiny(digits)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    for eta in (0.0, 0.5):
        with pytest.raises(
            GenzooError, match=r"dpm-solver\+\+ sampler does not take eta=.* applies to: ddim"
        ):
            model.sample(2, sampler="dpm-solver++", eta=eta)
    with pytest.raises(GenzooError, match="ddpm sampler does not take eta=0.5"):
        model.sample(2, sampler="ddpm", eta=0.5)
    # Scripts written before the table pass eta 0 or 1 to ddpm: still the plain ddpm sampler.
    plain = model.sample(2, generator=g(), sampler="ddpm", steps=4)
    assert torch.equal(plain, model.sample(2, generator=g(), sampler="ddpm", steps=4, eta=1.0))
    with pytest.raises(
        GenzooError, match=r"unknown sampler 'nope'; choose one of: ddpm, ddim, dpm-solver\+\+"
    ):
        model.sample(2, sampler="nope")
    x, mask = digits.split("test").tensors[0][:2], torch.ones(8, 8, dtype=torch.bool)
    with pytest.raises(GenzooError, match=r"dpm-solver\+\+ sampler cannot inpaint; use one of: ddpm, ddim"):
        model.inpaint(x, mask, sampler="dpm-solver++")
    # The default sampler and its steps come from the config (20 steps for dpm-solver++).
    default = _tiny(digits, sampler="dpm-solver++").sample(2, generator=g())
    assert torch.equal(default, model.sample(2, generator=g(), sampler="dpm-solver++", steps=20))
    with pytest.raises(GenzooError, match="unknown sampler"):
        _tiny(digits, sampler="nope")


def test_cli_samples_with_dpm_solver(ddpm_run, tmp_path, capsys):
    import numpy as np

    from genzoo.cli import main

    def sample(name: str, *extra: str) -> tuple[int, str]:
        argv = ["sample", str(ddpm_run), "-n", "6", "--out", str(tmp_path / f"{name}.npy")]
        code = main([*argv, "--sampler", "dpm-solver++", "--steps", "10", *extra])
        return code, capsys.readouterr().err

    assert sample("a")[0] == 0 and sample("b")[0] == 0 and sample("c", "--seed", "1")[0] == 0
    a, b, c = (np.load(tmp_path / f"{name}.npy") for name in "abc")
    assert a.shape == (6, 1, 8, 8) and np.array_equal(a, b) and not np.array_equal(a, c)
    for argv, fragment in (
        (["--eta", "0.5"], "dpm-solver++ sampler does not take eta=0.5"),
        (["--sampler", "nope"], "unknown sampler 'nope'; choose one of: ddpm, ddim, dpm-solver++"),
    ):
        code, err = sample("d", *argv)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and fragment in lines[0] and "Traceback" not in err, err
    code = main(
        ["inpaint", str(ddpm_run), "--split", "test", "-n", "2", "--mask", "bottom-half"]
        + ["--out", str(tmp_path / "f.npy"), "--sampler", "dpm-solver++"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "cannot inpaint; use one of: ddpm, ddim" in err
