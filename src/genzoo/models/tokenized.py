"""Base class of the text models: the tokenizer travels with the weights (`tokenizer.json` in the run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genzoo.data.base import DataInfo
from genzoo.data.text import Tokenizer, tokenizer_from_json
from genzoo.models.base import GenerativeModel, ModelConfig

TOKENIZER_FILE = "tokenizer.json"


class TokenizedModel(GenerativeModel):
    """A model over token ids whose tokenizer comes from the data and is saved beside its weights."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.tokenizer: Tokenizer | None = None

    @classmethod
    def for_data(cls, info: DataInfo, **overrides: Any) -> TokenizedModel:
        model = super().for_data(info, **overrides)
        model.tokenizer = tokenizer_from_json(info.tokenizer) if info.tokenizer else None
        return model

    def save_extra(self, directory: Path) -> None:
        if self.tokenizer is not None:
            (directory / TOKENIZER_FILE).write_text(self.tokenizer.to_json())

    def load_extra(self, directory: Path) -> None:
        path = directory / TOKENIZER_FILE
        if path.is_file():
            self.tokenizer = tokenizer_from_json(path.read_text())
