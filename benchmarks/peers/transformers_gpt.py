"""genzoo's gpt against Hugging Face transformers' GPT2LMHeadModel: training and cached generation.

What is compared: genzoo's default `gpt` size (block_size 64, 4 layers, 4 heads, width 64, dropout 0)
and a `GPT2LMHeadModel` built from a `GPT2Config` of the same size (n_positions 64, n_embd 64,
n_layer 4, n_head 4, every dropout 0, the token embedding tied to the output layer as genzoo ties
it, GELU exact as genzoo's MLP uses (GPT-2's default is the tanh approximation), LayerNorm eps 1e-5
on both), with `attn_implementation="sdpa"` (`F.scaled_dot_product_attention`, the same kernel
genzoo's attention calls).

How the sides are made equal:
- Network: GPT-2 always has biases in its Linear (Conv1D) and LayerNorm layers; genzoo's default
  is `bias=False` (nanoGPT's train.py), but its `bias` setting can be True, so genzoo is set to
  `bias=True` here and the two networks have exactly the same parameters (208,320; genzoo's default
  without biases has 205,440, 1.4% fewer). Same initialisation scheme (normal 0.02, residual
  projections scaled by 1/sqrt(2 n_layer)), drawn from different generators.
- Data: tiny Shakespeare through `genzoo.data.load_dataset("shakespeare")`: character tokens (the
  alphabet of the whole file, 65 tokens), first 90% train, last 10% val, the train stream cut into
  rows of 1025 tokens overlapping by half. Both sides see the same rows in the same order (genzoo's
  Trainer draws a permutation per epoch from a generator seeded by (seed, epoch); the peer draws its
  rows with the same seeded permutation), each row cropped to a random window of 65 tokens
  (64 inputs, 64 next-token targets) as genzoo's `GPT.loss` does; the offsets come from different
  seeded generators.
- Optimizer: AdamW, lr 6e-3 (genzoo's gpt default), betas (0.9, 0.99) (genzoo's), weight decay 0 on
  both (genzoo decays only matrices, not embeddings, biases or gains: with weight decay 0 the groups
  do not matter), constant lr, no warmup, gradient norm clipped to 1 on both, no EMA, fp32,
  batch 32. genzoo's step is its Trainer's (`train_steps(1)`); the peer's is a closure around the
  model's own forward and loss (`labels=` with `shift_labels=` the 64 next tokens, so HF's
  `ForCausalLMLoss` scores the same 64 targets as genzoo), `use_cache=False` while training (the
  config's default `use_cache=True` would build a key/value cache in every training forward).
- Steps: both sides train the same number of steps (the calls `alternate` made, warm-up included).

Quality: validation loss in nats per token after the same steps, by one function for both
(`val_loss`: cross-entropy of each model's logits): the val stream cut into consecutive windows of
65 tokens (every val token predicted once with 1 to 64 tokens of context, as genzoo's `log_prob`).
Over three seeds: the timed run is seed 0; seeds 1 and 2 (initial weights, batches, windows) train
both sides again for the same steps, untimed; the table gives the mean and standard deviation.

Generation: from the same 1-token prompt ("\\n", as `GPT.sample` starts without a prompt), 16 sequences of
63 new tokens each, sampled at temperature 1 with no top-k/top-p, key/value cache on, in
`torch.inference_mode()`, with the trained models. 63 new tokens keep the text within the 64
positions GPT-2 has (`n_positions`); genzoo's `generate` would go on past block_size by jumping its
window forward and rebuilding the cache, which HF's position table cannot do, so that part is not
compared. genzoo's side is `GPT.generate` (ids in, ids out, as HF's `generate`), not `GPT.sample`,
which also decodes the text token by token. HF: `generate(do_sample=True, top_k=0, use_cache=True,
max_new_tokens=63)` with no end-of-text token, so both always emit exactly 63 tokens.

    python benchmarks/peers/transformers_gpt.py [--quick]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sidebyside import alternate, batches, genzoo_trainer, over_seeds, parameter_count, row, run_alone

PAIR = "transformers / gpt"
NAMES = ("genzoo gpt", "transformers GPT2LMHeadModel")
SETTINGS = {
    "lr": 6e-3,
    "batch_size": 32,
    "betas": (0.9, 0.99),
    "weight_decay": 0.0,
    "lr_schedule": "constant",
    "warmup_steps": 0,
    "grad_clip": 1.0,
    "ema_decay": 0.0,
    "bias": True,  # GPT-2 cannot drop its biases; genzoo can keep them
}
GEN_BATCH = 16
GEN_TOKENS = 63  # a 1-token prompt + 63 new tokens = the 64 positions both models have


def build_peer(model, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.config
    config = GPT2Config(
        vocab_size=model.vocab_size,
        n_positions=c.block_size,
        n_embd=c.n_embd,
        n_layer=c.n_layer,
        n_head=c.n_head,
        resid_pdrop=c.dropout,
        embd_pdrop=c.dropout,
        attn_pdrop=c.dropout,
        activation_function="gelu",  # genzoo's MLP: exact GELU
        layer_norm_epsilon=1e-5,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
    )
    torch.manual_seed(seed)
    peer = GPT2LMHeadModel._from_config(config, attn_implementation="sdpa")
    peer.loss_type = "ForCausalLM"  # what it falls back to anyway, without a warning
    return peer


def peer_trainer(peer, train: torch.Tensor, block_size: int, seed: int = 0):
    """The peer's optimizer step as a closure: same rows as genzoo, random windows of block_size + 1."""
    optimizer = torch.optim.AdamW(
        peer.parameters(), lr=SETTINGS["lr"], betas=SETTINGS["betas"], weight_decay=SETTINGS["weight_decay"]
    )
    offsets = torch.Generator().manual_seed(1 + seed)
    span = block_size + 1
    stream = batches(train, SETTINGS["batch_size"], seed)
    state = {"step": 0}

    def step() -> float:
        peer.train()
        rows = next(stream).long()
        start = torch.randint(rows.shape[1] - span + 1, (len(rows), 1), generator=offsets)
        windows = rows.gather(1, start + torch.arange(span))
        targets = windows[:, 1:].contiguous()
        optimizer.zero_grad(set_to_none=True)
        loss = peer(input_ids=windows[:, :-1], labels=targets, shift_labels=targets, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(peer.parameters(), SETTINGS["grad_clip"])
        optimizer.step()
        state["step"] += 1
        return float(loss.detach())

    return step


@torch.inference_mode()
def val_loss(logits_of, stream: torch.Tensor, block_size: int, windows: int | None = None) -> float:
    """Mean next-token cross-entropy (nats/token) over consecutive windows of block_size + 1 tokens
    of the val stream (the first `windows` of them, or all): one estimator for both models."""
    span = block_size + 1
    count = (len(stream) - 1) // block_size
    if windows is not None:
        count = min(count, windows)
    x = torch.stack([stream[i * block_size : i * block_size + span] for i in range(count)]).long()
    total = 0.0
    for chunk in x.split(128):
        logits = logits_of(chunk[:, :-1])
        total += float(F.cross_entropy(logits.flatten(0, 1).float(), chunk[:, 1:].flatten(), reduction="sum"))
    return total / (count * block_size)


def run(quick: bool) -> list[dict]:
    import transformers

    trainer = genzoo_trainer("gpt", "shakespeare", SETTINGS)
    model = trainer.model
    size = model.config.block_size
    peer = build_peer(model)
    train = trainer.train_set.tensors[0]
    val = trainer.data.streams["val"]
    params = {"genzoo": parameter_count(model), "peer": parameter_count(peer)}
    windows = 64 if quick else None

    def losses(trainer, peer) -> tuple[float, float]:
        trainer.model.eval()
        peer.eval()
        return (
            val_loss(trainer.model, val, size, windows),
            val_loss(lambda x: peer(input_ids=x, use_cache=False).logits, val, size, windows),
        )

    def again(seed: int) -> tuple[float, float]:
        """Both sides trained again from `seed` for the same steps, untimed."""
        other = genzoo_trainer("gpt", "shakespeare", SETTINGS, seed=seed)
        other_peer = build_peer(other.model, seed)
        other.train_steps(trainer.step)
        peer_step = peer_trainer(other_peer, train, size, seed)
        for _ in range(trainer.step):
            peer_step()
        return losses(other, other_peer)

    # (1) training: tokens per second, then val loss after the same number of steps (over seeds).
    rounds, calls, seeds = (2, 5, 2) if quick else (10, 60, 3)
    work = {NAMES[0]: lambda: trainer.train_steps(1), NAMES[1]: peer_trainer(peer, train, size)}
    rates = alternate(work, rounds=rounds, calls=calls, warmup=2)
    steps = {n: r["calls"] for n, r in rates.items()}
    assert steps[NAMES[0]] == steps[NAMES[1]] == trainer.step
    quality = {
        "metric": "val loss (nats/token)",
        "better": "lower",
        **over_seeds(losses(trainer, peer), again, seeds),
    }
    tokens = SETTINGS["batch_size"] * size
    rows = [
        row(
            PAIR,
            "training",
            "tokens/s",
            rates,
            NAMES,
            tokens,
            parameters=params,
            quality=quality,
            steps=trainer.step,
            settings={
                **SETTINGS,
                "tokens_per_step": f"{SETTINGS['batch_size']} x {size}",
                "genzoo_default_bias_false_parameters": 205_440,
                "attn_implementation": peer.config._attn_implementation,
                "transformers": transformers.__version__,
            },
        )
    ]

    # (2) generation with the key/value cache: 16 sequences x 63 new tokens from "\n".
    newline = trainer.data.tokenizer.encode("\n")[0]
    prompt = torch.full((GEN_BATCH, 1), newline, dtype=torch.long)
    ones = torch.ones_like(prompt)

    def genzoo_generate() -> torch.Tensor:
        with torch.inference_mode():
            out = model.generate(prompt, GEN_TOKENS, temperature=1.0, kv_cache=True)
        assert out.shape == (GEN_BATCH, 1 + GEN_TOKENS)
        return out

    def peer_generate() -> torch.Tensor:
        with torch.inference_mode():
            out = peer.generate(
                prompt,
                attention_mask=ones,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=GEN_TOKENS,
                use_cache=True,
            )
        assert out.shape == (GEN_BATCH, 1 + GEN_TOKENS)
        return out

    rounds, calls = (2, 2) if quick else (8, 8)
    gen = alternate({NAMES[0]: genzoo_generate, NAMES[1]: peer_generate}, rounds=rounds, calls=calls)
    rows.append(
        row(
            PAIR,
            f"generation ({GEN_BATCH} x {GEN_TOKENS} new tokens, kv cache)",
            "tokens/s",
            gen,
            NAMES,
            GEN_BATCH * GEN_TOKENS,
            parameters=params,
            settings={"batch": GEN_BATCH, "new_tokens": GEN_TOKENS, "prompt": "\\n", "temperature": 1.0},
            samples={
                NAMES[0]: trainer.data.tokenizer.decode(genzoo_generate()[0].tolist()),
                NAMES[1]: trainer.data.tokenizer.decode(peer_generate()[0].tolist()),
            },
        )
    )
    return rows


if __name__ == "__main__":
    run_alone("transformers_gpt", run)
