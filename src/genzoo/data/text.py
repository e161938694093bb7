"""Text data: tokenizers (character level, byte-level BPE) and token-stream datasets.

A text corpus becomes one long stream of token ids per split. The `Dataset` container holds
rows of equal length, so each split is cut into rows of `row_length` tokens (train rows
overlap by half, so any window up to half a row lies inside some row); a language model
crops a random context window from each row it is given, as nanoGPT draws random offsets.
The raw streams stay available as `TextDataset.streams` (nanoGPT-style evaluation reads them).

- `shakespeare`: tiny Shakespeare (../shared/data/tinyshakespeare.txt), first 90% train, last 10% val.
- any UTF-8 `.txt` path: the same split.

The tokenizer is serialised into `DataInfo.tokenizer` so a model saves it beside its weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from genzoo.data.base import DataInfo, Dataset, find_shared_file
from genzoo.data.registry import register_dataset
from genzoo.errors import GenzooError, first_line
from genzoo.files import read_utf8

TRAIN_FRACTION = 0.9


class CharTokenizer:
    """One token per character of a fixed alphabet; `specials` (e.g. <pad>) come first."""

    kind = "char"

    def __init__(self, chars: str, specials: tuple[str, ...] = ()):
        self.chars = chars
        self.specials = tuple(specials)
        self.index = {c: i + len(self.specials) for i, c in enumerate(chars)}

    @classmethod
    def fit(cls, text: str, specials: tuple[str, ...] = ()) -> CharTokenizer:
        return cls("".join(sorted(set(text))), specials)

    @property
    def vocab_size(self) -> int:
        return len(self.specials) + len(self.chars)

    def special_id(self, name: str) -> int:
        return self.specials.index(name)

    def encode(self, text: str) -> list[int]:
        unknown = sorted({c for c in text if c not in self.index})
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:10])
            raise GenzooError(
                f"the text has characters outside this model's vocabulary: {shown}; "
                "use only characters seen in training (a gpt trained with --set tokenizer=bpe takes any text)"
            )
        return [self.index[c] for c in text]

    def decode(self, ids: list[int]) -> str:
        offset = len(self.specials)
        return "".join(self.chars[i - offset] for i in ids if i >= offset)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "chars": self.chars, "specials": list(self.specials)})


class BPETokenizer:
    """Byte-level BPE from the `tokenizers` package: any text encodes, nothing is out of vocabulary."""

    kind = "bpe"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @classmethod
    def fit(cls, text: str, vocab_size: int) -> BPETokenizer:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        # Train on lines so one huge string does not become one "sentence" for the trainer.
        tok.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "tokenizer": json.loads(self.tokenizer.to_str())})


Tokenizer = CharTokenizer | BPETokenizer


def tokenizer_from_json(text: str, source: str = "tokenizer.json") -> Tokenizer:
    """Rebuild a tokenizer saved by `to_json` (tokenizer.json in a run directory, named by `source`)."""

    def invalid(reason: str) -> GenzooError:
        return GenzooError(
            f"{source} is not a valid genzoo tokenizer ({reason}); restore the run's tokenizer.json or retrain"
        )

    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise invalid(f"not JSON: {first_line(err)}") from err
    kind = payload.get("kind") if isinstance(payload, dict) else None
    if kind == "char":
        chars, specials = payload.get("chars"), payload.get("specials", [])
        if not isinstance(chars, str) or not (
            isinstance(specials, list) and all(isinstance(s, str) for s in specials)
        ):
            raise invalid('a char tokenizer needs "chars" (a string) and "specials" (a list of strings)')
        return CharTokenizer(chars, tuple(specials))
    if kind == "bpe":
        from tokenizers import Tokenizer as HFTokenizer

        try:
            return BPETokenizer(HFTokenizer.from_str(json.dumps(payload["tokenizer"])))
        except Exception as err:  # KeyError, or the tokenizers package's own error (a Rust message)
            raise invalid(f"its BPE part does not load: {first_line(err)}") from err
    raise invalid('it needs an object whose "kind" is "char" or "bpe"')


def read_text(path: Path) -> str:
    """A UTF-8 text file, or one clear error line."""
    text = read_utf8(path, fix="convert it, e.g. `iconv -t UTF-8`")
    if not text.strip():
        raise GenzooError(f"'{path}' is empty; give a text file with some content")
    return text


class TextDataset(Dataset):
    """A `Dataset` of token rows that also keeps each split's full token stream and its tokenizer."""

    def __init__(
        self, info: DataInfo, streams: dict[str, torch.Tensor], tokenizer: Tokenizer, row_length: int
    ):
        self.streams = streams
        self.tokenizer = tokenizer
        splits = {}
        for name, stream in streams.items():
            # Training rows overlap by half a row; evaluation rows tile the stream once.
            stride = max(1, row_length // 2) if name == "train" else row_length
            starts = range(0, len(stream) - row_length + 1, stride)
            rows = torch.stack([stream[s : s + row_length] for s in starts])
            splits[name] = (rows, torch.full((len(rows),), -1, dtype=torch.long))
        super().__init__(info, splits)


def text_dataset(
    text: str, name: str, tokenizer: str = "char", vocab_size: int = 512, row_length: int = 1025
) -> TextDataset:
    """Split `text` (first 90% train, last 10% val), fit the tokenizer on the training part, tokenize."""
    cut = int(len(text) * TRAIN_FRACTION)
    train_text, val_text = text[:cut], text[cut:]
    if tokenizer == "char":
        # The alphabet of the whole file, as nanoGPT does, so val characters are never unknown.
        tok: Tokenizer = CharTokenizer.fit(text)
    elif tokenizer == "bpe":
        if vocab_size < 257:
            raise GenzooError("vocab_size must be >= 257 for byte-level BPE (256 bytes + merges)")
        tok = BPETokenizer.fit(train_text, vocab_size)
    else:
        raise GenzooError(f"tokenizer must be 'char' or 'bpe', got '{tokenizer}'")
    streams = {
        "train": torch.tensor(tok.encode(train_text), dtype=torch.long),
        "val": torch.tensor(tok.encode(val_text), dtype=torch.long),
    }
    shortest = min(len(s) for s in streams.values())
    if shortest < 2:
        raise GenzooError(f"'{name}' is too short to split into training and validation text")
    length = min(row_length, shortest)
    info = DataInfo(
        name,
        "text",
        (length,),
        levels=tok.vocab_size,
        low=0.0,
        high=float(tok.vocab_size - 1),
        tokenizer=tok.to_json(),
    )
    return TextDataset(info, streams, tok, length)


@register_dataset("shakespeare")
def load_shakespeare(tokenizer: str = "char", vocab_size: int = 512, row_length: int = 1025) -> TextDataset:
    found = find_shared_file("tinyshakespeare.txt")
    if found is None:
        raise GenzooError(
            "tiny Shakespeare (tinyshakespeare.txt) is not in ../shared/data or $GENZOO_DATA; "
            "give the .txt file's path instead"
        )
    return text_dataset(read_text(found), "shakespeare", tokenizer, vocab_size, row_length)


@register_dataset("text-file", reads=lambda p: p.is_file() and p.suffix.lower() == ".txt")
def load_text_file(
    path: Path, tokenizer: str = "char", vocab_size: int = 512, row_length: int = 1025
) -> TextDataset:
    return text_dataset(read_text(Path(path)), str(path), tokenizer, vocab_size, row_length)
