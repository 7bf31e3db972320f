"""Crop tensors: normalisation and class-balanced sampling."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from blobsift._validation import check_both_classes, check_in_range, check_labels
from blobsift.exceptions import InvalidInputError

__all__ = [
    "balance_dataset",
    "create_weighted_sampler",
    "normalize_crops",
    "robust_noise",
]

_MAD_TO_SIGMA = 1.4826
_ASINH_SCALE = 3.0  # noise sigmas at which the intensity compression sets in


def _as_label_tensor(labels: torch.Tensor | np.ndarray, n: int | None = None) -> torch.Tensor:
    """Check binary labels (shape (n,) or (n, 1)) and return them as an int64 vector."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    return torch.from_numpy(check_labels(labels, n, name="labels"))


def robust_noise(crops: torch.Tensor) -> torch.Tensor:
    """Estimate each crop's pixel noise from the MAD of horizontal pixel differences.

    Differences of neighbouring pixels cancel smooth background structure, and the median
    ignores the few pixels that hold a spot, so the estimate reflects the noise only.

    Parameters
    ----------
    crops : Tensor of shape (B, H, W)

    Returns
    -------
    Tensor of shape (B,)
        The noise standard deviation of each crop (0 for a constant crop).
    """
    rows = crops[:, ::2]  # every other row: half the sorting, and plenty of pixels
    diffs = (rows[:, :, 1:] - rows[:, :, :-1]).flatten(1)
    centre = diffs.median(dim=1, keepdim=True).values
    mad = (diffs - centre).abs().median(dim=1).values
    return mad * (_MAD_TO_SIGMA / math.sqrt(2.0))


def normalize_crops(crops: torch.Tensor) -> torch.Tensor:
    """Put raw crops of any brightness, gain and offset on one scale.

    Each crop has its median background subtracted and is divided by its own noise level
    (:func:`robust_noise`); the result, in noise sigmas, is compressed with ``asinh`` so that
    hot pixels and cosmic rays hundreds of sigmas bright do not dominate. The output is
    invariant to any positive gain and offset applied to the raw crop.

    Parameters
    ----------
    crops : Tensor of shape (B, H, W) or (B, 1, H, W)
        Raw intensities (float).

    Returns
    -------
    Tensor of shape (B, 1, H, W), float32.
    """
    if crops.dim() == 4:
        crops = crops[:, 0]
    crops = crops.to(torch.float32)
    if crops.shape[0] == 0:
        return crops.unsqueeze(1)
    # The median of every other pixel in each direction: a quarter of the sorting.
    background = crops[:, ::2, ::2].flatten(1).median(dim=1).values
    noise = robust_noise(crops)
    # A constant (or nearly noise-free) crop: fall back to the spread of its values, then 1.
    spread = crops.flatten(1).std(dim=1)
    noise = torch.where(noise > 1e-6 * (background.abs() + 1), noise, spread)
    noise = torch.where(noise > 1e-12, noise, torch.ones_like(noise))
    scaled = (crops - background[:, None, None]) / (_ASINH_SCALE * noise[:, None, None])
    return (torch.asinh(scaled) * _ASINH_SCALE).unsqueeze(1)


def balance_dataset(
    crops: torch.Tensor,
    labels: torch.Tensor,
    target_ratio: float = 0.3,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Oversample the positive class until it makes up ``target_ratio`` of the data.

    Every original crop is kept. Positives are repeated (whole copies first, then a random
    subset for the remainder) until they reach the target share; if they already reach it,
    nothing is added or removed.

    Parameters
    ----------
    crops : Tensor of shape (N, ...)
        Crops in any layout with the sample axis first.
    labels : Tensor of shape (N,) or (N, 1)
        Binary labels.
    target_ratio : float
        Wanted share of positives, in (0, 1).
    generator : torch.Generator, optional
        Random source for the remainder and the shuffle (reproducible when given).

    Returns
    -------
    crops, labels : Tensor
        The balanced, shuffled crops and float labels of shape (M, 1).

    Raises
    ------
    SingleClassError
        If either class has no sample (there is nothing to balance against).
    """
    check_in_range(
        target_ratio, name="target_ratio", low=0, high=1, low_inclusive=False, high_inclusive=False
    )
    flat = _as_label_tensor(labels, len(crops))
    check_both_classes(flat.numpy(), name="labels")
    positive = flat == 1
    pos_index = torch.nonzero(positive).flatten()
    neg_index = torch.nonzero(~positive).flatten()
    n_pos_target = math.ceil(len(neg_index) * target_ratio / (1 - target_ratio))
    extra = max(n_pos_target - len(pos_index), 0)
    whole, remainder = divmod(extra, len(pos_index))
    pick = torch.randperm(len(pos_index), generator=generator)[:remainder]
    index = torch.cat([neg_index, pos_index, pos_index.repeat(whole), pos_index[pick]])
    index = index[torch.randperm(len(index), generator=generator)]
    return crops[index], flat[index].to(torch.float32).unsqueeze(1)


def create_weighted_sampler(
    labels: torch.Tensor | np.ndarray,
    num_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> WeightedRandomSampler:
    """Return a sampler that draws positives and negatives equally often.

    Parameters
    ----------
    labels : Tensor or array of shape (N,) or (N, 1)
        Binary labels.
    num_samples : int, optional
        Draws per epoch; defaults to ``N``.
    generator : torch.Generator, optional
        Random source, for reproducible draws.

    Raises
    ------
    SingleClassError
        If a class is empty: the sampler could not draw it, and silently drawing only the
        other class is not what was asked for.
    """
    flat = _as_label_tensor(labels)
    if len(flat) == 0:
        raise InvalidInputError("labels is empty; a sampler needs at least one label per class.")
    check_both_classes(flat.numpy(), name="labels")
    counts = torch.bincount(flat, minlength=2).to(torch.float64)
    weights = (1.0 / counts)[flat]
    return WeightedRandomSampler(
        weights, num_samples=num_samples or len(flat), replacement=True, generator=generator
    )
