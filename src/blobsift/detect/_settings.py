"""The detection settings: what the detector looks for, with their defaults and checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from blobsift._validation import check_in_range
from blobsift.exceptions import InvalidInputError

__all__ = ["DetectSettings"]


def _setting(default: Any, metavar: str, text: str) -> Any:
    """A :class:`DetectSettings` field: its default and its command-line help."""
    return field(default=default, metadata={"metavar": metavar, "help": text})


@dataclass(frozen=True)
class DetectSettings:
    """What the detector looks for: the one home of the detection settings.

    The defaults, the checks, the command-line options (``--sigma-min`` ...) with their
    help, and the JSON a project stores for each detection run all come from here. How
    the work is done (``tile_size``, ``n_threads``, ``backend``) is not a setting: it does
    not change the candidates.

    Parameters
    ----------
    sigma_min, sigma_max : float
        Range of blob widths (Gaussian sigma, pixels) to look for; ``0 < sigma_min <=
        sigma_max``. Scales are spaced by at most a factor 1.75.
    threshold : float
        Minimum score, in units of the local noise of the filtered image (a signal-to-noise
        ratio). Because the score is relative to the image's own noise, the same value
        suits images of any brightness, offset or gain; the classifier sifts what passes.
        The default, 3, was chosen by false alarms per true spot on four simulated domains
        (``python benchmarks/detection.py --thresholds 2.2 3 4``): from 2.2 to 3, candidates
        per true spot fall from 8.7 to 3.0 on cell images, 10.2 to 3.9 on plain spots and
        95 to 24 on difference images, and noise peaks on pure white noise from 5,000 to
        750 per megapixel, while recall drops only by 0.013, 0.034 and 0.042. What a lower
        threshold adds is mostly noise (cell images are at 1 : 9 already at 2.2); at 4
        recall drops by 0.04 to 0.11 (and white noise gives about 20 per megapixel).
    min_distance : int
        A peak must be the maximum of the ``(2 min_distance + 1)``-square window around it,
        in its own scale and the neighbouring ones (peaks of different scales may be
        closer).
    border : int
        Drop candidates whose pixel lies within this many pixels of the image edge.
    max_candidates : int
        Candidate budget: if more peaks pass the threshold, the highest-scoring ones are
        kept and a :class:`CandidateBudgetWarning` says how many were dropped.

    Raises
    ------
    InvalidInputError
        If a setting is not a number of its kind or is out of range.
    """

    sigma_min: float = _setting(1.0, "PX", "smallest blob width (Gaussian sigma)")
    sigma_max: float = _setting(3.0, "PX", "largest blob width")
    threshold: float = _setting(3.0, "SNR", "minimum score, a signal-to-noise ratio")
    min_distance: int = _setting(1, "PX", "minimum distance between peaks")
    border: int = _setting(0, "PX", "drop candidates this close to the edge")
    max_candidates: int = _setting(100_000, "N", "keep at most N per image")

    def __post_init__(self) -> None:
        real = ("sigma_min", "sigma_max", "threshold")
        for name in real:
            value = getattr(self, name)
            if isinstance(value, str):
                raise InvalidInputError(
                    f"{name} must be a number; got str {value!r}; pass the number itself, not text."
                )
            if name == "threshold":
                check_in_range(value, name=name)
            else:
                check_in_range(value, name=name, low=0, low_inclusive=False)
            object.__setattr__(self, name, float(value))
        if self.sigma_max < self.sigma_min:
            raise InvalidInputError(
                f"sigma_max must be >= sigma_min; got sigma_min={self.sigma_min}, "
                f"sigma_max={self.sigma_max}."
            )
        for name, low in (("min_distance", 1), ("border", 0), ("max_candidates", 0)):
            object.__setattr__(self, name, _check_int(getattr(self, name), name=name, low=low))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The settings' names, in the order of the fields."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any] | None = None) -> DetectSettings:
        """Settings from a mapping (e.g. stored JSON); missing names take the defaults.

        Raises
        ------
        InvalidInputError
            If a name is not a setting, or a value is out of range.
        """
        settings = dict(settings or {})
        unknown = sorted(set(settings) - set(cls.names()))
        if unknown:
            raise InvalidInputError(
                f"unknown detection setting(s) {unknown}; valid: {sorted(cls.names())}."
            )
        return cls(**settings)

    def with_changes(self, **changes: Any) -> DetectSettings:
        """A copy with some settings changed (checked like the originals)."""
        return self.from_mapping({**self.as_dict(), **changes}) if changes else self

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values, keyed by name."""
        return asdict(self)


def _check_int(value: Any, *, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidInputError(f"{name} must be an integer >= {low}; got {value!r}.")
    return int(value)
