"""genzoo: train, sample, evaluate and compare every family of deep generative models.

Every command is one call here: `genzoo.train`, `genzoo.sample`, `genzoo.inpaint`,
`genzoo.evaluate`, `genzoo.anomaly`, `genzoo.compress`, `genzoo.decompress`, `genzoo.forecast`,
`genzoo.compare`,
`genzoo.load`; each returns objects and writes files only
when asked (the run directory `train` makes, `out=` for the others).
"""

from genzoo.apps import anomaly, compress, decompress, forecast
from genzoo.data import load_dataset
from genzoo.evaluation import evaluate_run as evaluate
from genzoo.models import GenerativeModel, get_model_class, load, model_names
from genzoo.report.compare import compare
from genzoo.sampling import inpaint, sample
from genzoo.train.run import train  # the function; the subpackage stays importable as genzoo.train.*
from genzoo.version import __version__

__all__ = [
    "GenerativeModel",
    "__version__",
    "anomaly",
    "compare",
    "compress",
    "decompress",
    "evaluate",
    "forecast",
    "get_model_class",
    "inpaint",
    "load",
    "load_dataset",
    "model_names",
    "sample",
    "train",
]
