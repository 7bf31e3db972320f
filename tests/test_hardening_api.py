"""Bad input to the Python API: a clear error naming the parameter, never a traceback."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blobsift import BlobsiftError, InvalidInputError, Sifter
from blobsift._validation import check_crops, check_labels
from blobsift.classify.cnn import CNNClassifier
from blobsift.classify.gallery import nearest_neighbours
from blobsift.classify.siamese import SiameseClassifier
from blobsift.crops import extract_crops
from blobsift.nn.contrastive import sample_pairs
from blobsift.simulate import simulate_crops

TINY = {"siamese__finetune_steps": 1, "siamese__augment": False, "siamese__n_folds": 2}
TORCH = {**TINY, "siamese__backend": "torch"}  # no ONNX export for models used once


def _crops(n, seed=0):
    return np.random.default_rng(seed).normal(100, 5, (n, 64, 64))


LABELS = np.array([0, 1, 0, 1, 0, 1])


# -- parameters are checked at fit, as scikit-learn does -----------------------------------
@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"target_precision": 0}, "target_precision"),
        ({"target_precision": 1.5}, "target_precision"),
        ({"target_precision": float("nan")}, "target_precision"),
        ({"target_recall": -0.1}, "target_recall"),
        ({"target_recall": "high"}, "target_recall"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": -1}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"cnn__epochs": 0}, "epochs"),
        ({"patience": -1}, "patience"),
        ({"batch_size": 0}, "batch_size"),
        ({"weight_decay": -1e-3}, "weight_decay"),
        ({"sampling": "random"}, "sampling"),
        ({"refit": "yes"}, "refit"),
        ({"finetune_steps": -1}, "finetune_steps"),
        ({"pretrain_steps": -3}, "pretrain_steps"),
        ({"k": 0}, "k"),
        ({"temperature": 0}, "temperature"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"n_folds": 1}, "n_folds"),
        ({"siamese__learning_rate": 0}, "learning_rate"),
        ({"siamese__backend": "gpu"}, "backend"),
        ({"augment": "no"}, "augment"),
        ({"random_state": -1}, "random_state"),
        ({"random_state": "seed"}, "random_state"),
        ({"phase": "magic"}, "phase"),
        ({"cnn_from_pretrained": None}, "cnn_from_pretrained"),
        ({"callback": 3}, "callback"),
    ],
)
def test_sifter_refuses_a_bad_parameter_before_any_training(params, name):
    events = []
    sifter = Sifter(**{"phase": "siamese", "callback": events.append, **params})  # only stores
    with pytest.raises(InvalidInputError, match=rf"{name}\b.*got") as caught:
        sifter.fit(_crops(6), LABELS)
    assert "\n" not in str(caught.value)
    assert events == []


@pytest.mark.parametrize(
    ("cls", "params", "name"),
    [
        (SiameseClassifier, {"k": -2}, "k"),
        (SiameseClassifier, {"temperature": float("inf")}, "temperature"),
        (SiameseClassifier, {"pretrain_cache": 5}, "pretrain_cache"),
        (SiameseClassifier, {"architecture": [16, 32]}, "architecture"),
        (CNNClassifier, {"epochs": 0}, "epochs"),
        (CNNClassifier, {"learning_rate": -1}, "learning_rate"),
        (CNNClassifier, {"device": 0}, "device"),
        (CNNClassifier, {"target_precision": 2}, "target_precision"),
    ],
)
def test_phase_classifiers_refuse_a_bad_parameter_at_fit(cls, params, name):
    model = cls(**params)
    with pytest.raises(InvalidInputError, match=rf"{cls.__name__} parameter {name}\b"):
        model.fit(_crops(6), LABELS)


@pytest.mark.parametrize("cls", [SiameseClassifier, CNNClassifier])
def test_every_parameter_has_a_constraint(cls):
    assert set(cls._parameter_constraints) == set(cls._param_names())
    cls()._validate_params()  # the defaults are allowed


def test_the_edges_of_the_allowed_ranges_are_allowed():
    Sifter(
        target_precision=1.0, target_recall=1e-9, epochs=1, finetune_steps=0, pretrain_steps=0,
        k=1, n_folds=2, random_state=0, patience=0, refit=None, batch_size=None,
    )._validate_params()  # fmt: skip


# -- crashes that used to escape -----------------------------------------------------------
def test_pairs_from_one_crop_of_each_class_are_all_different_class_pairs():
    first, second, same = sample_pairs(torch.tensor([0, 1]), 10, torch.Generator().manual_seed(0))
    assert same.tolist() == [0] * 10
    assert sorted(set(zip(first.tolist(), second.tolist(), strict=True))) == [(0, 1)]


def test_two_positives_among_five_labels_train():
    data = simulate_crops(60, seed=4)
    order = np.r_[np.flatnonzero(data.labels == 1)[:2], np.flatnonzero(data.labels == 0)[:3]]
    sifter = Sifter(phase="siamese", random_state=0, **TORCH).fit(
        data.crops[order], data.labels[order]
    )
    probabilities = sifter.predict_proba(data.crops)
    assert np.isfinite(probabilities).all()
    assert sifter.cv_metrics_["n_folds"] == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 2.5}, "size must be an integer"),
        ({"size": "64"}, "size must be an integer"),
        ({"size": True}, "size must be an integer"),
        ({"size": 0}, "size must be an integer"),
        ({"image": None}, "image must be 2D"),
        ({"image": np.full((8, 8), "a")}, "real numbers"),
        ({"image": [[1, 2], [3]]}, "image must be"),
        ({"candidates": [["a", "b"]]}, "candidate positions must be numbers"),
        ({"candidates": None}, "candidates must be"),
        ({"candidates": [[1e300, 4]]}, "finite"),
        ({"candidates": [[np.nan, 4]]}, "finite"),
    ],
)
def test_extract_crops_refuses_wrong_types(kwargs, match):
    arguments = {"image": np.zeros((32, 32)), "candidates": [[5, 5]], "size": 8, **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        extract_crops(**arguments)


@pytest.mark.parametrize(
    ("crops", "match"),
    [
        ([[[0.0] * 64] * 64, [[0.0] * 64] * 63], "numeric array"),
        (np.zeros((2, 64, 64), dtype=np.complex64), "real numbers"),
        (np.zeros((2, 64, 64), dtype="timedelta64[s]"), "real numbers"),
        (np.full((2, 64, 64), 1e300), "beyond"),
        (np.full((2, 64, 64), 3e38, dtype=np.float32), "beyond"),
        (None, "real numbers"),
    ],
)
def test_crops_of_the_wrong_kind_are_refused(crops, match):
    with pytest.raises(InvalidInputError, match=match):
        check_crops(crops)


@pytest.mark.parametrize("k", [2.5, "2", 0])
def test_nearest_neighbours_refuses_a_k_that_is_not_a_count(k):
    with pytest.raises(InvalidInputError, match="k must"):
        nearest_neighbours(np.eye(3), k)


def test_float16_crops_are_accepted():
    crops = check_crops(np.full((2, 64, 64), 100, dtype=np.float16))
    assert crops.dtype == np.float32
    assert (crops == 100).all()


@pytest.mark.parametrize(
    "labels",
    [np.array([1 + 0j, 0j]), [[0], [1, 0]], np.array(["1", "0"]), np.array([0, 1], dtype="m8")],
)
def test_labels_of_the_wrong_kind_are_refused(labels):
    with pytest.raises(InvalidInputError, match="y must"):
        check_labels(labels, 2)


# -- fuzz: a clear BlobsiftError or a correct result, nothing else --------------------------
_SPECIAL = {"none": None, "nan": np.nan, "inf": np.inf, "-inf": -np.inf, "huge": 1e300}
_DTYPES = ["float32", "float64", "float16", "int16", "uint8", "bool", "complex64", "object", "U1"]
_SHAPES = ["n64", "n1_64", "n32", "n64flat", "single"]


@st.composite
def crop_inputs(draw, max_n=8):
    """(X, whether X is valid crops, n) drawn from shapes, dtypes, special values, lists."""
    aim_valid = draw(st.booleans())  # half the examples draw from the valid choices only
    n = draw(st.integers(4 if aim_valid else 0, max_n))
    shape_kind = draw(st.sampled_from(_SHAPES[:2] if aim_valid else _SHAPES))
    dtype = draw(st.sampled_from(_DTYPES[:6] if aim_valid else _DTYPES))
    special = draw(st.sampled_from(["none"] if aim_valid else sorted(_SPECIAL)))
    as_list = draw(st.booleans()) and 1 <= n <= 3
    shape = {
        "n64": (n, 64, 64), "n1_64": (n, 1, 64, 64), "n32": (n, 32, 32),
        "n64flat": (n, 64), "single": (64, 64),
    }[shape_kind]  # fmt: skip
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.integers(0, 200, shape).astype(np.float64) + rng.normal(0, 1, shape)
    value = _SPECIAL[special]
    if value is not None and values.size:
        values.flat[rng.integers(values.size)] = value
    if dtype == "bool":
        array = values > 100
    elif dtype == "object":
        array = values.astype(object)
    elif dtype in ("int16", "uint8", "U1"):
        array = np.nan_to_num(values, nan=0, posinf=0, neginf=0).clip(0, 255).astype(dtype)
    else:
        with np.errstate(over="ignore"):
            array = values.astype(dtype)
    integral = dtype in ("int16", "uint8", "bool", "U1")
    finite = integral or value is None or not values.size
    # A list of an object array's numbers is a list of floats, which numpy reads as such.
    real = dtype not in ("complex64", "U1") and (dtype != "object" or as_list)
    valid = real and finite and shape_kind in ("n64", "n1_64")
    crops = array.tolist() if as_list else array
    return crops, valid, shape[0] if shape_kind != "single" else 0


@st.composite
def label_inputs(draw, n):
    """(y, whether y holds at least 2 labels of each class for n crops)."""
    aim_valid = draw(st.booleans()) and n >= 4
    kinds = ["ints", "floats", "bools", "strings", "bad", "short"]
    kind = draw(st.sampled_from(kinds[:3] if aim_valid else kinds))
    length = n - 1 if kind == "short" and n else n
    values = draw(st.lists(st.integers(0, 1), min_size=length, max_size=length))
    if aim_valid:  # two of each class somewhere
        values[:4] = [0, 1, 0, 1]
        values = draw(st.permutations(values))
    if kind == "floats":
        labels = np.array(values, dtype=np.float64)
    elif kind == "bools":
        labels = np.array(values, dtype=bool)
    elif kind == "strings":
        labels = np.array([str(v) for v in values])
    elif kind == "bad":
        labels = np.array([*values[:-1], draw(st.sampled_from([2, -1, 0.5, np.nan]))][:length])
    else:
        labels = values  # a list
    counts = np.bincount(np.asarray(values, dtype=int), minlength=2) if values else [0, 0]
    valid = kind in ("ints", "floats", "bools") and length == n and min(counts) >= 2
    if kind == "bad" and length:
        valid = False
    return labels, valid


_FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@_FUZZ
@given(data=st.data())
def test_fuzz_fit_gives_a_clear_error_or_a_correct_model(data):
    crops, crops_valid, n = data.draw(crop_inputs())
    labels, labels_valid = data.draw(label_inputs(n))
    sifter = Sifter(phase="siamese", random_state=0, **TORCH)
    if not (crops_valid and labels_valid):
        with pytest.raises(BlobsiftError, match=r"\w"):  # not any other exception
            sifter.fit(crops, labels)
        return
    sifter.fit(crops, labels)
    assert 0.0 <= sifter.threshold_ <= 1.0
    probabilities = sifter.predict_proba(_crops(3))
    assert np.isfinite(probabilities).all()


@pytest.fixture(scope="module")
def fitted():
    data = simulate_crops(40, seed=3)
    return Sifter(phase="siamese", random_state=0, **TINY).fit(data.crops, data.labels)


@_FUZZ
@given(data=st.data())
def test_fuzz_predict_proba_gives_a_clear_error_or_probabilities(fitted, data):
    crops, valid, n = data.draw(crop_inputs(max_n=20))
    if not valid:
        with pytest.raises(BlobsiftError, match=r"\w"):  # not any other exception
            fitted.predict_proba(crops)
        return
    probabilities = fitted.predict_proba(crops)
    assert probabilities.shape == (n, 2)
    assert np.isfinite(probabilities).all()
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
