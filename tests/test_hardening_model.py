"""Model files: what is loaded is what was saved, and every value in them is checked."""

import hashlib
import json
import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from blobsift import ModelFileError, Sifter
from blobsift.nn.serialize import INTEGRITY_KEY
from blobsift.project import Project
from blobsift.simulate import simulate_crops
from project_helpers import write_images

TINY = {"siamese__finetune_steps": 5, "siamese__augment": False, "siamese__n_folds": 2}


@pytest.fixture(scope="module")
def data():
    return simulate_crops(40, seed=3)


def _saved(fitted, folder):
    fitted.save(folder / "model")
    return folder / "model"


@pytest.fixture(scope="module")
def siamese_file(data, tmp_path_factory):
    fitted = Sifter(phase="siamese", random_state=0, **TINY).fit(data.crops, data.labels)
    return _saved(fitted, tmp_path_factory.mktemp("siamese"))


@pytest.fixture(scope="module")
def other_siamese_file(data, tmp_path_factory):
    fitted = Sifter(phase="siamese", random_state=1, **TINY).fit(data.crops, data.labels)
    return _saved(fitted, tmp_path_factory.mktemp("other"))


@pytest.fixture(scope="module")
def pretrained_file(data, tmp_path_factory):
    fitted = Sifter(phase="siamese", random_state=0, siamese__pretrain_steps=2, **TINY)
    fitted.fit(data.crops, data.labels, unlabeled=data.crops)
    assert fitted.gallery_.pretrain_state_ is not None
    return _saved(fitted, tmp_path_factory.mktemp("pretrained"))


@pytest.fixture(scope="module")
def cnn_file(data, tmp_path_factory):
    fitted = Sifter(phase="cnn", random_state=0, epochs=2, n_folds=2, refit=False)
    return _saved(fitted.fit(data.crops, data.labels), tmp_path_factory.mktemp("cnn"))


def _copy(stem, folder):
    for suffix in (".safetensors", ".json"):
        shutil.copy(stem.with_name(stem.name + suffix), folder / f"model{suffix}")
    return folder / "model", folder / "model.safetensors", folder / "model.json"


def _edit_json(path, edit):
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))


