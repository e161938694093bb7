"""Applications built on the model contract: what generative models are used for."""

from genzoo.apps.anomaly import anomaly
from genzoo.apps.compression import compress, decompress
from genzoo.apps.forecast import forecast

__all__ = ["anomaly", "compress", "decompress", "forecast"]
