"""`genzoo anomaly`: scores against known answers, thresholds, labels, outputs, and every mistake a
user can make as exit code 2 and one line."""

from __future__ import annotations

import io
import json
from itertools import product

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import DiagonalGaussian, GaussianConfig
from PIL import Image
from test_bad_inputs import assert_user_error

from genzoo.apps.anomaly import Scorer, choose_score, complexity_bits, threshold_for
from genzoo.cli import main
from genzoo.data import DataInfo, load_dataset
from genzoo.data.options import mutate
from genzoo.errors import GenzooError
from genzoo.metrics.anomaly import detection_metrics
from genzoo.models import get_model_class


# ---- known answers ---------------------------------------------------------------------------
def gaussian(mean: float = 0.0, shape=(1, 4, 4)) -> DiagonalGaussian:
    model = DiagonalGaussian(GaussianConfig(data_shape=shape, data_levels=17, data_low=0.0, data_high=16.0))
    with torch.no_grad():
        model.mean.fill_(mean)
    return model


def closed_form_nll(x: torch.Tensor, mean: float) -> np.ndarray:
    """-log N(x; mean, 1) summed per example: what DiagonalGaussian's log_prob is with log_std = 0."""
    flat = x.flatten(1).double()
    return (0.5 * (flat - mean) ** 2 + 0.5 * np.log(2 * np.pi)).sum(1).numpy()


def test_corrections_match_their_definitions():
    torch.manual_seed(0)
    close = lambda a, b: np.allclose(a, b, rtol=1e-5, atol=1e-3)  # noqa: E731  the model sums in float32
    x = torch.randint(0, 17, (12, 1, 4, 4)).float()
    reference = torch.randint(0, 17, (20, 1, 4, 4)).float()
    model, background = gaussian(3.0), gaussian(8.0)
    nll = closed_form_nll(x, 3.0)
    assert close(Scorer(model, "nll").fit(reference).score(x), nll)
    ratio = Scorer(model, "likelihood-ratio", background).fit(reference).score(x)
    assert close(ratio, nll - closed_form_nll(x, 8.0))
    center = closed_form_nll(reference, 3.0).mean()
    assert close(Scorer(model, "typicality").fit(reference).score(x), np.abs(nll - center))
    columns = Scorer(model, "complexity").fit(reference).columns(x)
    assert close(columns["score"], nll / np.log(2) - columns["png_bits"])


def test_several_backgrounds_are_their_equal_mixture():
    x = torch.randint(0, 17, (12, 1, 4, 4)).float()
    model, near, far = gaussian(3.0), gaussian(6.0), gaussian(12.0)
    columns = Scorer(model, "likelihood-ratio", [near, far]).columns(x)
    mixture = -np.log(0.5 * np.exp(-closed_form_nll(x, 6.0)) + 0.5 * np.exp(-closed_form_nll(x, 12.0)))
    assert np.allclose(columns["background_nll"], mixture, rtol=1e-5, atol=1e-3)
    assert np.allclose(columns["score"], columns["nll"] - columns["background_nll"])
    # A mixture of one background with itself is that background.
    alone = Scorer(model, "likelihood-ratio", near).columns(x)["background_nll"]
    twice = Scorer(model, "likelihood-ratio", [near, near]).columns(x)["background_nll"]
    assert np.allclose(alone, twice, rtol=1e-6, atol=1e-6)


def test_a_mismatched_background_among_several_is_refused():
    with pytest.raises(GenzooError, match="shape"):
        Scorer(gaussian(3.0), "likelihood-ratio", [gaussian(6.0), gaussian(6.0, shape=(1, 2, 2))])
    with pytest.raises(GenzooError, match="background run"):
        Scorer(gaussian(3.0), "likelihood-ratio", [])


def test_png_bits_are_the_size_of_a_lossless_png():
    x = torch.randint(0, 17, (3, 1, 8, 8)).float()
    bits = complexity_bits(x, 0.0, 16.0)
    for image, size in zip(x, bits, strict=True):
        buffer = io.BytesIO()
        pixels = (image[0] / 16 * 255).round().byte().numpy()
        Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
        assert size == 8 * buffer.tell()
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(buffer.getvalue()))), pixels)  # lossless
    flat, noisy = torch.zeros(1, 1, 28, 28), torch.randint(0, 256, (1, 1, 28, 28)).float()
    assert complexity_bits(flat, 0, 255)[0] < complexity_bits(noisy, 0, 255)[0] / 5


