"""Label-preserving augmentation of spot crops, batched in torch and seeded.

All transforms act on *raw* intensities of a batch of shape (B, H, W) or (B, C, H, W),
before normalisation, and draw their randomness from a ``torch.Generator``. The channels
of a crop move together: one rotation, shift and blur per crop, the same for each channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812

from blobsift.crops import robust_noise

__all__ = ["Augmentation", "blur", "dihedral", "gamma_stretch", "shift"]


def dihedral(crops: torch.Tensor, transform: torch.Tensor) -> torch.Tensor:
    """Apply one of the 8 rotations/reflections of the square to each crop.

    Parameters
    ----------
    crops : Tensor of shape (B, H, W) or (B, C, H, W) with H == W
    transform : Tensor of shape (B,)
        Integers in 0..7: ``t % 4`` quarter turns, then a left-right flip if ``t >= 4``.
    """
    out = torch.empty_like(crops)
    for t in range(8):
        index = torch.nonzero(transform == t).flatten()
        if index.numel() == 0:
            continue
        moved = torch.rot90(crops[index], k=t % 4, dims=(-2, -1))
        out[index] = torch.flip(moved, dims=(-1,)) if t >= 4 else moved
    return out


def shift(crops: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Translate each crop by a sub-pixel (row, col) offset, with bilinear interpolation.

    Content moves by ``+offset`` (towards larger indices); pixels that enter from outside
    are mirrored from the border. ``crops`` is (B, H, W) or (B, C, H, W).
    """
    single = crops.dim() == 3
    x = crops.unsqueeze(1) if single else crops
    batch, channels, height, width = x.shape
    theta = torch.zeros(batch, 2, 3, dtype=crops.dtype, device=crops.device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -2.0 * offsets[:, 1] / width
    theta[:, 1, 2] = -2.0 * offsets[:, 0] / height
    grid = F.affine_grid(theta, [batch, channels, height, width], align_corners=False)
    moved = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return moved.squeeze(1) if single else moved


def blur(crops: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each crop with a Gaussian of its own width ``sigma`` (pixels; 0 = unchanged).

    ``crops`` is (B, H, W) or (B, C, H, W); every channel of a crop gets its width.
    """
    radius = max(1, int(torch.ceil(3 * sigma.max()).item()) if sigma.numel() else 1)
    taps = torch.arange(-radius, radius + 1, dtype=crops.dtype, device=crops.device)
    safe = sigma.clamp_min(1e-3)[:, None]
    kernel = torch.exp(-0.5 * (taps[None, :] / safe) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    channels = 1 if crops.dim() == 3 else crops.shape[1]
    kernel = kernel.repeat_interleave(channels, dim=0)
    planes = kernel.shape[0]
    flat = crops.reshape(1, planes, *crops.shape[-2:])
    x = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(planes, 1, 1, -1), groups=planes)
    x = F.conv2d(x, kernel.view(planes, 1, -1, 1), groups=planes)
    return x.reshape(crops.shape)


def gamma_stretch(crops: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Apply a gamma curve between each crop's own minimum and maximum (both kept).

    ``crops`` is (B, H, W) or (B, C, H, W): each channel between its own extremes, with
    the crop's ``gamma``.
    """
    flat = crops.flatten(-2)
    low = flat.min(dim=-1).values[..., None, None]
    span = (flat.max(dim=-1).values[..., None, None] - low).clamp_min(1e-12)
    unit = ((crops - low) / span).clamp(0.0, 1.0)
    per_crop = gamma.view(-1, *([1] * (crops.dim() - 1)))
    return low + span * unit.pow(per_crop)


def _on_chosen(
    crops: torch.Tensor,
    chosen: torch.Tensor,
    transform: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    values: torch.Tensor,
) -> torch.Tensor:
    """``crops`` with ``transform(crops[i], values[i])`` in place of each chosen crop ``i``.

    The transform runs on the chosen crops alone (the others are copied as they are), so
    a costly change given to a share of the batch costs only that share.
    """
    index = torch.nonzero(chosen).flatten()
    if index.numel() == 0:
        return crops
    return crops.index_copy(0, index, transform(crops[index], values[index]))


@dataclass(frozen=True)
class Augmentation:
    """Random label-preserving changes of a batch of raw spot crops.

    Parameters
    ----------
    dihedral : bool
        Apply one of the 8 rotations/reflections, drawn uniformly per crop.
    max_shift : float
        Largest sub-pixel shift in pixels, per axis (the detector's localisation error;
        keep it small: the label belongs to the centre).
    shift_probability : float
        Share of crops that are shifted.
    gain : (float, float)
        Range of the multiplicative intensity change.
    offset : float
        Largest additive change, in units of the crop's standard deviation.
    gamma : (float, float)
        Range of the gamma curve exponent (drawn log-uniformly).
    noise : float
        Largest added Gaussian noise, in units of the crop's own noise level.
    blur_sigma : float
        Largest Gaussian blur width in pixels.
    blur_probability : float
        Share of crops that are blurred.
    """

    dihedral: bool = True
    max_shift: float = 1.0
    shift_probability: float = 0.5
    gain: tuple[float, float] = (0.8, 1.25)
    offset: float = 0.2
    gamma: tuple[float, float] = (0.8, 1.25)
    noise: float = 0.5
    blur_sigma: float = 0.6
    blur_probability: float = 0.25

    def __call__(self, crops: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Return an augmented copy of ``crops`` (B, H, W) or (B, C, H, W).

        Randomness is drawn from ``generator``; the channels of a crop get the same
        geometric changes.
        """
        batch = crops.shape[0]
        if batch == 0:
            return crops.clone()

        def uniform(low: float, high: float) -> torch.Tensor:
            return low + (high - low) * torch.rand(batch, generator=generator)

        def chosen(probability: float) -> torch.Tensor:
            return torch.rand(batch, generator=generator) < probability

        single = crops.dim() == 3
        x = (crops.unsqueeze(1) if single else crops).to(torch.float32)  # (B, C, H, W)
        if self.dihedral:
            x = dihedral(x, torch.randint(0, 8, (batch,), generator=generator))
        if self.max_shift > 0 and self.shift_probability > 0:
            offsets = (2 * torch.rand(batch, 2, generator=generator) - 1) * self.max_shift
            x = _on_chosen(x, chosen(self.shift_probability), shift, offsets)
        if self.blur_sigma > 0 and self.blur_probability > 0:
            sigma = uniform(0.0, self.blur_sigma)
            x = _on_chosen(x, chosen(self.blur_probability), blur, sigma)
        if self.gamma != (1.0, 1.0):
            low, high = (torch.log(torch.tensor(g)).item() for g in self.gamma)
            x = gamma_stretch(x, torch.exp(uniform(low, high)))
        if self.noise > 0:
            planes = x.detach().cpu().numpy().reshape(-1, *x.shape[-2:])
            noise = torch.from_numpy(robust_noise(planes)).view(batch, -1)
            level = noise * uniform(0.0, self.noise)[:, None]
            x = x + level[:, :, None, None] * torch.randn(x.shape, generator=generator)
        scale = uniform(*self.gain)[:, None, None, None]
        spread = x.flatten(2).std(dim=2)[:, :, None, None]
        out = x * scale + uniform(-self.offset, self.offset)[:, None, None, None] * spread
        return out.squeeze(1) if single else out
