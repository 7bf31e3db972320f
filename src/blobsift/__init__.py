"""blobsift: sift the real signals out of blob-detector candidates with few labels.

``import blobsift`` is cheap: torch, dask and the web stack load only when a name that
needs them is first used.
"""

import importlib as _importlib
import os as _os
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from blobsift._version import __version__

# torch's intra-op pool is OpenMP, whose idle threads spin by default. Two processes on the
# same cores then starve each other: two 2-thread fits on 2 cores each took 7x as long as
# one alone, 1.1x with sleeping threads (benchmarks/contention.py). Sleeping costs a fit
# alone nothing measurable. OpenMP reads this when torch loads, so it is set here, before any
# blobsift module imports torch; a value the user chose is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Public name -> module that defines it (loaded on first access).
_LAZY = {
    "BlobsiftError": "blobsift.exceptions",
    "Candidates": "blobsift.types",
    "CNNClassifier": "blobsift.classify.cnn",
    "FocalLoss": "blobsift.nn.losses",
    "ImageChangedError": "blobsift.exceptions",
    "ImageReadError": "blobsift.exceptions",
    "InvalidInputError": "blobsift.exceptions",
    "ModelFileError": "blobsift.exceptions",
    "NotFittedError": "blobsift.exceptions",
    "OutputError": "blobsift.exceptions",
    "Project": "blobsift.project",
    "ProjectError": "blobsift.exceptions",
    "SiameseClassifier": "blobsift.classify.siamese",
    "SignalClassifier": "blobsift.nn.models",
    "Sifter": "blobsift.classify.sifter",
    "SingleClassError": "blobsift.exceptions",
    "balance_dataset": "blobsift.nn.data",
    "create_weighted_sampler": "blobsift.nn.data",
    "detect_blobs": "blobsift.detect",
    "evaluate_classifier": "blobsift.nn.train",
    "export_points": "blobsift.export",
    "export_project": "blobsift.export",
    "extract_crops": "blobsift.crops",
    "predict_images": "blobsift.batch",
    "read_candidates": "blobsift.io",
    "read_image": "blobsift.io",
    "recommend_phase": "blobsift.classify.phases",
    "train_classifier": "blobsift.nn.train",
}

__all__ = [
    "BlobsiftError",
    "CNNClassifier",
    "Candidates",
    "FocalLoss",
    "ImageChangedError",
    "ImageReadError",
    "InvalidInputError",
    "ModelFileError",
    "NotFittedError",
    "OutputError",
    "Project",
    "ProjectError",
    "SiameseClassifier",
    "Sifter",
    "SignalClassifier",
    "SingleClassError",
    "__version__",
    "balance_dataset",
    "create_weighted_sampler",
    "detect_blobs",
    "evaluate_classifier",
    "export_points",
    "export_project",
    "extract_crops",
    "predict_images",
    "read_candidates",
    "read_image",
    "recommend_phase",
    "train_classifier",
]

if _TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from blobsift.batch import predict_images
    from blobsift.classify.cnn import CNNClassifier
    from blobsift.classify.phases import recommend_phase
    from blobsift.classify.siamese import SiameseClassifier
    from blobsift.classify.sifter import Sifter
    from blobsift.crops import extract_crops
    from blobsift.detect import detect_blobs
    from blobsift.exceptions import (
        BlobsiftError,
        ImageChangedError,
        ImageReadError,
        InvalidInputError,
        ModelFileError,
        NotFittedError,
        OutputError,
        ProjectError,
        SingleClassError,
    )
    from blobsift.export import export_points, export_project
    from blobsift.io import read_candidates, read_image
    from blobsift.nn.data import balance_dataset, create_weighted_sampler
    from blobsift.nn.losses import FocalLoss
    from blobsift.nn.models import SignalClassifier
    from blobsift.nn.train import evaluate_classifier, train_classifier
    from blobsift.project import Project
    from blobsift.types import Candidates


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'blobsift' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