def test_detection_metrics_agree_with_counting_pairs():
    rng = np.random.default_rng(0)
    labels = (rng.random(200) < 0.2).astype(int)
    scores = rng.normal(size=200) + labels
    pairs = [(a > b) + 0.5 * (a == b) for a, b in product(scores[labels == 1], scores[labels == 0])]
    flags = scores > 1.0
    result = detection_metrics(scores, labels, flags)
    assert result["auroc"] == pytest.approx(np.mean(pairs))
    assert result["precision"] == pytest.approx((flags & (labels == 1)).sum() / flags.sum())
    assert result["recall"] == pytest.approx((flags & (labels == 1)).sum() / labels.sum())
    assert 0 < result["auprc"] <= 1 and result["anomalies"] == labels.sum()
    with pytest.raises(GenzooError, match="both normal"):
        detection_metrics(scores, np.zeros(200))


def test_thresholds_flag_the_share_asked_for():
    reference, scores = np.arange(1000.0), np.arange(100.0) * 10
    threshold, _ = threshold_for(reference, scores, fpr=0.1, contamination=None)
    assert (reference > threshold).mean() == pytest.approx(0.1, abs=0.002)
    threshold, _ = threshold_for(reference, scores, fpr=None, contamination=0.2)
    assert (scores > threshold).mean() == pytest.approx(0.2, abs=0.011)
    for fpr, contamination in ((0.0, None), (1.0, None), (None, 0.5), (None, 0.0), (None, -0.1)):
        with pytest.raises(GenzooError):
            threshold_for(reference, scores, fpr=fpr, contamination=contamination)


def test_maps_add_up_to_the_scores():
    data = load_dataset("digits")
    x = data.split("test").tensors[0][:6]
    torch.manual_seed(0)
    pixelcnn = get_model_class("pixelcnn").for_data(data.info, channels=8, n_layers=2).eval()
    heat = pixelcnn.anomaly_map(x)
    assert torch.allclose(heat.flatten(1).sum(1), -pixelcnn.log_prob(x), rtol=1e-4)
    vae = get_model_class("vae").for_data(data.info)
    assert torch.allclose(vae.anomaly_map(x).flatten(1).sum(1), vae.anomaly_score(x, "reconstruction"))


def test_auto_picks_a_score_the_model_has():
    info = load_dataset("digits").info
    expected = {"pixelcnn": "nll", "vae": "nll", "dcgan": "critic", "ddpm": "denoising"}  # 8x8: no PNG
    for name, kind in expected.items():
        model = get_model_class(name).for_data(info)
        assert choose_score(model)[0] == kind and choose_score(model)[1]
        Scorer(model, kind)  # accepted
    mnist = DataInfo("mnist", "image", (1, 28, 28), levels=256, low=0.0, high=255.0)
    assert choose_score(get_model_class("vae").for_data(mnist))[0] == "complexity"
    assert choose_score(gaussian(), gaussian())[0] == "likelihood-ratio"


def test_scorer_refuses_what_the_model_cannot_give():
    dcgan = get_model_class("dcgan").for_data(load_dataset("digits").info)
    with pytest.raises(GenzooError, match="no 'nll' score"):
        Scorer(dcgan, "nll")
    with pytest.raises(GenzooError, match="corrects the NLL"):
        Scorer(dcgan, "typicality")
    with pytest.raises(GenzooError, match="background run"):
        Scorer(gaussian(), "likelihood-ratio")
    with pytest.raises(GenzooError, match="shape"):
        Scorer(gaussian(), "likelihood-ratio", gaussian(shape=(1, 8, 8)))
    with pytest.raises(GenzooError, match="unknown anomaly score"):
        Scorer(gaussian(), "likelyhood")


# ---- the data options a detector is trained with ------------------------------------------------
def test_train_classes_keep_test_whole(tmp_path):
    full, one = load_dataset("digits"), load_dataset("digits", train_classes="3,5")
    for split in ("train", "val"):
        y = one.split(split).tensors[1]
        assert set(y.tolist()) == {3, 5}
        assert len(y) == int(torch.isin(full.split(split).tensors[1], torch.tensor([3, 5])).sum())
    assert torch.equal(one.split("test").tensors[0], full.split("test").tensors[0])
    for bad, fragment in ((12, "0..9"), ("a", "class indices"), ([], "at least one")):
        with pytest.raises(GenzooError, match=fragment):
            load_dataset("digits", train_classes=bad)
    text = tmp_path / "words.txt"
    text.write_text("the king of night speaks " * 400)
    with pytest.raises(GenzooError, match="image, vector and audio"):
        load_dataset(text, train_classes=1)


def test_mutation_replaces_the_share_asked_for_with_valid_levels():
    x = torch.full((2000, 1, 8, 8), 5.0)
    mutated = mutate(x, 0.3, 17, 0.0, 16.0, torch.Generator().manual_seed(0))
    changed = (mutated != x).float().mean().item()
    assert changed == pytest.approx(0.3 * 16 / 17, abs=0.01)  # a draw may pick the old level
    assert torch.equal(mutated, mutated.round()) and mutated.min() >= 0 and mutated.max() <= 16
    data = load_dataset("digits", mutation=0.2)
    assert torch.equal(data.split("test").tensors[0], load_dataset("digits").split("test").tensors[0])
    with pytest.raises(GenzooError, match=r"in \(0, 1\)"):
        load_dataset("digits", mutation=1.5)


