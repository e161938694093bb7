"""Applications built on the model contract: what generative models are used for."""

from genzoo.apps.anomaly import anomaly

__all__ = ["anomaly"]
