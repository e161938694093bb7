"""Base class of the time-series models: the series' schema travels in the config, as a table's does.

A series model sees windows (L, F) in the dataset's units (each feature min-max scaled, see
`genzoo.data.series`) and returns windows in the same units. The schema (features, time column,
frequency, the scaler) is saved in `config.json` and as `series.json` beside the weights, so
`genzoo sample` and `genzoo forecast` turn values back into the series' own units without the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from genzoo.data.base import DataInfo
from genzoo.data.series import SeriesSchema
from genzoo.errors import GenzooError
from genzoo.models.base import GenerativeModel, ModelConfig, atomic_write_text

SCHEMA_FILE = "series.json"


@dataclass
class SeriesModelConfig(ModelConfig):
    """The data fields, plus the series' schema as JSON (filled from the data, like data_shape)."""

    data_shape: tuple[int, ...] = (24, 1)
    data_levels: int | None = None
    data_low: float = 0.0
    data_high: float = 1.0
    series: str = ""


class SeriesModel(GenerativeModel):
    """A model of windows of a series; `schema` is None only for a model built by hand."""

    Config: ClassVar[type[ModelConfig]] = SeriesModelConfig
    modalities: ClassVar[tuple[str, ...]] = ("series",)
    output = "series"

    @classmethod
    def for_data(cls, info: DataInfo, **overrides: Any) -> SeriesModel:
        if info.modality != "series":
            raise GenzooError(
                f"model '{cls.name}' handles time series, but '{info.name}' is {info.modality} data; "
                "give a series CSV (a time column and value columns) or a series name such as 'sines'"
            )
        return super().for_data(info, series=info.series or "", **overrides)  # type: ignore[return-value]

    @property
    def schema(self) -> SeriesSchema | None:
        text = self.config.series  # type: ignore[attr-defined]
        return SeriesSchema.from_json(text, "the run's series schema") if text else None

    def save_extra(self, directory: Path) -> None:
        if self.config.series:  # type: ignore[attr-defined]
            atomic_write_text(Path(directory) / SCHEMA_FILE, self.config.series)  # type: ignore[attr-defined]