# ---- the command, end to end ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A VAE trained on the digit 0 only, a background VAE on noised digits, and a ring GAN."""
    root = tmp_path_factory.mktemp("anomaly")
    quiet = ["--quiet", "--set", "eval_every=0"]
    trainings = [
        ["vae", "digits", "vae", "200", "data.train_classes=0"],
        ["vae", "digits", "bg", "60", "data.mutation=0.2"],
        ["dcgan", "toy2d-ring", "gan", "5", "pack=1"],
    ]
    for model, data, out, steps, setting in trainings:
        argv = ["train", model, "--data", data, "--out", str(root / out), "--max-steps", steps]
        assert main(argv + ["--set", setting] + quiet) == 0
    return root


def run_json(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert main(["anomaly", *argv, "--json", "--quiet"]) == 0
    return json.loads(capsys.readouterr().out)


def test_one_class_run_finds_the_other_digits(runs, capsys, tmp_path):
    out = tmp_path / "scores.csv"
    summary = run_json(
        capsys, str(runs / "vae"), "--split", "test", "--out", str(out), "--score", "reconstruction"
    )
    assert summary["labels"] == "classes other than [0]" and summary["n"] == 447
    assert summary["auroc"] > 0.9, summary  # zeros against every other digit: easy even after 60 steps
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["index", "split", "class", "score", "flag", "label"]
    assert frame["flag"].sum() == summary["flagged"]
    assert ((frame["score"] > summary["threshold"]) == frame["flag"].astype(bool)).all()
    for suffix in ("histogram", "extremes", "maps"):
        assert (tmp_path / f"scores_{suffix}.png").is_file()
    looser = run_json(
        capsys, str(runs / "vae"), "--split", "test", "--score", "reconstruction", "--fpr", "0.3"
    )
    assert looser["flagged"] >= summary["flagged"]


def test_likelihood_ratio_with_a_background_run(runs, capsys, tmp_path):
    out = tmp_path / "lr.csv"
    summary = run_json(
        capsys, str(runs / "vae"), "--split", "val", "--background", str(runs / "bg"), "--out", str(out)
    )
    assert summary["score"] == "likelihood-ratio"
    frame = pd.read_csv(out)
    assert np.allclose(frame["score"], frame["nll"] - frame["background_nll"])
    # The same background twice is one background: the same scores.
    again = tmp_path / "lr2.csv"
    twice = ["--background", str(runs / "bg")] * 2
    run_json(capsys, str(runs / "vae"), "--split", "val", *twice, "--out", str(again))
    assert np.allclose(pd.read_csv(again)["background_nll"], frame["background_nll"], rtol=1e-6, atol=1e-6)


def test_labels_from_a_file(runs, capsys, tmp_path):
    labels = tmp_path / "y.csv"
    truth = (load_dataset("digits").split("test").tensors[1] == 7).int().tolist()
    labels.write_text("is_anomaly\n" + "\n".join(map(str, truth)) + "\n")
    summary = run_json(
        capsys, str(runs / "vae"), "--split", "test", "--labels", str(labels), "--score", "nll"
    )
    assert summary["anomalies"] == sum(truth) and summary["labels"] == "file 'y.csv'"


def test_table_file_with_a_label_column(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "kind": rng.choice(["x", "y"], n)}
    )
    frame.loc[:9, ["a", "b"]] = 8.0  # ten far-out rows
    train = tmp_path / "train.csv"
    frame.iloc[10:].to_csv(train, index=False)
    scored = tmp_path / "scored.csv"
    frame.assign(outlier=[1] * 10 + [0] * (n - 10)).to_csv(scored, index=False)
    run = tmp_path / "tvae"
    assert (
        main(["train", "tvae", "--data", str(train), "--out", str(run), "--max-steps", "150", "--quiet"]) == 0
    )
    summary = run_json(capsys, str(run), "--data", str(scored), "--labels", "outlier")
    assert summary["score"] == "reconstruction" and summary["n"] == n
    assert summary["auroc"] > 0.9, summary
    # Bad tables: a missing column, an unseen category, no rows.
    frame.drop(columns="b").to_csv(tmp_path / "missing.csv", index=False)
    frame.assign(kind="z").to_csv(tmp_path / "unseen.csv", index=False)
    frame.iloc[:0].to_csv(tmp_path / "empty.csv", index=False)
    for name, fragment in (
        ("missing", "lacks the column"),
        ("unseen", "never saw"),
        ("empty", "no data rows"),
    ):
        assert_user_error(
            capsys, ["anomaly", str(run), "--data", str(tmp_path / f"{name}.csv")], fragment, [run]
        )
    assert_user_error(
        capsys,
        ["anomaly", str(run), "--data", str(scored), "--labels", "nope"],
        "not a file or a column",
        [run],
    )
    # The training file gone: the validation threshold cannot be had, a contamination threshold can.
    train.rename(tmp_path / "moved.csv")
    assert_user_error(capsys, ["anomaly", str(run), "--data", str(scored)], "--contamination", [run])
    summary = run_json(capsys, str(run), "--data", str(scored), "--contamination", "0.05")
    assert summary["flagged"] == 10 and summary["reference_n"] == 0


