"""A blobsift project: a folder's database composed with detection, crops and models.

:class:`Project` is what the command line, the labelling app and napari work through. It
keeps the rules of a project (an image is hash-checked before it is read, a label belongs
to a position and survives re-detection, every write is one transaction) and leaves each
step to its one home: SQL to :mod:`blobsift.store`, detection settings to
:class:`~blobsift.detect.DetectSettings`, positions to :mod:`blobsift.positions`, crops
to :func:`~blobsift.crops.crops_for`, scoring to :mod:`blobsift.scoring`, training to
:class:`~blobsift.Sifter`.

Modules
-------
_base
    Opening and making a project folder; shared argument checks.
_images
    Images (added, hash-checked, read, relocated), detection and candidates.
_labels
    Label events: checked, placed on positions, undone; the label log.
_label_files
    Importing (replay-safe) and exporting label CSV files.
_train
    Training data, training, model versions and loading them.
_predict
    Prediction over project images and others; recorded predictions.
_project
    :class:`Project` itself and its summary (:meth:`Project.info`).
"""

from blobsift.project._project import Project
from blobsift.store import (
    DB_NAME,
    AlreadyImportedWarning,
    ImageRecord,
    LabelConflictWarning,
    ModelRecord,
    default_who,
)

__all__ = [
    "DB_NAME",
    "AlreadyImportedWarning",
    "ImageRecord",
    "LabelConflictWarning",
    "ModelRecord",
    "Project",
    "default_who",
]
