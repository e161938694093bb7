"""Base class of the text models: the tokenizer travels with the weights (`tokenizer.json` in the run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genzoo.data.base import DataInfo
from genzoo.data.text import Tokenizer, tokenizer_from_json
from genzoo.errors import GenzooError
from genzoo.models.base import GenerativeModel, ModelConfig, atomic_write_text

TOKENIZER_FILE = "tokenizer.json"


class TokenizedModel(GenerativeModel):
    """A model over token ids whose tokenizer comes from the data and is saved beside its weights."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.tokenizer: Tokenizer | None = None

    @property
    def vocab_size(self) -> int:
        """Tokens in the vocabulary: a text model's data levels, under the name they have here."""
        return self.config.data_levels

    @classmethod
    def for_data(cls, info: DataInfo, **overrides: Any) -> TokenizedModel:
        model = super().for_data(info, **overrides)
        model.tokenizer = tokenizer_from_json(info.tokenizer) if info.tokenizer else None
        return model

    def save_extra(self, directory: Path) -> None:
        if self.tokenizer is not None:
            atomic_write_text(directory / TOKENIZER_FILE, self.tokenizer.to_json())

    def load_extra(self, directory: Path) -> None:
        path = directory / TOKENIZER_FILE
        if not path.is_file():
            return
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as err:
            raise GenzooError(
                f"'{path}' is not a valid genzoo tokenizer (not UTF-8 text: byte {err.start}); "
                "restore the run's tokenizer.json or retrain"
            ) from err
        except OSError as err:
            raise GenzooError(f"cannot read '{path}' ({err.strerror})") from err
        tokenizer = tokenizer_from_json(text, source=f"'{path}'")
        levels = self.vocab_size
        if levels is not None and tokenizer.vocab_size != levels:
            # Token ids past the embedding would crash generation far from the cause.
            raise GenzooError(
                f"'{path}' has {tokenizer.vocab_size} tokens but config.json's vocabulary has {levels}; "
                "restore the run's tokenizer.json or retrain"
            )
        self.tokenizer = tokenizer
