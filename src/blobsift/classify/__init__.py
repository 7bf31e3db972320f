"""Classifiers of candidate crops, with scikit-learn's estimator contract.

Layer 3: built on :mod:`blobsift.nn` (the only other place torch is imported), on
:mod:`blobsift.crops`, :mod:`blobsift.metrics` and :mod:`blobsift.splits`.

Every estimator stores its constructor arguments unchanged (``get_params`` /
``set_params``, so ``sklearn.base.clone`` works), checks them in ``fit``, returns ``self``
from ``fit``, leaves torch's global random state as it found it, reports progress as
:class:`~blobsift.types.ProgressEvent` and names its ranking score ``decision_function``.

Modules
-------
base
    :class:`CropScorer`, the prediction half every model shares (numpy only), and
    :class:`CropClassifier`: parameters, input checks, threshold choice, model files.
graph_model
    :func:`load_predictor`: a saved model that predicts from its exported graph on
    onnxruntime, without torch (:class:`GraphModel`).
sifter
    :class:`~blobsift.Sifter`: the estimator users fit; it picks the learning phase.
phases
    When to move from Phase 1 to Phase 2, from the phase history.
siamese
    Phase 1: :class:`SiameseClassifier`, an encoder and a gallery of labelled embeddings.
pretraining
    :class:`PretrainedEncoders`: the explicit cache of Phase 1's pre-trained encoders.
gallery
    Gallery scores, neighbours and the stored gallery's checks (numpy only).
cnn
    Phase 2: :class:`CNNClassifier`, a cross-validated ensemble of direct CNNs.
baselines
    The trivial baselines a learner must beat (a brightness cut, a feature forest);
    numpy, scipy and scikit-learn, no torch.
"""
