"""Prediction from a model file's exported graph alone: the same scores, and no torch."""

import hashlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from blobsift import CNNClassifier, InvalidInputError, ModelFileError, Sifter
from blobsift.batch import check_run
from blobsift.classify.context import ContextHead
from blobsift.classify.graph_model import GraphModel, load_predictor
from blobsift.nn.serialize import INTEGRITY_KEY
from blobsift.simulate import simulate_crops

SIAMESE = {"siamese__finetune_steps": 5, "siamese__augment": False, "siamese__n_folds": 2}
CNN = {"epochs": 2, "n_folds": 2, "refit": False}
MODELS = {
    "cnn ensemble": {"phase": "cnn", **CNN},
    "cnn refit alone": {"phase": "cnn", **CNN, "predict_with": "refit"},
    "siamese": {"phase": "siamese", **SIAMESE},
}


@pytest.fixture(scope="module")
def data():
    return simulate_crops(40, seed=3)


@pytest.fixture(scope="module", params=list(MODELS))
def saved(request, data, tmp_path_factory):
    fitted = Sifter(random_state=0, **MODELS[request.param]).fit(data.crops, data.labels)
    stem = tmp_path_factory.mktemp("model") / "model"
    fitted.save(stem)
    return stem


@pytest.fixture(scope="module")
def cnn_file(data, tmp_path_factory):
    fitted = Sifter(phase="cnn", random_state=0, **CNN).fit(data.crops, data.labels)
    stem = tmp_path_factory.mktemp("cnn") / "model"
    fitted.save(stem)
    return stem


def test_the_graph_gives_the_probabilities_of_the_full_model(saved, data):
    predictor = load_predictor(saved)
    full = Sifter.load(saved)
    assert isinstance(predictor, GraphModel)
    assert predictor.kind_ == full.phase_
    expected = full.predict_proba(data.crops)
    np.testing.assert_allclose(predictor.predict_proba(data.crops), expected, atol=1e-5)
    assert predictor.threshold_ == full.threshold_
    np.testing.assert_array_equal(predictor.predict(data.crops), full.predict(data.crops))
    predictor.limit_threads(1)
    np.testing.assert_allclose(predictor.decision_function(data.crops), expected[:, 1], atol=1e-5)


def test_a_saved_phase_classifier_loads_as_a_graph_model_too(data, tmp_path):
    cnn = CNNClassifier(random_state=0, **CNN).fit(data.crops, data.labels)
    cnn.save(tmp_path / "cnn")
    predictor = load_predictor(tmp_path / "cnn")
    assert isinstance(predictor, GraphModel)
    np.testing.assert_allclose(
        predictor.predict_proba(data.crops), cnn.predict_proba(data.crops), atol=1e-5
    )


def test_channels_and_intensity_context_are_the_full_models(tmp_path):
    triplets = simulate_crops(40, seed=5)
    crops = np.stack([triplets.crops, triplets.crops * 0.5, triplets.crops + 3.0], axis=1)
    fitted = Sifter(phase="cnn", random_state=0, **CNN).fit(crops, triplets.labels)
    head = ContextHead(np.zeros(7), np.ones(7), np.linspace(-1.0, 1.0, 7), 0.2)
    fitted.context_ = fitted.estimator_.context_ = head  # as a fit that kept it leaves it
    fitted.save(tmp_path / "model")
    predictor = load_predictor(tmp_path / "model")
    full = Sifter.load(tmp_path / "model")
    assert predictor.n_channels_ == 3
    assert predictor.intensity_context_
    noise = np.random.default_rng(0).uniform(1.0, 5.0, size=(len(crops), 3))
    np.testing.assert_allclose(
        predictor.predict_proba(crops, noise=noise),
        full.predict_proba(crops, noise=noise),
        atol=1e-5,
    )
    with pytest.raises(InvalidInputError, match="noise="):
        predictor.predict_proba(crops)
    with pytest.raises(InvalidInputError, match=r"trained on crops of 3 channel"):
        predictor.predict_proba(triplets.crops, noise=noise[:, 0])


