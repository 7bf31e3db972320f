import numpy as np
import pytest
import torch

from blobsift import InvalidInputError, SignalClassifier
from blobsift.nn.models import ScaleSpaceFeatures, build_model


def _blob(sigma, size=48, offset=(0.0, 0.0)):
    rows, cols = np.mgrid[0:size, 0:size] - size // 2
    image = np.exp(-((rows - offset[0]) ** 2 + (cols - offset[1]) ** 2) / (2 * sigma**2))
    return torch.from_numpy(image.astype(np.float32))[None, None]


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"channels": (8, 16), "hidden": 16, "head": "centre"},
        {"crop_size": 48, "input_size": 32, "scale_features": True, "head": "centre"},
    ],
)
def test_one_logit_per_crop_for_every_layout(config):
    model = SignalClassifier(**config).eval()
    size = config.get("crop_size", 64)
    assert model(torch.zeros(3, 1, size, size)).shape == (3, 1)
    assert model(torch.zeros(2, size, size)).shape == (2, 1)


def test_default_is_the_78_mflop_three_block_network():
    model = SignalClassifier()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    macs = sum(
        64 // 2**i * 64 // 2**i * c.in_channels * c.out_channels * 9 for i, c in enumerate(convs)
    )
    assert [c.out_channels for c in convs] == [32, 64, 128]
    assert 2 * macs == pytest.approx(78e6, rel=0.03)


def test_flatten_head_keeps_position():
    # The same spot at the centre and in a corner must be told apart.
    torch.manual_seed(0)
    model = SignalClassifier(channels=(8, 16), hidden=64, dropout=0.0).eval()
    centre = 10 * _blob(1.5, 64)
    corner = torch.roll(centre, shifts=(20, 20), dims=(2, 3))
    assert not torch.allclose(model(centre), model(corner))


def test_scale_features_are_invariant_to_quarter_turns_and_flips():
    bank = ScaleSpaceFeatures()
    rng = np.random.default_rng(0)
    crop = torch.from_numpy(rng.normal(size=(1, 1, 48, 48)).astype(np.float32))
    crop[..., 20:27, 23:25] += 4.0  # an elongated object at the centre
    # The crop centre is pixel 24; turn about it by working on the 47x47 window around it.
    window = crop[..., 1:, 1:]
    reference = bank(crop)
    for k in (1, 2, 3):
        turned = crop.clone()
        turned[..., 1:, 1:] = torch.rot90(window, k, dims=(2, 3))
        torch.testing.assert_close(bank(turned), reference, atol=1e-3, rtol=1e-3)
    flipped = crop.clone()
    flipped[..., 1:, 1:] = torch.flip(window, dims=(3,))
    torch.testing.assert_close(bank(flipped), reference, atol=1e-3, rtol=1e-3)


def test_laplacian_selects_the_blob_scale():
    bank = ScaleSpaceFeatures()
    per = ScaleSpaceFeatures.PER_SCALE
    for sigma, expected in ((1.0, 1.0), (2.5, 2.5), (4.0, 4.0)):
        features = bank(_blob(sigma))[0]
        laplacians = features[5::per]  # the strongest central Laplacian of each scale
        assert bank.scales[int(laplacians.argmin())] == expected


def test_structure_tensor_tells_a_line_from_a_spot():
    bank = ScaleSpaceFeatures()
    per = ScaleSpaceFeatures.PER_SCALE
    spot = _blob(1.5)
    line = torch.zeros(1, 1, 48, 48)
    line[..., 24, 14:35] = 1.0
    for crop, elongated in ((spot, False), (line, True)):
        features = bank(crop)[0]
        j1, j2 = features[per + 6], features[per + 7]  # scale 1.0
        ratio = float(j2 / j1)
        assert (ratio < 0.2) == elongated


def test_registry_builds_by_name_and_refuses_unknown_names():
    model = build_model("signal_classifier", {"channels": [4], "hidden": 4})
    assert isinstance(model, SignalClassifier)
    with pytest.raises(InvalidInputError, match="unknown architecture"):
        build_model("resnet9000", {})


@pytest.mark.parametrize(
    "config",
    [
        {"input_size": 80},
        {"channels": (4, 4, 4, 4, 4, 4, 4)},
        {"head": "avgpool"},
        {"crop_size": 32, "scale_features": True},
    ],
)
def test_impossible_configurations_are_refused(config):
    with pytest.raises(InvalidInputError):
        SignalClassifier(**config)
