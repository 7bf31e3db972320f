"""blobsift in napari: a reader, a writer and a dock widget (an npe2 plugin).

Install with ``pip install 'blobsift[napari]'``; napari finds the plugin through the
``napari.manifest`` entry point (``napari.yaml`` here). In napari:

- **File > Open** a project folder or a predictions/candidates table
  (:mod:`blobsift.napari._reader`);
- **File > Save Selected Layers** of a Points layer as ``.csv`` writes a candidate list
  for ``blobsift import-candidates`` (:mod:`blobsift.napari._writer`);
- **Plugins > blobsift: sift candidates** opens the widget (detect, label, train,
  predict; :class:`~blobsift.napari._widget.SiftWidget`).

Modules: :mod:`~blobsift.napari._reader` and :mod:`~blobsift.napari._writer` (files),
:mod:`~blobsift.napari._layers` (layer data of blobsift tables and back, without napari),
:mod:`~blobsift.napari._widget` (the dock widget) and :mod:`~blobsift.napari._training`
(its train and predict steps). Importing this package imports neither napari nor Qt; the
widget modules do.
"""
