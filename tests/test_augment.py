import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from blobsift.nn.augment import Augmentation, _on_chosen, blur, dihedral, gamma_stretch, shift

crop_batches = arrays(
    np.float32,
    st.tuples(st.integers(1, 4), st.just(8), st.just(8)),
    elements=st.floats(-1e3, 1e3, width=32),
)


@settings(max_examples=40, deadline=None)
@given(crop_batches, st.integers(0, 7))
def test_dihedral_preserves_shape_sum_and_values(batch, t):
    x = torch.from_numpy(batch)
    out = dihedral(x, torch.full((len(x),), t))
    assert out.shape == x.shape
    torch.testing.assert_close(out.sum(dim=(1, 2)), x.sum(dim=(1, 2)), rtol=1e-5, atol=1e-2)
    torch.testing.assert_close(out.flatten(1).sort().values, x.flatten(1).sort().values)


def test_dihedral_gives_the_eight_distinct_symmetries():
    x = torch.arange(16.0).view(1, 4, 4)
    images = {tuple(dihedral(x, torch.tensor([t])).flatten().tolist()) for t in range(8)}
    assert len(images) == 8


@settings(max_examples=30, deadline=None)
@given(crop_batches)
def test_disabled_augmentation_is_the_identity(batch):
    off = Augmentation(
        dihedral=False, max_shift=0, gain=(1, 1), offset=0, gamma=(1, 1), noise=0, blur_sigma=0
    )
    x = torch.from_numpy(batch)
    torch.testing.assert_close(off(x, torch.Generator().manual_seed(0)), x)


@settings(max_examples=30, deadline=None)
@given(crop_batches, st.floats(0.5, 2.0))
def test_gamma_keeps_each_crops_range(batch, gamma):
    x = torch.from_numpy(batch)
    out = gamma_stretch(x, torch.full((len(x),), gamma))
    torch.testing.assert_close(out.amin(dim=(1, 2)), x.amin(dim=(1, 2)), atol=1e-2, rtol=1e-5)
    torch.testing.assert_close(out.amax(dim=(1, 2)), x.amax(dim=(1, 2)), atol=1e-2, rtol=1e-5)


def test_integer_shift_moves_a_point_by_that_many_pixels():
    x = torch.zeros(1, 16, 16)
    x[0, 8, 8] = 1.0
    out = shift(x, torch.tensor([[1.0, -2.0]]))
    assert out[0].argmax().item() == 9 * 16 + 6
    assert out.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_half_pixel_shift_splits_a_point_between_two_pixels():
    x = torch.zeros(1, 16, 16)
    x[0, 8, 8] = 1.0
    out = shift(x, torch.tensor([[0.0, 0.5]]))
    assert out[0, 8, 8].item() == pytest.approx(0.5, abs=1e-5)
    assert out[0, 8, 9].item() == pytest.approx(0.5, abs=1e-5)


def test_blur_keeps_flux_and_zero_sigma_changes_nothing():
    x = torch.zeros(2, 16, 16)
    x[:, 8, 8] = 1.0
    out = blur(x, torch.tensor([0.0, 0.8]))
    torch.testing.assert_close(out[0], x[0], atol=1e-6, rtol=0)
    assert out[1].sum().item() == pytest.approx(1.0, abs=1e-5)
    assert out[1, 8, 8].item() < 0.5


def test_augmentation_is_reproducible_from_the_seed_and_varies_otherwise():
    x = torch.from_numpy(np.random.default_rng(0).normal(100, 5, (6, 64, 64)).astype(np.float32))
    augment = Augmentation()
    a = augment(x, torch.Generator().manual_seed(3))
    b = augment(x, torch.Generator().manual_seed(3))
    c = augment(x, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert torch.isfinite(a).all()


def test_added_noise_stays_near_the_crops_own_level():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(100, 5, (64, 64, 64)).astype(np.float32))
    noisy = Augmentation(
        dihedral=False, max_shift=0, gain=(1, 1), offset=0, gamma=(1, 1), blur_sigma=0, noise=0.5
    )(x, torch.Generator().manual_seed(0))
    ratio = noisy.std(dim=(1, 2)) / x.std(dim=(1, 2))
    assert ratio.min().item() >= 1.0
    assert ratio.max().item() <= np.sqrt(1 + 0.5**2) + 0.05


def test_on_chosen_transforms_the_chosen_crops_alone():
    x = torch.from_numpy(np.random.default_rng(0).normal(100, 5, (6, 2, 16, 16)).astype(np.float32))
    chosen = torch.tensor([True, False, False, True, False, True])
    sigma = torch.linspace(0.3, 0.8, 6)
    seen = []

    def recording_blur(crops, values):
        seen.append(len(crops))
        return blur(crops, values)

    out = _on_chosen(x, chosen, recording_blur, sigma)
    assert seen == [3]  # run on the chosen crops only
    torch.testing.assert_close(out[~chosen], x[~chosen], rtol=0, atol=0)
    torch.testing.assert_close(out[chosen], blur(x[chosen], sigma[chosen]))
    assert (out[chosen] - x[chosen]).abs().amax(dim=(1, 2, 3)).min() > 0.1
    assert _on_chosen(x, torch.zeros(6, dtype=torch.bool), recording_blur, sigma) is x


@pytest.mark.parametrize(
    "kept",
    [{"max_shift": 1.0, "shift_probability": 0.5}, {"blur_sigma": 0.6, "blur_probability": 0.25}],
)
def test_shift_and_blur_leave_the_unchosen_crops_untouched(kept):
    only = {"dihedral": False, "max_shift": 0.0, "gain": (1, 1), "offset": 0, "gamma": (1, 1),
            "noise": 0, "blur_sigma": 0.0}  # fmt: skip
    x = torch.from_numpy(np.random.default_rng(1).normal(100, 5, (64, 16, 16)).astype(np.float32))
    out = Augmentation(**{**only, **kept})(x, torch.Generator().manual_seed(0))
    untouched = (out == x).flatten(1).all(dim=1)
    probability = next(v for k, v in kept.items() if k.endswith("probability"))
    # About the chosen share changes; the rest are the input, bit for bit.
    assert abs(float((~untouched).float().mean()) - probability) < 0.15
