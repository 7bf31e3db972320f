"""Label tensors and class-balanced sampling of training crops.

(The per-crop normalisation is :func:`blobsift.crops.normalise_crops`, in numpy.)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from blobsift._validation import check_both_classes, check_in_range, check_labels
from blobsift.crops import normalise_crops
from blobsift.exceptions import InvalidInputError

__all__ = [
    "balance_dataset",
    "create_weighted_sampler",
    "network_input",
]


def _as_label_tensor(labels: torch.Tensor | np.ndarray, n: int | None = None) -> torch.Tensor:
    """Check binary labels (shape (n,) or (n, 1)) and return them as an int64 vector."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    return torch.from_numpy(check_labels(labels, n, name="labels"))


def network_input(crops: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Raw crops (B, H, W) or (B, C, H, W) as the (B, C, H, W) float32 network input.

    The normalisation is :func:`blobsift.crops.normalise_crops`; this only moves the
    crops between torch and numpy around it.
    """
    if isinstance(crops, torch.Tensor):
        crops = crops.detach().cpu().numpy()
    return torch.from_numpy(normalise_crops(crops))


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
        weights,  # type: ignore[arg-type]  # it runs torch.as_tensor on them; stub says Sequence
        num_samples=num_samples or len(flat),
        replacement=True,
        generator=generator,
    )