def _edit_tensors(weights, config, edit, *, fix_checksums):
    """Rewrite the weights; with ``fix_checksums`` also the JSON's sha256 (a careful forger)."""
    tensors = load_file(weights)
    edit(tensors)
    save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, weights)
    if fix_checksums:

        def refresh(document):
            integrity = document[INTEGRITY_KEY]
            integrity["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
            for name in integrity["graphs_sha256"]:
                graph = tensors[name].numpy().tobytes()
                integrity["graphs_sha256"][name] = hashlib.sha256(graph).hexdigest()

        _edit_json(config, refresh)


def _zero_encoder(tensors):
    for name in list(tensors):
        if name.startswith("encoder."):
            tensors[name] = tensors[name] * 0


# -- weights and graph are one verified unit -------------------------------------------------
def test_a_saved_file_records_the_sha256_of_its_weights_and_graph(siamese_file):
    document = json.loads(siamese_file.with_suffix(".json").read_text())
    weights = siamese_file.with_suffix(".safetensors").read_bytes()
    integrity = document[INTEGRITY_KEY]
    assert integrity["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    graph = load_file(siamese_file.with_suffix(".safetensors"))["onnx_graph"].numpy().tobytes()
    assert integrity["graphs_sha256"] == {"onnx_graph": hashlib.sha256(graph).hexdigest()}


def test_zeroed_weights_are_refused_naming_the_file(siamese_file, tmp_path):
    stem, weights, config = _copy(siamese_file, tmp_path)
    _edit_tensors(weights, config, _zero_encoder, fix_checksums=False)
    with pytest.raises(ModelFileError, match=r"model\.safetensors does not match the sha256"):
        Sifter.load(stem)


def test_another_models_graph_is_refused(siamese_file, other_siamese_file, tmp_path):
    stem, weights, config = _copy(siamese_file, tmp_path)
    foreign = load_file(other_siamese_file.with_suffix(".safetensors"))["onnx_graph"]

    def swap(tensors):
        tensors["onnx_graph"] = foreign

    _edit_tensors(weights, config, swap, fix_checksums=False)
    with pytest.raises(ModelFileError, match="sha256"):
        Sifter.load(stem)


def test_a_graph_that_disagrees_with_its_weights_is_never_run(
    siamese_file, other_siamese_file, data, tmp_path
):
    stem, weights, config = _copy(siamese_file, tmp_path)
    foreign = load_file(other_siamese_file.with_suffix(".safetensors"))["onnx_graph"]

    def swap(tensors):
        tensors["onnx_graph"] = foreign

    _edit_tensors(weights, config, swap, fix_checksums=True)  # checksums agree again
    loaded = Sifter.load(stem)
    with pytest.raises(ModelFileError, match=r"ONNX graph stored in .*model\.safetensors"):
        loaded.predict_proba(data.crops[:4])


def test_zeroed_weights_under_fixed_checksums_are_caught_by_the_graph_check(
    siamese_file, data, tmp_path
):
    stem, weights, config = _copy(siamese_file, tmp_path)
    _edit_tensors(weights, config, _zero_encoder, fix_checksums=True)
    with pytest.raises(ModelFileError, match="does not compute what its weights compute"):
        Sifter.load(stem).predict_proba(data.crops[:4])


def test_the_weights_alone_make_the_same_predictions_as_the_stored_graph(siamese_file, data):
    loaded = Sifter.load(siamese_file)
    on_graph = loaded.predict_proba(data.crops)
    assert loaded.estimator_.graph_.runner("auto") is not None  # the graph passed its check
    loaded.estimator_.set_params(backend="torch")
    np.testing.assert_allclose(loaded.predict_proba(data.crops), on_graph, atol=1e-5)


def test_a_graph_without_a_recorded_checksum_is_refused(siamese_file, tmp_path):
    stem, _, config = _copy(siamese_file, tmp_path)
    _edit_json(config, lambda d: d[INTEGRITY_KEY].update(graphs_sha256={}))
    with pytest.raises(ModelFileError, match="records"):
        Sifter.load(stem)


def test_a_missing_integrity_record_is_refused(siamese_file, tmp_path):
    stem, _, config = _copy(siamese_file, tmp_path)
    _edit_json(config, lambda d: d.pop(INTEGRITY_KEY))
    with pytest.raises(ModelFileError, match=INTEGRITY_KEY):
        Sifter.load(stem)


def test_a_format_1_file_predicts_from_its_weights_not_its_graph(
    siamese_file, other_siamese_file, data, tmp_path
):
    """Files of the first format have no checksums: their stored graph is never trusted."""
    stem, weights, config = _copy(siamese_file, tmp_path)
    foreign = load_file(other_siamese_file.with_suffix(".safetensors"))["onnx_graph"]

    def swap(tensors):
        tensors["onnx_graph"] = foreign

    _edit_tensors(weights, config, swap, fix_checksums=False)
    _edit_json(config, lambda d: (d.pop(INTEGRITY_KEY), d.update(format_version=1)))
    legacy = Sifter.load(stem).predict_proba(data.crops)
    expected = Sifter.load(siamese_file).predict_proba(data.crops)
    np.testing.assert_allclose(legacy, expected, atol=1e-5)


# -- every value in the JSON is checked ------------------------------------------------------
@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d["estimator"]["params"].update(k=0), "estimator.params.k"),
        (lambda d: d["estimator"]["params"].update(k=2.5), "estimator.params.k"),
        (lambda d: d["estimator"]["params"].update(temperature=0), "estimator.params.temperature"),
        (lambda d: d["estimator"]["params"].update(temperature=-1), "estimator.params.temperature"),
        (lambda d: d["estimator"]["params"].update(backend="gpu"), "estimator.params.backend"),
        (lambda d: d["estimator"]["params"].update(magic=1), "magic"),
        (lambda d: d.update(threshold=7.5), "threshold"),
        (lambda d: d["estimator"].update(threshold=-0.1), "estimator.threshold"),
        (lambda d: d["estimator"].update(threshold=0.25), "differs"),
        (lambda d: d["estimator"].update(threshold="0.5"), "estimator.threshold"),
        (lambda d: d["estimator"].update(kind="forest"), "estimator.kind"),
        (lambda d: d.update(phase="cnn"), "phase"),
        (lambda d: d["estimator"].pop("architecture"), "estimator.architecture"),
        (lambda d: d["estimator"]["architecture"].update(name="resnet"), "architecture.name"),
        (
            lambda d: d["estimator"]["architecture"]["config"].update(embedding_dim=16),
            "architecture.config",
        ),
        (lambda d: d["estimator"].update(metrics=[1]), "estimator.metrics"),
        (lambda d: d.update(phase_history=[[10, "high"]]), r"phase_history\[0\]"),
        (lambda d: d.update(phase_history=[[10]]), r"phase_history\[0\]"),
        (lambda d: d.update(phase_scores={"siamese": None}), "phase_scores.siamese"),
        (lambda d: d.update(params={"random_state": -3}), "params.random_state"),
        (lambda d: d.update(format_version="2"), "format_version"),
    ],
)
def test_a_bad_value_in_the_json_is_refused_naming_the_file_and_key(
    siamese_file, tmp_path, edit, key
):
    stem, _, config = _copy(siamese_file, tmp_path)
    _edit_json(config, edit)
    with pytest.raises(ModelFileError, match=key) as caught:
        Sifter.load(stem)
    assert "model.json" in str(caught.value)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t["gallery_embeddings"].fill_(float("nan")), "NaN"),
        (lambda t: t["gallery_embeddings"].mul_(3), "unit length"),
        (lambda t: t.update(gallery_embeddings=t["gallery_embeddings"][:, :5]), "shape"),
        (lambda t: t["gallery_labels"].fill_(1), "both classes"),
        (lambda t: t["gallery_labels"].add_(1), "0/1"),
        (lambda t: t.pop("gallery_labels"), "gallery_labels"),
        (lambda t: t.pop("encoder.head.1.weight"), "missing"),
        (lambda t: t["encoder.head.1.weight"].fill_(float("inf")), "NaN or inf"),
        (lambda t: t.update({"encoder.head.1.weight": t["encoder.head.1.weight"][:3]}), "size"),
    ],
)
def test_bad_tensors_are_refused_even_under_fixed_checksums(siamese_file, tmp_path, edit, match):
    stem, weights, config = _copy(siamese_file, tmp_path)
    _edit_tensors(weights, config, edit, fix_checksums=True)
    with pytest.raises(ModelFileError, match=match) as caught:
        Sifter.load(stem)
    assert "model.json" in str(caught.value)


