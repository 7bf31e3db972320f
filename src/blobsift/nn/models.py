"""Network architectures, picked by name from a small registry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from blobsift._validation import CROP_SIZE
from blobsift.exceptions import InvalidInputError

__all__ = ["SignalClassifier", "build_model", "register_model"]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Register an architecture under ``name`` so model files can rebuild it."""

    def decorator(cls: type[nn.Module]) -> type[nn.Module]:
        _REGISTRY[name] = cls
        return cls

    return decorator


def build_model(name: str, config: dict[str, Any]) -> nn.Module:
    """Build the registered architecture ``name`` from its JSON-able ``config``."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise InvalidInputError(
            f"unknown architecture {name!r}; known: {sorted(_REGISTRY)}."
        ) from None
    return factory(**config)


class _CentrePool(nn.Module):
    """Pool a (B, C, S, S) feature map to (B, 2C) features that describe its centre.

    The features are a Gaussian-weighted mean around the centre and the maximum over the
    central 2x2 cells.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        offsets = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
        profile = torch.exp(-0.5 * (offsets / max(size / 4, 0.5)) ** 2)
        weights = torch.outer(profile, profile)
        self.register_buffer("weights", weights / weights.sum())
        low = max(size // 2 - 1, 0)
        self.centre = slice(low, low + min(2, size))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mean = (features * self.weights).sum(dim=(2, 3))
        peak = features[:, :, self.centre, self.centre].amax(dim=(2, 3))
        return torch.cat([mean, peak], dim=1)


@register_model("signal_classifier")
class SignalClassifier(nn.Module):
    """A small CNN that scores whether a crop holds a real signal at its centre.

    Blocks of ``3x3 conv -> batch norm -> ReLU -> 2x2 max pool``, then a fully connected
    head over the *flattened* feature map. Flattening keeps position: the label belongs
    to the candidate at the centre, not to any spot somewhere in the window, and a
    globally pooled head could not tell the two apart.

    Parameters
    ----------
    channels : sequence of int
        Output channels of each block. The default (32, 64, 128) is a 78-MFLOP network on
        64x64 crops.
    hidden : int
        Width of the hidden fully connected layer.
    dropout : float
        Dropout probability before each fully connected layer.
    crop_size : int
        Side length of the crops fed in.
    input_size : int or None
        If given, the network looks only at the central ``input_size`` x ``input_size``
        window of each crop (cheaper, and blind to far-away distractors).
    head : {"flatten", "centre"}
        ``"flatten"`` (the specification's) feeds the whole feature map to the fully
        connected layers; ``"centre"`` pools it with fixed Gaussian weights around the
        centre (far fewer weights, so it overfits less with few labels).

    Notes
    -----
    ``forward`` takes (B, 1, H, W) or (B, H, W) normalised crops and returns logits of
    shape (B, 1).
    """

    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128),
        hidden: int = 128,
        dropout: float = 0.5,
        crop_size: int = CROP_SIZE,
        input_size: int | None = None,
        head: str = "flatten",
    ) -> None:
        super().__init__()
        if head not in ("flatten", "centre"):
            raise InvalidInputError(f"head must be 'flatten' or 'centre'; got {head!r}.")
        size = crop_size if input_size is None else input_size
        if size > crop_size or size < 2 ** len(channels):
            raise InvalidInputError(
                f"input_size must lie in [{2 ** len(channels)}, {crop_size}]; got {size}."
            )
        self.config = {
            "channels": list(channels),
            "hidden": hidden,
            "dropout": dropout,
            "crop_size": crop_size,
            "input_size": input_size,
            "head": head,
        }
        self.crop_size = crop_size
        self.margin = (crop_size - size) // 2
        self.size = size
        layers: list[nn.Module] = []
        in_channels = 1
        for out_channels in channels:
            layers += [
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            in_channels = out_channels
            size //= 2
        self.features = nn.Sequential(*layers)
        if head == "centre":
            pool: nn.Module = _CentrePool(size)
            n_features = 2 * in_channels
        else:
            pool, n_features = nn.Flatten(), in_channels * size * size
        self.head = nn.Sequential(
            pool,
            nn.Dropout(dropout),
            nn.Linear(n_features, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Return one logit per crop, shape (B, 1)."""
        if crops.dim() == 3:
            crops = crops.unsqueeze(1)
        if self.margin:
            end = self.margin + self.size
            crops = crops[:, :, self.margin : end, self.margin : end]
        return self.head(self.features(crops))
