import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from blobsift import InvalidInputError, SignalClassifier
from blobsift.nn.models import ScaleSpaceFeatures, build_model
from blobsift.nn.onnx import OnnxRunner, export_onnx
from blobsift.nn.serialize import load_state_exactly


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


def _reference_features(crop, scales):
    """The scale-space features of one 2-D crop from full 2-D filters (scipy, float64)."""
    centre = crop.shape[-1] // 2
    features = []
    for sigma in scales:
        reach, window_reach = math.ceil(3 * sigma), max(math.ceil(2 * sigma), 1)
        taps = np.arange(-reach, reach + 1.0)
        g = np.exp(-0.5 * (taps / sigma) ** 2)
        g /= g.sum()
        d1, d2 = -taps / sigma**2 * g, (taps**2 / sigma**4 - 1 / sigma**2) * g
        pairs = {"g": (g, g, 0), "dr": (d1, g, 1), "dc": (g, d1, 1),
                 "drr": (d2, g, 2), "dcc": (g, d2, 2), "drc": (d1, d1, 2)}  # fmt: skip
        maps = {
            name: sigma**order * ndimage.correlate(crop, np.outer(r, c), mode="constant")
            for name, (r, c, order) in pairs.items()
        }
        core = (slice(centre - 1, centre + 2),) * 2
        drr, dcc, drc = maps["drr"][core], maps["dcc"][core], maps["drc"][core]
        laplacian = drr + dcc
        spread = np.sqrt(((drr - dcc) / 2) ** 2 + drc**2 + 1e-12)
        gradient = np.sqrt(maps["dr"][core] ** 2 + maps["dc"][core] ** 2 + 1e-12)
        features += [maps["g"][core].mean(), gradient.mean(), laplacian.mean(),
                     (laplacian / 2 + spread).mean(), (laplacian / 2 - spread).mean(),
                     laplacian.min()]  # fmt: skip
        offsets = np.arange(-window_reach, window_reach + 1.0)
        weight = np.exp(-0.5 * (offsets / sigma) ** 2)
        window = np.outer(weight, weight) / np.outer(weight, weight).sum()
        near = (slice(centre - window_reach, centre + window_reach + 1),) * 2
        dr, dc = maps["dr"][near], maps["dc"][near]
        jrr, jcc, jrc = ((product * window).sum() for product in (dr * dr, dc * dc, dr * dc))
        spread = np.sqrt(((jrr - jcc) / 2) ** 2 + jrc**2 + 1e-12)
        features += [(jrr + jcc) / 2 + spread, (jrr + jcc) / 2 - spread]
    return np.array(features)


def _mixed_crops():
    rng = np.random.default_rng(1)
    crops = rng.normal(size=(4, 1, 48, 48))
    crops[0, 0, 20:27, 23:25] += 4.0  # a short line
    crops[1] += 3 * _blob(2.0).numpy()[0]
    crops[2] += 5 * _blob(4.0, offset=(0.5, -1.0)).numpy()[0]
    return crops


def test_separable_grouped_filters_match_full_2d_filters():
    bank = ScaleSpaceFeatures()
    crops = _mixed_crops()
    expected = np.stack([_reference_features(crop[0], bank.scales) for crop in crops])
    found = bank(torch.from_numpy(crops).float()).double().numpy()
    np.testing.assert_allclose(found, expected, rtol=5e-7, atol=5e-7)


def test_default_scales_share_two_filter_groups():
    bank = ScaleSpaceFeatures()
    assert [group.scales for group in bank.groups] == [(0.7, 1.0, 1.6), (2.5, 4.0)]
    # Two separable passes per group: one (K, 1) conv, one depthwise (1, K) conv.
    assert [tuple(group.columns.shape) for group in bank.groups] == [(18, 1, 11, 1), (12, 1, 25, 1)]
    assert [tuple(group.rows.shape) for group in bank.groups] == [(18, 1, 1, 11), (12, 1, 1, 25)]


def _legacy_state(model):
    """``model``'s state as 0.1.0 saved it: each scale's 2-D filters as buffers."""
    state = model.state_dict()
    bank = model.scale_space[0]
    for index, (derivative, integration) in enumerate(bank.reaches):
        kernel, window = 2 * derivative + 1, 2 * integration + 1
        state[f"scale_space.0.kernels{index}"] = torch.ones(6, 1, kernel, kernel)
        state[f"scale_space.0.window{index}"] = torch.full((window, window), 1 / window**2)
    return state


def test_filters_are_not_stored_and_older_model_files_still_load():
    torch.manual_seed(0)
    saved = SignalClassifier(channels=(4, 8), hidden=8, crop_size=48, scale_features=True).eval()
    assert not [key for key in saved.state_dict() if key.startswith("scale_space.0.")]
    legacy = _legacy_state(saved)
    assert "scale_space.0.kernels4" in legacy
    torch.manual_seed(1)
    loaded = SignalClassifier(channels=(4, 8), hidden=8, crop_size=48, scale_features=True)
    loaded.load_state_dict(legacy)  # strict: the legacy filter buffers are dropped, not refused
    load_state_exactly(loaded.eval(), legacy, "model")
    crops = torch.from_numpy(_mixed_crops()).float()
    torch.testing.assert_close(loaded(crops), saved(crops), rtol=0, atol=0)


def test_unknown_scale_space_keys_are_still_refused():
    model = SignalClassifier(channels=(4, 8), hidden=8, crop_size=48, scale_features=True)
    state = {**model.state_dict(), "scale_space.0.kernels_extra": torch.zeros(1)}
    with pytest.raises(RuntimeError, match="kernels_extra"):
        model.load_state_dict(state)


def test_scale_features_export_to_onnx_and_match_torch():
    torch.manual_seed(0)
    model = SignalClassifier(channels=(4, 8), hidden=8, crop_size=48, scale_features=True).eval()
    crops = torch.from_numpy(_mixed_crops()).float()
    found = OnnxRunner(export_onnx(model, 48), threads=1).run(crops.numpy())
    with torch.inference_mode():
        expected = model(crops).numpy()
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-5)
