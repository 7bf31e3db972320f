import numpy as np
import pytest
import torch

from blobsift import InvalidInputError, SingleClassError, balance_dataset, create_weighted_sampler
from blobsift.crops import normalise_crops, robust_noise


def _labels(n_pos, n_neg):
    return torch.cat([torch.ones(n_pos), torch.zeros(n_neg)])


def test_balance_dataset_reaches_the_target_and_keeps_every_crop():
    crops = torch.arange(110).float().view(110, 1, 1)
    labels = _labels(10, 100)
    out_crops, out_labels = balance_dataset(crops, labels, 0.3, torch.Generator().manual_seed(0))
    assert out_labels.shape == (len(out_crops), 1)
    share = out_labels.mean().item()
    assert share == pytest.approx(0.3, abs=0.01)
    assert set(out_crops.flatten().long().tolist()) == set(range(110))
    # Each positive is repeated equally often (to within one copy).
    counts = np.bincount(out_crops.flatten().long().numpy()[out_labels.flatten().numpy() == 1])
    assert counts[:10].max() - counts[:10].min() <= 1


def test_balance_dataset_never_drops_positives():
    # The specification truncated positives to the target count: with positives already
    # above 30% it silently threw labelled signal away.
    crops = torch.arange(60).float().view(60, 1, 1)
    labels = _labels(40, 20)
    out_crops, out_labels = balance_dataset(crops, labels, 0.3)
    assert sorted(out_crops.flatten().long().tolist()) == list(range(60))
    assert out_labels.sum().item() == 40


def test_balance_dataset_accepts_3d_crops_and_column_labels():
    crops = torch.randn(12, 64, 64)
    out_crops, _ = balance_dataset(crops, _labels(2, 10).view(-1, 1))
    assert out_crops.shape[1:] == (64, 64)


@pytest.mark.parametrize(("n_pos", "n_neg"), [(0, 10), (10, 0)])
def test_balance_dataset_with_an_empty_class_raises(n_pos, n_neg):
    with pytest.raises(SingleClassError, match="signal"):
        balance_dataset(torch.randn(10, 4, 4), _labels(n_pos, n_neg))


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.5, float("nan")])
def test_balance_dataset_refuses_impossible_ratios(ratio):
    with pytest.raises(InvalidInputError, match="target_ratio"):
        balance_dataset(torch.randn(4, 2, 2), _labels(2, 2), ratio)


def test_weighted_sampler_draws_both_classes_equally():
    labels = _labels(5, 495)
    sampler = create_weighted_sampler(
        labels, num_samples=20000, generator=torch.Generator().manual_seed(1)
    )
    drawn = labels[torch.tensor(list(sampler))]
    assert drawn.mean().item() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("labels", [_labels(0, 8), _labels(8, 0), torch.zeros(0)])
def test_weighted_sampler_with_an_empty_class_raises(labels):
    with pytest.raises(InvalidInputError):
        create_weighted_sampler(labels)


def test_weighted_sampler_accepts_column_labels_and_numpy():
    sampler = create_weighted_sampler(np.array([[0], [1], [0]]))
    assert len(list(sampler)) == 3


def test_robust_noise_recovers_the_noise_level_under_a_gradient_and_a_spot():
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:64, 0:64]
    crops = 500 + 3 * rows + 2 * cols + rng.normal(0, 7.0, size=(20, 64, 64))
    crops[:, 30:34, 30:34] += 400
    noise = robust_noise(crops.astype(np.float32))
    assert noise == pytest.approx(np.full(20, 7.0), rel=0.1)


def test_normalisation_is_invariant_to_gain_and_offset():
    rng = np.random.default_rng(1)
    crops = rng.gamma(3.0, 10.0, size=(5, 64, 64)).astype(np.float32)
    a = normalise_crops(crops)
    b = normalise_crops(crops * 7.5 + 1234.0)
    assert a.shape == (5, 1, 64, 64)
    np.testing.assert_allclose(a, b, atol=2e-3, rtol=1e-3)


def test_normalising_constant_and_empty_crops_is_finite():
    out = normalise_crops(np.full((2, 64, 64), 42.0))
    assert np.isfinite(out).all()
    assert np.abs(out).max() == 0
    assert normalise_crops(np.zeros((0, 64, 64))).shape == (0, 1, 64, 64)


def _plain_normalisation(crops, noise=None):
    """The normalisation written out plainly, in float64: what normalise_crops computes."""
    crops = crops.astype(np.float64)
    n = len(crops)
    middle = (crops[:, ::2, ::2].reshape(n, -1).shape[1] - 1) // 2
    background = np.sort(crops[:, ::2, ::2].reshape(n, -1), axis=1)[:, middle]
    if noise is None:
        noise = robust_noise(crops.astype(np.float32)).astype(np.float64)
        spread = crops.reshape(n, -1).std(axis=1, ddof=1)
        noise = np.where(noise > 1e-6 * (np.abs(background) + 1), noise, spread)
        noise = np.where(noise > 1e-12, noise, 1.0)
    scaled = (crops - background[:, None, None]) / (3.0 * noise[:, None, None])
    return (3.0 * np.arcsinh(scaled))[:, None]


@pytest.mark.parametrize("with_noise", [False, True])
def test_normalise_crops_equals_the_plain_formula(with_noise):
    rng = np.random.default_rng(4)
    crops = rng.gamma(3.0, 10.0, size=(40, 48, 48)).astype(np.float32)
    crops[:, 20:28, 20:28] += rng.uniform(0, 5e4, size=(40, 1, 1)).astype(np.float32)
    crops[0] = 7.0  # constant: the spread, then 1
    crops[1] = 7.0
    crops[1, 3, 5] = 9.0  # no noise in the differences, a little spread
    crops[2] *= -1e20  # values far beyond the usual range
    noise = rng.uniform(0.5, 20.0, size=40) if with_noise else None
    if noise is not None:
        noise[3] = 1e-12  # scaled values whose square overflows float32
    found = normalise_crops(crops, noise)
    assert found.dtype == np.float32
    np.testing.assert_allclose(found, _plain_normalisation(crops, noise), rtol=1e-6, atol=1e-6)
