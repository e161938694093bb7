"""Text models: tokenizers, text and pair data, GPT (KV cache, sampling options), seq2seq, CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from genzoo.cli import main
from genzoo.data import load_dataset
from genzoo.data.dates import EOS, PAD, date_pairs, load_dates
from genzoo.data.text import BPETokenizer, CharTokenizer, text_dataset, tokenizer_from_json
from genzoo.errors import GenzooError
from genzoo.generation import TextStream, next_token
from genzoo.metrics.text import bleu, chrf, exact_match
from genzoo.models import get_model_class, load
from genzoo.train.config import TrainConfig
from genzoo.train.trainer import Trainer

CORPUS = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 40
TINY_GPT = {"block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 32}


def _gpt(text: str = CORPUS, scale: float = 0.0, **overrides):
    data = text_dataset(text, "corpus", row_length=65)
    torch.manual_seed(0)
    model = get_model_class("gpt").for_data(data.info, **{**TINY_GPT, **overrides})
    if scale:  # larger random weights: well-separated logits, so greedy choices are not near-ties
        for p in model.parameters():
            torch.nn.init.normal_(p, std=scale) if p.dim() > 1 else None
    return model.eval(), data


# ---- tokenizers and data ------------------------------------------------------------------
def test_char_tokenizer_round_trip_and_unknown_characters():
    tok = CharTokenizer.fit("hello the world")
    assert tok.decode(tok.encode("hold the world")[:4]) == "hold"
    assert tokenizer_from_json(tok.to_json()).encode("low") == tok.encode("low")
    with pytest.raises(GenzooError, match="outside this model's vocabulary: 'Z'"):
        tok.encode("Zero")


def test_bpe_tokenizer_encodes_any_text_and_round_trips():
    tok = BPETokenizer.fit(CORPUS, vocab_size=300)
    assert 256 < tok.vocab_size <= 300
    for text in (CORPUS[:200], "never seen: ünïcödé ✓"):
        assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(CORPUS[:200])) < 200  # merges were learned
    again = tokenizer_from_json(tok.to_json())
    assert again.encode("hear me speak") == tok.encode("hear me speak")


def test_text_file_splits_rows_and_streams(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(CORPUS)
    data = load_dataset(path, row_length=65)
    cut = int(len(CORPUS) * 0.9)
    assert data.tokenizer.decode(data.streams["train"].tolist()) == CORPUS[:cut]
    assert data.tokenizer.decode(data.streams["val"].tolist()) == CORPUS[cut:]
    rows = data.split("train").tensors[0]
    assert rows.shape[1] == 65 and torch.equal(rows[1, :32].long(), data.streams["train"][32:64])


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"\xff\xfe bad bytes", "not UTF-8")],
)
def test_bad_text_files_are_user_errors(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(GenzooError, match=message):
        load_dataset(path)


def test_corpus_too_small_for_the_context_is_a_user_error():
    data = text_dataset("tiny text, but long enough to split" * 2, "tiny", row_length=1025)
    with pytest.raises(GenzooError, match="too short for the context length"):
        get_model_class("gpt").for_data(data.info, block_size=64)


def test_dates_are_correct_distinct_and_held_out():
    pairs = date_pairs(300, seed=5)
    assert len({s for s, _ in pairs}) == 300
    for source, target in pairs:
        year, month, day = map(int, target.split("-"))
        assert str(year) in source and 1900 <= year <= 2099
    data = load_dates(train_size=500, val_size=50, test_size=50)
    train_sources = {s for s, _ in data.pairs["train"]}
    assert not train_sources & {s for s, _ in data.pairs["test"]}
    row = data.split("test").tensors[0][0].long()
    source, target = data.pairs["test"][0]
    assert data.tokenizer.decode(row[0].tolist()) == source
    assert row[1, len(target)] == EOS and data.tokenizer.decode(row[1].tolist()) == target


# ---- GPT ----------------------------------------------------------------------------------
def test_gpt_log_prob_is_exact_for_a_uniform_model():
    model, data = _gpt()
    with torch.no_grad():
        model.wte.weight.zero_()  # tied output layer: every logit 0, p = 1/V per token
    rows = data.split("val").tensors[0][:3]
    expected = -(rows.shape[1] - 1) * math.log(data.info.levels)
    assert torch.allclose(model.log_prob(rows), torch.full((3,), expected), atol=1e-3)


def test_gpt_log_prob_matches_token_by_token_scoring():
    model, data = _gpt(scale=0.3)
    row = data.split("val").tensors[0][:1].long()
    total, size = 0.0, model.config.block_size
    for t in range(1, row.shape[1]):
        start = ((t - 1) // size) * size  # log_prob scores in consecutive windows of block_size
        logits = model(row[:, start:t])[0, -1]
        total += logits.log_softmax(-1)[row[0, t]].item()
    assert model.log_prob(row).item() == pytest.approx(total, abs=1e-3)


def test_greedy_tokens_identical_with_and_without_kv_cache():
    model, _ = _gpt(scale=0.3)
    # 40 new tokens after an 11-token prompt: past block_size=16, so the window jumps twice.
    with_cache = model.sample(1, prompt="First Citi", max_new_tokens=40, temperature=0)
    without = model.sample(1, prompt="First Citi", max_new_tokens=40, temperature=0, kv_cache=False)
    assert with_cache == without
    ids = torch.tensor([model.tokenizer.encode("First Citi")])
    a = model.generate(ids, 40, temperature=0)
    b = model.generate(ids, 40, temperature=0, kv_cache=False)
    assert torch.equal(a, b) and a.shape == (1, 50)
    # Seeded sampling follows the same path both ways too.
    g = torch.Generator().manual_seed
    s1 = model.generate(ids, 30, temperature=1.0, top_k=5, generator=g(1))
    s2 = model.generate(ids, 30, temperature=1.0, top_k=5, generator=g(1), kv_cache=False)
    assert torch.equal(s1, s2)


def test_long_prompt_is_cropped_with_a_warning():
    model, _ = _gpt()
    with pytest.warns(UserWarning, match="more than the context"):
        out = model.sample(1, prompt=CORPUS[:40], max_new_tokens=3, temperature=0)
    assert out[0].startswith(CORPUS[:40]) and len(out[0]) == 43


def test_unknown_prompt_character_is_a_user_error():
    model, _ = _gpt()
    with pytest.raises(GenzooError, match="outside this model's vocabulary"):
        model.sample(1, prompt="Zebra")


def test_top_k_top_p_and_temperature():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0], [0.0, 3.0, 0.0, 0.0]])
    g = torch.Generator().manual_seed(0)
    assert next_token(logits, temperature=0).flatten().tolist() == [0, 1]
    assert next_token(logits, top_k=1, generator=g).flatten().tolist() == [0, 1]
    assert next_token(logits, top_p=1e-6, generator=g).flatten().tolist() == [0, 1]
    draws = torch.cat([next_token(logits, top_k=2, generator=g) for _ in range(200)], dim=1)
    assert set(draws[0].tolist()) == {0, 1}
    # top_p=0.8 on [0.61, 0.22, 0.14, 0.03]: 0.61 < 0.8, 0.83 >= 0.8 -> keep the first two.
    draws = torch.cat([next_token(logits[:1], top_p=0.8, generator=g) for _ in range(200)], dim=1)
    assert set(draws[0].tolist()) == {0, 1}


def test_stop_strings_and_streaming():
    pieces: list[str] = []
    stream = TextStream(lambda ids: "".join(chr(i) for i in ids), ["END"], pieces.append)
    for c in "hello EN world END more":
        stream.push(ord(c))
    assert stream.done and stream.finish() == "hello EN world "
    assert "".join(pieces) == "hello EN world "
    model, _ = _gpt(scale=0.3)
    full = model.sample(1, prompt="F", max_new_tokens=30, temperature=0)[0]
    stop = full[5:7]
    streamed: list[str] = []
    cut = model.sample(1, prompt="F", max_new_tokens=30, temperature=0, stop=stop, stream=streamed.append)[0]
    assert cut == full[: full.index(stop, 1)] and "F" + "".join(streamed) == cut


def test_gpt_decay_groups_exempt_embeddings(tmp_path):
    model, data = _gpt()
    trainer = Trainer(model, data, TrainConfig(weight_decay=0.1), tmp_path, quiet=True)
    groups = trainer.optimizers[0].param_groups
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert id(model.wte.weight) in no_decay and id(model.wpe.weight) in no_decay
    assert id(model.blocks[0].attn.q.weight) not in no_decay
    assert any(g["weight_decay"] == 0.1 for g in groups)


def test_gradient_accumulation_equals_one_larger_batch(gaussian_model, tmp_path):
    data = load_dataset("digits")
    results = []
    for batch_size, accum in ((8, 1), (4, 2)):
        torch.manual_seed(0)
        model = gaussian_model.for_data(data.info, noisy_loss=False)
        config = TrainConfig(lr=0.1, batch_size=batch_size, grad_accum=accum, max_steps=1, eval_every=0)
        Trainer(model, data, config, tmp_path / f"{accum}", quiet=True).fit()
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(results[0], results[1], atol=1e-6)


# ---- seq2seq ------------------------------------------------------------------------------
def _seq2seq():
    data = load_dates(train_size=300, val_size=20, test_size=20)
    torch.manual_seed(0)
    model = get_model_class("seq2seq").for_data(data.info, n_layer=1, n_decoder_layer=1, n_embd=32, n_head=2)
    return model.eval(), data


def test_seq2seq_log_prob_is_exact_for_a_uniform_model():
    model, data = _seq2seq()
    with torch.no_grad():
        model.embed.weight.zero_()
    rows = data.split("val").tensors[0][:4]
    lengths = (rows[:, 1] != PAD).sum(1).float()
    assert torch.allclose(model.log_prob(rows), -lengths * math.log(data.info.levels), atol=1e-3)


def test_seq2seq_beam_of_one_is_greedy_and_beam_scores_at_least_greedy():
    model, data = _seq2seq()
    for p in model.parameters():
        if p.dim() > 1:
            torch.nn.init.normal_(p, std=0.3)
    sources = [s for s, _ in data.pairs["val"][:6]]
    greedy = model.sample(1, inputs=sources)
    assert model.sample(1, inputs=sources, beam_size=1) == greedy
    source = model._encode_texts(sources)
    g_ids = model.generate(source, 12)
    b_ids = model.beam_search(source, 12, beam_size=4, length_penalty=0.0)

    def score(ids):  # log p(ids | source) under the model, up to the first <eos>
        memory, mask = model.encode(source)
        prefix = torch.cat([torch.ones_like(ids[:, :1]), ids[:, :-1]], dim=1)
        lp = model.decode(prefix, memory, mask).log_softmax(-1).gather(2, ids[..., None])[..., 0]
        return (lp * (ids != PAD)).sum(1)

    assert (score(b_ids) >= score(g_ids) - 1e-4).all()


def test_text_metrics():
    assert exact_match(["a", "b ", "c"], ["a", "b", "d"]) == pytest.approx(2 / 3)
    assert chrf(["2021-03-03"], ["2021-03-03"]) == pytest.approx(100)
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100)
    assert chrf(["1999-01-01"], ["2021-03-03"]) < 50


# ---- CLI ----------------------------------------------------------------------------------
def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_gpt_train_sample_evaluate(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(CORPUS)
    run = tmp_path / "run"
    settings = {**TINY_GPT, "row_length": 65, "lr": 1e-2, "warmup_steps": 0, "grad_accum": 2}
    sets = [a for k, v in settings.items() for a in ("--set", f"{k}={v}")]
    code, out, err = _cli(
        capsys,
        "train",
        "gpt",
        "--data",
        str(corpus),
        "--out",
        str(run),
        "--max-steps",
        "30",
        "--quiet",
        *sets,
    )
    assert code == 0, err
    assert (run / "tokenizer.json").is_file() and (run / "samples.txt").is_file()
    assert load(run).tokenizer.encode("hear") == CharTokenizer.fit(CORPUS).encode("hear")
    code, out, _ = _cli(
        capsys,
        "sample",
        str(run),
        "--prompt",
        "All:",
        "--max-new-tokens",
        "20",
        "--temperature",
        "0.8",
        "--top-k",
        "5",
    )
    assert code == 0 and out.startswith("All:") and len(out.rstrip("\n")) >= 4
    code, _, err = _cli(capsys, "sample", str(run), "--prompt", "Zounds")
    assert (
        code == 2
        and err.startswith("genzoo: error:")
        and "vocabulary" in err
        and len(err.strip().splitlines()) == 1
    )
    code, out, err = _cli(
        capsys, "evaluate", str(run), "--metrics", "nll,loss_per_token,bpc,perplexity", "--json"
    )
    result = json.loads(out)
    assert code == 0 and result["bpc"] == pytest.approx(result["loss_per_token"] / math.log(2))
    # no test split in a text file: val, and it says so; bpd counts the predicted tokens only
    assert result["split"] == "val" and "has no test split; evaluating on val" in err
    assert result["bpd"] == pytest.approx(result["bpc"])  # a character tokenizer: one token, one char
    assert result["perplexity"] == pytest.approx(math.exp(result["loss_per_token"]))
    assert result["loss_per_token"] < math.log(len(set(CORPUS))) - 0.5  # it learned something


def test_cli_seq2seq_tsv_train_and_sample(tmp_path, capsys):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in date_pairs(200, seed=1)))
    run = tmp_path / "run"
    small = ["--set", "n_layer=1", "--set", "n_decoder_layer=1", "--set", "n_embd=32", "--set", "n_head=2"]
    code, _, err = _cli(
        capsys,
        "train",
        "seq2seq",
        "--data",
        str(tsv),
        "--out",
        str(run),
        "--max-steps",
        "5",
        "--quiet",
        *small,
    )
    assert code == 0, err
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("3 March 2021\n4 May 1999\n")
    code, out, _ = _cli(capsys, "sample", str(run), "--input", str(inputs), "--beam-size", "2")
    assert code == 0 and len(out.strip().splitlines()) == 2
    code, out, _ = _cli(
        capsys, "evaluate", str(run), "--split", "val", "--metrics", "exact_match,chrf,bleu", "--json"
    )
    assert code == 0 and 0 <= json.loads(out)["exact_match"] <= 1
    code, _, err = _cli(capsys, "sample", str(run), "--prompt", "x")
    assert code == 2 and "does not take --prompt" in err
