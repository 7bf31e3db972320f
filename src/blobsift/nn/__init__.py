"""The PyTorch parts of blobsift: networks, their training, files and inference.

Layer 3, with :mod:`blobsift.classify`; torch is imported only in these two packages
(and not by :mod:`~blobsift.nn.runtime`, :mod:`~blobsift.nn.threads` or
:mod:`~blobsift.nn.serialize` until a function needs it).

Modules
-------
models
    The networks: :class:`SignalClassifier` (the specification's ``nn.Module``) and
    :class:`CropEncoder`, and rebuilding them from a model file's description.
loop
    The one epoch loop (:func:`~blobsift.nn.loop.run_epochs`) over
    :class:`~blobsift.nn.loop.Trainer` objects, with early stopping, best-state restore
    and :class:`~blobsift.types.ProgressEvent` progress; :func:`~blobsift.nn.loop.seeded`.
train
    The specification's :func:`train_classifier` and :func:`evaluate_classifier`.
contrastive
    Phase 1's training: self-supervised pre-training and the pair loss on labels.
losses
    Focal loss.
data
    Label tensors, class-balanced sampling, and :func:`network_input` (raw crops to the
    network's input tensor, via :func:`blobsift.crops.normalise_crops`).
augment
    Label-preserving, seeded augmentation of raw crops.
onnx
    Exporting a network to ONNX, and checking a stored graph against its weights.
runtime
    Running an exported graph on onnxruntime (:class:`~blobsift.nn.runtime.OnnxRunner`),
    without torch.
threads
    How many cores torch and onnxruntime use.
serialize
    Model files: safetensors weights and a JSON description, checked on load (read as
    numpy arrays, without torch, for prediction from the stored graphs).
"""
