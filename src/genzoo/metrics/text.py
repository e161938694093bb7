"""Sequence-to-sequence output metrics against references: exact match, and chrF / BLEU through
sacrebleu (the reference implementation, so numbers compare with published ones)."""

from __future__ import annotations

from genzoo.errors import GenzooError


def _check(predictions: list[str], references: list[str]) -> None:
    if len(predictions) != len(references) or not predictions:
        raise GenzooError(
            f"need as many predictions as references (got {len(predictions)} and {len(references)})"
        )


def exact_match(predictions: list[str], references: list[str]) -> float:
    """Share of outputs equal to their reference (after stripping surrounding spaces)."""
    _check(predictions, references)
    return sum(p.strip() == r.strip() for p, r in zip(predictions, references, strict=True)) / len(references)


def chrf(predictions: list[str], references: list[str]) -> float:
    """Corpus chrF (character n-gram F-score, 0..100), sacrebleu's default settings."""
    import sacrebleu

    _check(predictions, references)
    return float(sacrebleu.corpus_chrf(predictions, [references]).score)


def bleu(predictions: list[str], references: list[str]) -> float:
    """Corpus BLEU (0..100), sacrebleu's default 13a tokenisation."""
    import sacrebleu

    _check(predictions, references)
    return float(sacrebleu.corpus_bleu(predictions, [references]).score)
