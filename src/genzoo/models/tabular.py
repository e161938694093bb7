"""Base class of the table models: the schema travels in the config, conditions are one code path.

A table model sees rows as `genzoo.data.tabular` encodes them (one float per column: numbers in
their units, NaN when missing, category indices) and returns rows in the same form;
`TableSchema.decode` turns them into a DataFrame with the input's columns, dtypes and categories.

Conditional sampling (`where={"sex": "Female", "income": ">50K"}`) goes through `sample_rows`,
which each family implements with what it can do exactly (CTGAN's conditional vector, the copula's
conditional Gaussian, diffusion's replacement of the known columns); whatever a family cannot
condition on natively it conditions by rejection, with a fixed budget of draws. Rows that still
miss a condition after that budget get the asked values set directly, and `last_where_report` says
how many: `sample` never gives up and never returns a row that breaks a condition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from genzoo.data.base import DataInfo
from genzoo.data.tabular import TableSchema
from genzoo.errors import GenzooError
from genzoo.models.base import GenerativeModel, ModelConfig, atomic_write_text

SCHEMA_FILE = "table.json"  # the schema, readable as --set metadata=RUN/table.json
REJECTION_ROUNDS = 20  # draws of up to n rows each before asked values are set directly


@dataclass
class TableModelConfig(ModelConfig):
    """The data fields, plus the table's schema as JSON (filled from the data, like data_shape)."""

    data_shape: tuple[int, ...] = (1,)
    data_levels: int | None = None
    data_low: float = 0.0
    data_high: float = 1.0
    table: str = ""


class TableModel(GenerativeModel):
    """A model of table rows; subclasses implement `loss` and `sample_rows`."""

    Config: ClassVar[type[ModelConfig]] = TableModelConfig
    modalities: ClassVar[tuple[str, ...]] = ("table",)
    output = "table"
    # Whether `sample_rows` honours conditions itself; otherwise the base conditions by rejection.
    native_conditions: ClassVar[bool] = False

    def __init__(self, config: TableModelConfig):
        super().__init__(config)
        if not config.table:
            raise GenzooError(f"model '{self.name}' models tables; train it on a CSV file or 'adult'")
        self.schema = TableSchema.from_json(config.table)
        self.last_where_report: dict[str, Any] = {}

    @classmethod
    def for_data(cls, info: DataInfo, **overrides: Any) -> TableModel:
        if info.modality != "table" or info.table is None:
            raise GenzooError(
                f"model '{cls.name}' handles table data, but '{info.name}' is {info.modality} data; "
                "give a .csv file or 'adult'"
            )
        return super().for_data(info, table=info.table, **overrides)  # type: ignore[return-value]

    # ---- sampling ----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator | None = None,
        where: dict[str, Any] | str | None = None,
        **options: Any,
    ) -> torch.Tensor:
        """`n` rows (n, columns) in the schema's encoding; `where` fixes columns to values
        (`{"sex": "Female"}` or "sex=Female,age=40"); reproducible for a seeded `generator`."""
        conditions = self.schema.where_codes(where) if where else {}
        with self.inference():
            if not conditions or self.native_conditions:
                rows = self.sample_rows(n, generator, conditions, **options)
            else:
                rows = self._by_rejection(n, generator, conditions, options)
        missed = self._misses(rows, conditions)
        for j, value in conditions.items():
            rows[:, j] = value
        self.last_where_report = {"conditions": len(conditions), "rows_set_directly": int(missed.sum())}
        return rows

    def sample_rows(
        self, n: int, generator: torch.Generator | None, conditions: dict[int, float], **options: Any
    ) -> torch.Tensor:
        """`n` rows; a family with `native_conditions` draws them given `conditions` ({column: value})."""
        raise NotImplementedError

    def _misses(self, rows: torch.Tensor, conditions: dict[int, float]) -> torch.Tensor:
        """Rows that break some condition: a category or whole number not the one asked for; a
        continuous value or a date always (no draw hits one exactly, so it is set directly)."""
        missed = torch.zeros(len(rows), dtype=torch.bool, device=rows.device)
        for j, value in conditions.items():
            kind = self.schema.columns[j].kind
            if kind in ("continuous", "datetime"):
                missed |= True
            else:
                missed |= rows[:, j].round() != value
        return missed

    def _by_rejection(
        self, n: int, generator: torch.Generator | None, conditions: dict[int, float], options: dict
    ) -> torch.Tensor:
        """`n` rows that meet the discrete conditions, drawn in rounds sized by the rate seen so far;
        after `REJECTION_ROUNDS` the rest are plain draws (their asked values are then set)."""
        discrete = {
            j: v
            for j, v in conditions.items()
            if self.schema.columns[j].kind not in ("continuous", "datetime")
        }
        kept: list[torch.Tensor] = []
        have, drawn, batch = 0, 0, max(n, 256)
        for _ in range(REJECTION_ROUNDS if discrete else 0):
            rows = self.sample_rows(batch, generator, {}, **options)
            ok = ~self._misses(rows, discrete)
            kept.append(rows[ok])
            have, drawn = have + int(ok.sum()), drawn + batch
            if have >= n:
                break
            # A rare condition: draw more per round, up to 64 n rows.
            batch = min(64 * max(n, 256), math.ceil((n - have) * drawn / max(have, 1) * 1.2))
        rows = torch.cat(kept)[:n] if kept else torch.empty(0)
        if len(rows) < n:
            rest = self.sample_rows(n - len(rows), generator, {}, **options)
            rows = torch.cat([rows.to(rest), rest]) if len(rows) else rest
        return rows

    # ---- files beside the weights ----------------------------------------------------------------
    def save_extra(self, directory: Path) -> None:
        atomic_write_text(Path(directory) / SCHEMA_FILE, self.schema.to_json())
