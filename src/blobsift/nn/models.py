"""Network architectures, picked by name from a small registry."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from blobsift._validation import CROP_SIZE
from blobsift.exceptions import InvalidInputError

__all__ = [
    "CropEncoder",
    "ScaleSpaceFeatures",
    "SignalClassifier",
    "build_model",
    "register_model",
    "transferable_state",
]

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

    weights: torch.Tensor  # a buffer, registered in __init__

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


def _padded(taps: torch.Tensor, reach: int) -> torch.Tensor:
    """Zero-pad 1-D ``taps`` (odd length, centred) to ``2 * reach + 1`` taps."""
    extra = reach - (len(taps) - 1) // 2
    return F.pad(taps, (extra, extra))


def _derivative_taps(sigma: float, reach: int) -> list[torch.Tensor]:
    """1-D scale-normalised taps G, sigma G', sigma^2 G'' of a Gaussian (float64)."""
    taps = torch.arange(-reach, reach + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (taps / sigma) ** 2)
    g = g / g.sum()
    d1 = -taps / sigma * g
    d2 = (taps**2 / sigma**2 - 1) * g
    return [g, d1, d2]


def _eigenvalues(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> list[torch.Tensor]:
    """Both eigenvalues of the symmetric 2x2 matrices [[a, c], [c, b]], larger first."""
    mean = (a + b) / 2
    spread = torch.sqrt(((a - b) / 2) ** 2 + c**2 + 1e-12)
    return [mean + spread, mean - spread]


class _ScaleGroup(nn.Module):
    """The :class:`ScaleSpaceFeatures` of a few scales that share one filter support.

    Each scale's 1-D taps are zero-padded to the group's longest, so the six
    Gaussian-derivative maps of every scale come from one column pass (a conv with one
    (K, 1) filter per map) and one depthwise row pass ((1, K) filters): two separable
    convolutions per group instead of one 2-D convolution per scale. The structure-tensor
    windows are zero-padded the same way. The filters are built here, as buffers that
    model files do not store.
    """

    # Buffers, registered in __init__ (not persistent: rebuilt from the scales).
    columns: torch.Tensor  # (6n, 1, K, 1): each map's filter along rows
    rows: torch.Tensor  # (6n, 1, 1, K): each map's filter along columns
    windows: torch.Tensor  # (n, 2I + 1, 2I + 1): each scale's integration window

    #: The (row, column) factors of G, d/dr, d/dc, d2/dr2, d2/dc2, d2/drdc as indices
    #: into the taps of :func:`_derivative_taps`.
    PAIRS = ((0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (1, 1))

    def __init__(self, scales: Sequence[float], reaches: Sequence[tuple[int, int]]) -> None:
        super().__init__()
        self.scales = tuple(scales)
        derivative = max(d for d, _ in reaches)
        self.integration = max(i for _, i in reaches)
        self.reach = derivative + self.integration
        columns, rows, windows = [], [], []
        for sigma, (own_derivative, own_integration) in zip(scales, reaches, strict=True):
            taps = [_padded(t, derivative) for t in _derivative_taps(sigma, own_derivative)]
            columns += [taps[r] for r, _ in self.PAIRS]
            rows += [taps[c] for _, c in self.PAIRS]
            offsets = torch.arange(-own_integration, own_integration + 1, dtype=torch.float64)
            weight = _padded(torch.exp(-0.5 * (offsets / sigma) ** 2), self.integration)
            window = torch.outer(weight, weight)
            windows.append(window / window.sum())
        width = 2 * derivative + 1
        self.register_buffer(
            "columns", torch.stack(columns).view(-1, 1, width, 1).float(), persistent=False
        )
        self.register_buffer(
            "rows", torch.stack(rows).view(-1, 1, 1, width).float(), persistent=False
        )
        self.register_buffer("windows", torch.stack(windows).float(), persistent=False)

    def forward(self, crops: torch.Tensor, centre: int) -> torch.Tensor:
        """(B, 8n) features, scale by scale, of (B, 1, H, W) crops about pixel ``centre``."""
        low, high = centre - self.reach, centre + self.reach + 1
        maps = F.conv2d(crops[:, :, low:high, low:high], self.columns)
        maps = F.conv2d(maps, self.rows, groups=self.rows.shape[0])  # (B, 6n, 2I+1, 2I+1)
        g, dr, dc, drr, dcc, drc = maps.unflatten(1, (-1, 6)).unbind(2)  # (B, n, 2I+1, 2I+1)
        middle = slice(self.integration - 1, self.integration + 2)
        core = (..., middle, middle)  # the central 3x3 pixels
        laplacian = drr[core] + dcc[core]
        hessian = _eigenvalues(drr[core], dcc[core], drc[core])
        gradient = torch.sqrt(dr[core] ** 2 + dc[core] ** 2 + 1e-12)
        parts = [part.mean(dim=(-2, -1)) for part in (g[core], gradient, laplacian, *hessian)]
        parts.append(laplacian.amin(dim=(-2, -1)))
        tensor = [(p * self.windows).sum(dim=(-2, -1)) for p in (dr * dr, dc * dc, dr * dc)]
        parts.extend(_eigenvalues(*tensor))
        return torch.stack(parts, dim=2).flatten(1)


class ScaleSpaceFeatures(nn.Module):
    """Fixed multi-scale filter responses at the centre of each crop.

    For every scale ``sigma``, from scale-normalised Gaussian derivatives: the smoothed
    intensity, gradient magnitude, Laplacian (blob response) and both Hessian eigenvalues
    averaged over the central 3x3 pixels, the strongest Laplacian there, and both
    eigenvalues of the structure tensor (gradients integrated over a Gaussian window of
    the same scale) at the centre. They are rotation-invariant and describe the
    candidate's size, shape and elongation — the features interactive pixel classifiers
    rely on — so a network with this branch needs fewer labels.

    Parameters
    ----------
    scales : sequence of float
        Gaussian scales in pixels. A crop must be at least ``min_size`` pixels wide.

    Notes
    -----
    The derivatives reach ``ceil(3 sigma)`` pixels and the windows ``ceil(2 sigma)``. The
    filters are separable and computed in groups of consecutive scales: a scale joins the
    group while its total reach is at most twice the group's first (the defaults group as
    {0.7, 1.0, 1.6} and {2.5, 4.0}). The module has no state in ``state_dict``; the
    filter buffers that earlier (0.1.0) model files hold (``kernels{i}``, ``window{i}``)
    are ignored on loading.
    """

    PER_SCALE = 8
    _LEGACY_KEY = re.compile(r"(kernels|window)\d+")

    def __init__(self, scales: Sequence[float] = (0.7, 1.0, 1.6, 2.5, 4.0)) -> None:
        super().__init__()
        self.scales = tuple(float(s) for s in scales)
        self.reaches = [(math.ceil(3 * s), max(math.ceil(2 * s), 1)) for s in self.scales]
        groups: list[list[int]] = []
        for index, (derivative, integration) in enumerate(self.reaches):
            if groups and derivative + integration <= 2 * sum(self.reaches[groups[-1][0]]):
                groups[-1].append(index)
            else:
                groups.append([index])
        self.groups = nn.ModuleList(
            _ScaleGroup([self.scales[i] for i in group], [self.reaches[i] for i in group])
            for group in groups
        )
        self.min_size = 2 * max(d + i for d, i in self.reaches) + 2
        self.n_features = self.PER_SCALE * len(self.scales)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Return (B, 8 * len(scales)) features of (B, 1, H, W) normalised crops."""
        centre = crops.shape[-1] // 2
        return torch.cat([group(crops, centre) for group in self.groups], dim=1)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        *args: Any,
    ) -> None:
        # Model files of 0.1.0 stored each scale's 2-D filters as buffers; they are rebuilt now.
        for key in [k for k in state_dict if k.startswith(prefix)]:
            if self._LEGACY_KEY.fullmatch(key[len(prefix) :]):
                del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args)


@register_model("signal_classifier")
class SignalClassifier(nn.Module):
    """A small CNN that scores whether a crop holds a real signal at its centre.

    This is the specification's ``nn.Module`` and keeps its public name. It is a network,
    not an estimator: the scikit-learn style estimators that train it are
    :class:`~blobsift.classify.cnn.CNNClassifier` (an ensemble of these) and
    :class:`~blobsift.Sifter`; :func:`~blobsift.nn.train.train_classifier` trains one.

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
    scale_features : bool
        Also feed the head :class:`ScaleSpaceFeatures` of the crop centre (batch-normed).
    outputs : int
        Width of the last layer: 1 for a classifier's logit; more for an embedding
        (see :class:`CropEncoder`).
    in_channels : int
        Channels of each crop (e.g. 3 for science, reference and difference images). The
        scale-space branch describes each channel; it is recorded in ``config`` only when
        it is not 1, so single-channel model files read as before.

    Notes
    -----
    ``forward`` takes (B, in_channels, H, W) normalised crops (or (B, H, W) for one
    channel) and returns logits of shape (B, outputs).
    """

    def __init__(
        self,
        channels: Sequence[int] = (32, 64, 128),
        hidden: int = 128,
        dropout: float = 0.5,
        crop_size: int = CROP_SIZE,
        input_size: int | None = None,
        head: str = "flatten",
        scale_features: bool = False,
        outputs: int = 1,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise InvalidInputError(f"in_channels must be a positive integer; got {in_channels!r}.")
        if head not in ("flatten", "centre"):
            raise InvalidInputError(f"head must be 'flatten' or 'centre'; got {head!r}.")
        size = crop_size if input_size is None else input_size
        if size > crop_size or size < 2 ** len(channels):
            raise InvalidInputError(
                f"input_size must lie in [{2 ** len(channels)}, {crop_size}]; got {size}."
            )
        self.config: dict[str, Any] = {
            "channels": list(channels),
            "hidden": hidden,
            "dropout": dropout,
            "crop_size": crop_size,
            "input_size": input_size,
            "head": head,
            "scale_features": scale_features,
            "outputs": outputs,
        }
        if in_channels != 1:
            self.config["in_channels"] = in_channels
        self.in_channels = in_channels
        self.crop_size = crop_size
        self.margin = (crop_size - size) // 2
        self.size = size
        layers: list[nn.Module] = []
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
        self.pool = pool
        self.scale_space: nn.Sequential | None = None
        if scale_features:
            bank = ScaleSpaceFeatures()
            if crop_size < bank.min_size:
                raise InvalidInputError(
                    f"scale_features needs crops of at least {bank.min_size} pixels; "
                    f"got crop_size={crop_size}."
                )
            width = bank.n_features * self.in_channels
            self.scale_space = nn.Sequential(bank, nn.BatchNorm1d(width))
            n_features += width
        # Module.to takes memory_format at runtime; torch's overloads leave it out.
        self.features.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(n_features, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, outputs),
        )

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Return the last layer's output, shape (B, outputs): one logit per crop by default."""
        return self.head(self.body(crops))

    def body(self, crops: torch.Tensor) -> torch.Tensor:
        """Return the features the head reads, shape (B, n_features)."""
        if crops.dim() == 3:
            crops = crops.unsqueeze(1)
        centre = crops
        if self.margin:
            end = self.margin + self.size
            centre = crops[:, :, self.margin : end, self.margin : end]
        # Channels-last runs the conv and pool layers 1.5-4x faster on CPUs.
        features = self.pool(self.features(centre.contiguous(memory_format=torch.channels_last)))
        if self.scale_space is not None:
            if self.in_channels == 1:
                described = self.scale_space(crops)
            else:  # each channel on its own, channel 0's features first
                bank, norm = self.scale_space[0], self.scale_space[1]
                planes = bank(crops.flatten(0, 1).unsqueeze(1))
                described = norm(planes.unflatten(0, (-1, self.in_channels)).flatten(1))
            features = torch.cat([features, described], dim=1)
        return features


@register_model("crop_encoder")
class CropEncoder(SignalClassifier):
    """A :class:`SignalClassifier` body that maps each crop to a unit-length embedding.

    The network is a ``SignalClassifier`` with ``embedding_dim`` outputs, L2-normalised:
    cosine similarity between embeddings is their dot product. Its weights, all but the
    last layer, can start a ``SignalClassifier`` of the same configuration
    (see :func:`transferable_state`).

    Parameters
    ----------
    embedding_dim : int
        Length of the embedding.
    **config
        :class:`SignalClassifier` arguments (``channels``, ``hidden``, ``dropout``, ...).
    """

    def __init__(self, embedding_dim: int = 32, **config: Any) -> None:
        config.pop("outputs", None)
        super().__init__(**config, outputs=embedding_dim)
        self.config = {**self.config, "embedding_dim": embedding_dim}
        del self.config["outputs"]

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """Return unit-length embeddings, shape (B, embedding_dim)."""
        return self.embed_features(self.body(crops))

    def embed_features(self, features: torch.Tensor) -> torch.Tensor:
        """Map :meth:`body` features to unit-length embeddings (the head alone)."""
        return F.normalize(self.head(features), dim=1)


def transferable_state(encoder: nn.Module) -> dict[str, torch.Tensor]:
    """The weights of an encoder that a classifier of the same body can start from.

    Everything but the last linear layer (whose width differs).
    """
    state = encoder.state_dict()
    head = encoder.head
    assert isinstance(head, nn.Sequential), "registered models end in a Sequential head"
    last = f"head.{len(head) - 1}."
    return {k: v.detach().clone() for k, v in state.items() if not k.startswith(last)}