def test_a_file_with_a_pretrained_encoder_loads_and_its_pretrained_weights_are_checked(
    pretrained_file, tmp_path
):
    loaded = Sifter.load(pretrained_file)
    assert "head.1.weight" in loaded.gallery_.pretrain_state_
    assert "head.4.weight" not in loaded.gallery_.pretrain_state_  # the last layer stays out
    stem, weights, config = _copy(pretrained_file, tmp_path)

    def poison(tensors):
        tensors["pretrained.head.1.weight"].fill_(float("nan"))

    _edit_tensors(weights, config, poison, fix_checksums=True)
    with pytest.raises(ModelFileError, match=r"pretrained\.\* weights hold NaN"):
        Sifter.load(stem)


def test_the_probabilities_of_a_loaded_model_are_finite(siamese_file, data):
    """The cases above used to load and then give NaN; a good file gives numbers."""
    probabilities = Sifter.load(siamese_file).predict_proba(data.crops)
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["estimator"].update(n_members=0), "estimator.n_members"),
        (lambda d: d["estimator"].update(n_members=5), "n_members is 5"),
        (lambda d: d["estimator"]["params"].update(epochs=0), "estimator.params.epochs"),
        (lambda d: d["estimator"]["architecture"].update(name="crop_encoder"), "name"),
        (lambda d: d["estimator"].update(history="long"), "estimator.history"),
    ],
)
def test_bad_values_of_a_phase_2_file_are_refused(cnn_file, tmp_path, edit, match):
    stem, _, config = _copy(cnn_file, tmp_path)
    _edit_json(config, edit)
    with pytest.raises(ModelFileError, match=match):
        Sifter.load(stem)


def test_a_phase_2_file_round_trips_through_its_verified_graph(cnn_file, data):
    loaded = Sifter.load(cnn_file)
    on_graph = loaded.predict_proba(data.crops)
    loaded.estimator_.set_params(backend="torch")
    np.testing.assert_allclose(loaded.predict_proba(data.crops), on_graph, atol=1e-5)


# -- the project's record and the file agree -------------------------------------------------
@pytest.fixture(scope="module")
def trained_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    images = write_images(root / "data", 1, seed=0)
    with Project.create(root / "p") as project:
        project.add_images(images)
        grid = [(32 + 4 * i, 32 + 4 * j) for i in range(5) for j in range(3)]
        rows, cols = zip(*grid, strict=True)
        project.add_labels(["img0.tif"] * len(grid), rows, cols, [1] * 4 + [0] * 11, who="t")
        project.train(phase="siamese", pretrain=False, finetune_steps=3, augment=False)
    return root / "p"


def test_predict_refuses_a_file_whose_threshold_differs_from_the_projects(
    trained_project, tmp_path
):
    root = tmp_path / "p"
    shutil.copytree(trained_project, root)
    with Project(root) as project:
        record = project.model()
        assert project.load_model().threshold_ == record.threshold
        config = record.path.with_name(record.path.name + ".json")

        def lower(document):
            document["threshold"] = document["estimator"]["threshold"] = 0.05

        _edit_json(config, lower)
        assert Sifter.load(record.path).threshold_ == 0.05  # a valid file on its own
        with pytest.raises(ModelFileError, match=f"not the model {record.id}"):
            project.load_model()
        with pytest.raises(ModelFileError, match="threshold"):
            project.predict()
