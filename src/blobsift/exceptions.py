"""The one exception tree of blobsift.

Every error blobsift raises on purpose derives from :class:`BlobsiftError`, and each
specific error also derives from the built-in exception a caller would catch anyway::

    BlobsiftError (Exception)
    ├── InvalidInputError (ValueError)      wrong shape, NaN/inf, bad labels, bad parameter
    │   └── SingleClassError                labels hold only one class where two are needed
    ├── NotFittedError (ValueError, AttributeError)
    │                                       predict/save before fit
    ├── ModelFileError (ValueError)         a corrupt, altered, foreign or incompatible
    │                                       model file
    ├── ImageReadError (OSError)            an image that is missing, unreadable or unusable
    ├── OutputError (OSError)               an output file that cannot be written there (a
    │                                       folder, an unwritable place, a full disk)
    └── ProjectError (OSError)              a project folder that is missing, not a blobsift
        │                                   project, written by a newer blobsift, or without
        │                                   the model (file) asked for
        └── ImageChangedError               a project image that moved or whose content
                                            changed on disk since it was added
"""

from __future__ import annotations

__all__ = [
    "BlobsiftError",
    "ImageChangedError",
    "ImageReadError",
    "InvalidInputError",
    "ModelFileError",
    "NotFittedError",
    "OutputError",
    "ProjectError",
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
    """A model file is corrupt, foreign, or was written by an incompatible version.

    Also raised when its weights or graph do not match the checksums its JSON records, a
    value in the JSON is not one ``fit`` could produce, or it is not the model a project
    recorded under its id.
    """


class ImageReadError(BlobsiftError, OSError):
    """An image file is missing, unreadable, or holds data that is not a 2D image."""


class OutputError(BlobsiftError, OSError):
    """An output file cannot be written at the path given (a folder, not writable, disk full).

    Nothing is left behind: no partial file under the final name, no temporary file.
    """


class ProjectError(BlobsiftError, OSError):
    """A project folder is missing, not a blobsift project, too new, or lacks a model asked for."""


class ImageChangedError(ProjectError):
    """A project image moved or its content changed on disk since it was added.

    Its recorded content hash no longer matches (or the file is gone), so its candidates
    and labels would silently describe other pixels; blobsift refuses to use it.
    """
