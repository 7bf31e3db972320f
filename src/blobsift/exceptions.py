"""The one exception tree of blobsift.

Every error blobsift raises on purpose derives from :class:`BlobsiftError`, and each
specific error also derives from the built-in exception a caller would catch anyway::

    BlobsiftError (Exception)
    ├── InvalidInputError (ValueError)      wrong shape, NaN/inf, bad labels, bad parameter
    │   └── SingleClassError                labels hold only one class where two are needed
    ├── NotFittedError (ValueError, AttributeError)
    │                                       predict/save before fit
    ├── ModelFileError (ValueError)         a corrupt, foreign or incompatible model file
    └── ImageReadError (OSError)            an image that is missing, unreadable or unusable
"""

from __future__ import annotations

__all__ = [
    "BlobsiftError",
    "ImageReadError",
    "InvalidInputError",
    "ModelFileError",
    "NotFittedError",
    "SingleClassError",
]


class BlobsiftError(Exception):
    """Base class of every error blobsift raises on purpose."""


class InvalidInputError(BlobsiftError, ValueError):
    """An argument has the wrong shape, type, value or content."""


class SingleClassError(InvalidInputError):
    """Labels hold only one class where both signal (1) and noise (0) are needed."""


class NotFittedError(BlobsiftError, ValueError, AttributeError):
    """A model was used before ``fit`` (or ``load``)."""


class ModelFileError(BlobsiftError, ValueError):
    """A model file is corrupt, foreign, or was written by an incompatible version."""


class ImageReadError(BlobsiftError, OSError):
    """An image file is missing, unreadable, or holds data that is not a 2D image."""