def test_loading_and_predicting_never_import_torch(saved):
    code = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from blobsift.classify.graph_model import GraphModel, load_predictor
        predictor = load_predictor({str(saved)!r})
        scores = predictor.predict_proba(np.random.default_rng(0).normal(size=(5, 64, 64)))
        assert isinstance(predictor, GraphModel) and scores.shape == (5, 2)
        print(sorted(m for m in ("torch", "torchvision") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_batch_runs_load_the_graph_model(cnn_file):
    model, _ = check_run(cnn_file, None, {})
    assert isinstance(model, GraphModel)


def _copy(stem, folder):
    for suffix in (".safetensors", ".json"):
        source = stem.with_name(stem.name + suffix)
        (folder / f"model{suffix}").write_bytes(source.read_bytes())
    return folder / "model"


def _edit(stem, edit, checksums=True):
    """Apply ``edit`` to the stored arrays; then record their checksums again (a forger's
    edit) or, with ``checksums=False``, keep the old ones."""
    weights, config = stem.with_name("model.safetensors"), stem.with_name("model.json")
    tensors = load_file(weights)
    edit(tensors)
    save_file(tensors, weights)
    if checksums:
        document = json.loads(config.read_text())
        document[INTEGRITY_KEY] = {
            "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
            "graphs_sha256": {
                name: hashlib.sha256(value.tobytes()).hexdigest()
                for name, value in tensors.items()
                if name.endswith("onnx_graph")
            },
        }
        config.write_text(json.dumps(document))


def _flip_a_graph_byte(tensors):
    graph = tensors["onnx_graph"].copy()
    graph[len(graph) // 2] ^= 0xFF
    tensors["onnx_graph"] = graph


def _garbage_graph(tensors):
    tensors["onnx_graph"] = np.frombuffer(b"not an onnx graph", dtype=np.uint8).copy()


def _drop_graph(tensors):
    del tensors["onnx_graph"]


def test_a_changed_graph_is_refused_by_its_checksum(cnn_file, tmp_path):
    stem = _copy(cnn_file, tmp_path)
    _edit(stem, _flip_a_graph_byte, checksums=False)
    with pytest.raises(ModelFileError, match="does not match the sha256"):
        load_predictor(stem)


def test_a_graph_that_cannot_run_is_refused_naming_the_file(cnn_file, tmp_path):
    stem = _copy(cnn_file, tmp_path)
    _edit(stem, _garbage_graph)
    with pytest.raises(ModelFileError, match=r"model\.safetensors cannot be run"):
        load_predictor(stem)


def test_a_file_without_a_graph_is_loaded_in_full(cnn_file, data, tmp_path):
    stem = _copy(cnn_file, tmp_path)
    _edit(stem, _drop_graph)
    predictor = load_predictor(stem, threads=1)
    assert isinstance(predictor, Sifter)
    expected = Sifter.load(cnn_file).predict_proba(data.crops)
    np.testing.assert_allclose(predictor.predict_proba(data.crops), expected, atol=1e-5)


def test_a_format_1_file_is_loaded_in_full_its_graph_unused(cnn_file, data, tmp_path):
    stem = _copy(cnn_file, tmp_path)
    _edit(stem, _garbage_graph, checksums=False)
    config = stem.with_name("model.json")
    document = json.loads(config.read_text())
    document.pop(INTEGRITY_KEY)  # format 1 recorded no checksums: its graphs are dropped
    config.write_text(json.dumps({**document, "format_version": 1}))
    predictor = load_predictor(stem)
    assert isinstance(predictor, Sifter)
    expected = Sifter.load(cnn_file).predict_proba(data.crops)
    np.testing.assert_allclose(predictor.predict_proba(data.crops), expected, atol=1e-5)


def test_a_file_of_another_kind_is_refused(cnn_file, tmp_path):
    stem = _copy(cnn_file, tmp_path)
    config = stem.with_name("model.json")
    document = json.loads(config.read_text())
    document["kind"] = "forest"
    config.write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match="'forest' model"):
        load_predictor(stem)


def test_a_value_fit_could_not_have_produced_is_refused_naming_its_key(cnn_file, tmp_path):
    stem = _copy(cnn_file, tmp_path)
    config = stem.with_name("model.json")
    document = json.loads(config.read_text())
    document["estimator"]["architecture"]["config"]["crop_size"] = -4
    config.write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match=r"estimator\.architecture\.config\.crop_size"):
        load_predictor(stem)
