"""`genzoo compare`: every model on the same data and budget, measured alike, with a report that
says which to pick and why (compare.py runs it, recommend.py ranks, html.py writes the page, with
tables.py drawing a table's columns)."""

from genzoo.report.compare import CompareConfig, compare, run_compare
from genzoo.report.recommend import PRIORITIES, rank, recommend

__all__ = ["PRIORITIES", "CompareConfig", "compare", "rank", "recommend", "run_compare"]
