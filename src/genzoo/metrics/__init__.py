"""Metrics over tensors: likelihood (nll/bpd/bpc), sample quality (FID/KID/IS/precision-recall),
diversity diagnostics and the feature extractors they look through; and over tables (DataFrames):
quality, detection, ML efficacy and privacy.

Metrics take tensors, tables (or a loaded model for likelihoods), never a run directory.
"""

from genzoo.metrics.diversity import class_coverage, memorization, modes_covered
from genzoo.metrics.features import (
    ClassifierConfig,
    DomainClassifier,
    FeatureExtractor,
    ModuleFeatures,
    classifier_cache_dir,
    domain_classifier_for,
    train_domain_classifier,
)
from genzoo.metrics.fid import GaussianStats, frechet_distance, frechet_distance_from_stats
from genzoo.metrics.inception import InceptionV3FID
from genzoo.metrics.inception_score import inception_score
from genzoo.metrics.kid import kernel_inception_distance, mmd2_unbiased
from genzoo.metrics.likelihood import (
    bits_per_char,
    bits_per_dim,
    discrete_nll_from_density,
    evaluate_nll,
    loss_per_token,
)
from genzoo.metrics.precision_recall import knn_radii, precision_recall
from genzoo.metrics.quality import QUALITY_METRICS, sample_quality
from genzoo.metrics.tabular import (
    TABLE_METRICS,
    detection_auc,
    ml_efficacy,
    privacy,
    quality_report,
    table_metrics,
)

__all__ = [
    "QUALITY_METRICS",
    "TABLE_METRICS",
    "ClassifierConfig",
    "DomainClassifier",
    "FeatureExtractor",
    "GaussianStats",
    "InceptionV3FID",
    "ModuleFeatures",
    "bits_per_char",
    "bits_per_dim",
    "class_coverage",
    "detection_auc",
    "discrete_nll_from_density",
    "classifier_cache_dir",
    "domain_classifier_for",
    "evaluate_nll",
    "frechet_distance",
    "frechet_distance_from_stats",
    "inception_score",
    "kernel_inception_distance",
    "knn_radii",
    "loss_per_token",
    "memorization",
    "ml_efficacy",
    "mmd2_unbiased",
    "modes_covered",
    "precision_recall",
    "privacy",
    "quality_report",
    "sample_quality",
    "table_metrics",
    "train_domain_classifier",
]
