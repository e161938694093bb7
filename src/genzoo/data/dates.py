"""Sequence pairs for the encoder-decoder: `source<TAB>target` TSV files, and `dates`, an embedded
generator of dates written in many human formats and languages, each mapped to ISO 8601.

    "3rd of March 2021" -> "2021-03-03"      "3. März 2021" -> "2021-03-03"      "03.03.21" is not used
    (two-digit years and month/day order are ambiguous, so only unambiguous formats are generated)

Each split stores (N, 2, L) rows: the source and the target as character ids, padded to L;
the target ends with <eos>. Test pairs never share their source text with a training pair.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import torch

from genzoo.data.base import DataInfo, Dataset
from genzoo.data.registry import register_dataset
from genzoo.data.text import CharTokenizer, read_text
from genzoo.errors import GenzooError

SPECIALS = ("<pad>", "<bos>", "<eos>")
PAD, BOS, EOS = 0, 1, 2

MONTHS = {
    "en": "January February March April May June July August September October November December",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
    "it": "gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre",
    "nl": "januari februari maart april mei juni juli augustus september oktober november december",
    "pt": "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro dezembro",
}
MONTH_NAMES = {lang: names.split() for lang, names in MONTHS.items()}
WEEKDAYS_EN = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _formats(d: dt.date) -> list[str]:
    """The ways one date is written (English, then other languages, then numeric)."""
    m = {lang: names[d.month - 1] for lang, names in MONTH_NAMES.items()}
    en = m["en"]
    day, year = d.day, d.year
    return [
        f"{_ordinal(day)} of {en} {year}",
        f"the {_ordinal(day)} of {en}, {year}",
        f"{en} {day}, {year}",
        f"{en} {_ordinal(day)}, {year}",
        f"{day} {en} {year}",
        f"{day} {en[:3]} {year}",
        f"{en[:3]} {day} {year}",
        f"{en[:3]}. {day}, {year}",
        f"{WEEKDAYS_EN[d.weekday()]}, {en} {day}, {year}",
        f"{day} {en.upper()} {year}",
        f"{day} {en.lower()} {year}",
        f"le {day} {m['fr']} {year}",
        f"{day} {m['fr']} {year}",
        f"{day}. {m['de']} {year}",
        f"{day} de {m['es']} de {year}",
        f"{day} {m['it']} {year}",
        f"{day} {m['nl']} {year}",
        f"{day} de {m['pt']} de {year}",
        f"{year}/{d.month:02d}/{day:02d}",
        f"{day}.{d.month}.{year}",
        f"{year}{d.month:02d}{day:02d}",
    ]


def date_pairs(n: int, seed: int, exclude: set[str] = frozenset()) -> list[tuple[str, str]]:
    """`n` distinct (human date, ISO date) pairs, dates uniform in 1900..2099, formats uniform."""
    rng = random.Random(seed)
    first, span = dt.date(1900, 1, 1).toordinal(), (dt.date(2099, 12, 31) - dt.date(1900, 1, 1)).days
    pairs, seen = [], set(exclude)
    while len(pairs) < n:
        d = dt.date.fromordinal(first + rng.randrange(span + 1))
        source = rng.choice(_formats(d))
        if source not in seen:
            seen.add(source)
            pairs.append((source, d.isoformat()))
    return pairs


class PairDataset(Dataset):
    """Sequence pairs as (N, 2, L) character ids, with the tokenizer and the raw text pairs."""

    def __init__(
        self, name: str, splits: dict[str, list[tuple[str, str]]], tokenizer: CharTokenizer | None = None
    ):
        every = [p for pairs in splits.values() for p in pairs]
        self.tokenizer = tokenizer or CharTokenizer.fit("".join(s + t for s, t in every), SPECIALS)
        self.pairs = splits
        length = max(max(len(s), len(t) + 1) for s, t in every)  # +1: the target's <eos>
        tensors = {k: (self._encode(v, length), torch.full((len(v),), -1)) for k, v in splits.items()}
        size = self.tokenizer.vocab_size
        info = DataInfo(
            name, "text-pairs", (2, length), size, 0.0, float(size - 1), tokenizer=self.tokenizer.to_json()
        )
        super().__init__(info, tensors)

    def _encode(self, pairs: list[tuple[str, str]], length: int) -> torch.Tensor:
        def padded(ids: list[int]) -> list[int]:
            return ids + [PAD] * (length - len(ids))

        rows = [
            [padded(self.tokenizer.encode(source)), padded(self.tokenizer.encode(target) + [EOS])]
            for source, target in pairs
        ]
        return torch.tensor(rows, dtype=torch.long).view(len(pairs), 2, length)


@register_dataset("dates")
def load_dates(
    train_size: int = 20_000, val_size: int = 1000, test_size: int = 1000, seed: int = 0
) -> PairDataset:
    test = date_pairs(test_size, seed + 2)
    val = date_pairs(val_size, seed + 1, exclude={s for s, _ in test})
    train = date_pairs(train_size, seed, exclude={s for s, _ in test + val})
    return PairDataset("dates", {"train": train, "val": val, "test": test})


def read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise GenzooError(f"'{path}' line {number} is not 'source<TAB>target'; fix or remove it")
        pairs.append((parts[0], parts[1]))
    return pairs


def looks_like_pairs(path: Path) -> bool:
    """A .tsv whose first line has two fields is pairs; more fields make it a table (`table-file`)."""
    if not (path.is_file() and path.suffix.lower() == ".tsv"):
        return False
    with open(path, "rb") as handle:
        first = handle.readline(1 << 16)
    return first.count(b"\t") == 1


@register_dataset("tsv-pairs", reads=looks_like_pairs)
def load_tsv_pairs(path: Path, val_fraction: float = 0.1, seed: int = 0) -> PairDataset:
    """A TSV of `source<TAB>target` lines, shuffled (seeded), the last `val_fraction` as val."""
    pairs = read_pairs(Path(path))
    if len(pairs) < 2:
        raise GenzooError(f"'{path}' needs at least 2 source<TAB>target lines, it has {len(pairs)}")
    random.Random(seed).shuffle(pairs)
    n_val = max(1, int(len(pairs) * val_fraction))
    return PairDataset(str(path), {"train": pairs[:-n_val], "val": pairs[-n_val:]})