def test_a_run_with_only_a_critic(runs, capsys):
    summary = run_json(capsys, str(runs / "gan"), "--split", "test")
    assert summary["score"] == "critic"


BAD = [
    (["--data", "toy2d-ring"], "shape"),
    (["--score", "critic"], "no 'critic' score"),
    (["--score", "likelyhood-ratio"], "did you mean"),
    (["--score", "likelihood-ratio"], "background run"),
    (["--contamination", "0.7"], "(0, 0.5)"),
    (["--contamination", "0"], "(0, 0.5)"),
    (["--fpr", "1"], "(0, 1)"),
    (["--fpr", "0.1", "--contamination", "0.1"], "not allowed with"),
    (["--split", "tset"], "split"),
    (["--out", "{tmp}/scores.txt"], ".csv"),
    (["--out", "{tmp}/folder.csv"], "directory"),
    (["--labels", "{tmp}/short.csv"], "2 labels for 1797"),
    (["--labels", "{tmp}/garbage.csv"], "0/1"),
    (["--labels", "{tmp}/absent.csv"], "not a file"),
    (["--background", "{runs}/gan", "--score", "likelihood-ratio"], "no likelihood"),
    (["--background", "{tmp}/no-run"], "no-run"),
    (
        ["--background", "{runs}/bg", "--background", "{runs}/gan", "--score", "likelihood-ratio"],
        "no likelihood",
    ),
]


@pytest.mark.parametrize(("extra", "fragment"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_mistakes_are_one_line_and_exit_2(runs, capsys, tmp_path, extra, fragment):
    (tmp_path / "short.csv").write_text("0\n1\n")
    (tmp_path / "garbage.csv").write_bytes(b"0\n" + b"\x00\xff\xfe junk\n" * 1796)
    (tmp_path / "folder.csv").mkdir()
    argv = [a.format(tmp=tmp_path, runs=runs) for a in extra]
    assert_user_error(capsys, ["anomaly", str(runs / "vae"), *argv], fragment, [runs, tmp_path])


def test_text_is_scored_line_by_line_per_token(tmp_path, capsys):
    rng = np.random.default_rng(0)
    words = ["the", "king", "of", "night", "speaks", "and", "we", "hear", "a", "song"]
    corpus = tmp_path / "words.txt"
    corpus.write_text(" ".join(rng.choice(words, 6000)) + "\nzq\n")
    run = tmp_path / "gpt"
    settings = ["--set", "n_layer=1", "--set", "n_embd=32", "--set", "row_length=65", "--set", "eval_every=0"]
    assert (
        main(
            [
                "train",
                "gpt",
                "--data",
                str(corpus),
                "--out",
                str(run),
                "--max-steps",
                "150",
                "--quiet",
                *settings,
            ]
        )
        == 0
    )
    lines = tmp_path / "lines.txt"
    lines.write_text(
        "the king speaks and we hear a song\n\nq\nzqzqzq zqqz qzzq zqzq zzzz qqqq zq\nthe night\n"
    )
    out = tmp_path / "scores.csv"
    summary = run_json(capsys, str(run), "--data", str(lines), "--out", str(out))
    frame = pd.read_csv(out)
    assert summary["score"] == "nll" and frame["line"].tolist() == [
        1,
        4,
        5,
    ]  # blank and 1-token lines skipped
    assert frame["score"].idxmax() == 1  # the line of rare letters
    long_line, short_line = frame["score"][0], frame["score"][2]
    assert long_line < 2 * short_line  # per token: a normal line is not anomalous for its length
    (tmp_path / "accents.txt").write_text("the king é\n")
    (tmp_path / "short.txt").write_text("a\n\nk\n")
    for name, fragment in (("accents", "outside this model's vocabulary"), ("short", "two or more tokens")):
        assert_user_error(
            capsys, ["anomaly", str(run), "--data", str(tmp_path / f"{name}.txt")], fragment, [run]
        )
    assert_user_error(
        capsys, ["anomaly", str(run), "--data", str(lines), "--split", "test"], "drop --split", [run]
    )
