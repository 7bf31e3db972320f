"""Filter backends: Gaussian blur, difference and window maximum by OpenCV or scipy.

Both backends use the same kernels and borders, so they find the same candidates; OpenCV
(the ``fast`` extra) is about 4x faster.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from blobsift._validation import check_choice
from blobsift.exceptions import InvalidInputError

_BACKENDS = ("auto", "opencv", "scipy")


def _cv2() -> Any | None:
    try:
        import cv2
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return cv2


def _resolve_backend(backend: str) -> str:
    check_choice(backend, _BACKENDS, name="backend")
    if backend == "auto":
        return "opencv" if _cv2() is not None else "scipy"
    if backend == "opencv" and _cv2() is None:
        raise InvalidInputError(
            "backend='opencv' needs OpenCV; install it with `pip install blobsift[fast]` "
            "(opencv-python-headless) or use backend='scipy'."
        )
    return backend


def _blur_opencv(image: np.ndarray, kernel: np.ndarray, out: np.ndarray) -> None:
    cv2: Any = _cv2()
    cv2.sepFilter2D(image, cv2.CV_32F, kernel, kernel, dst=out, borderType=cv2.BORDER_REFLECT)


def _difference_opencv(a: np.ndarray, b: np.ndarray, factor: float, out: np.ndarray) -> None:
    cv2: Any = _cv2()
    cv2.addWeighted(a, factor, b, -factor, 0.0, dst=out)


def _difference_numpy(a: np.ndarray, b: np.ndarray, factor: float, out: np.ndarray) -> None:
    np.subtract(a, b, out=out)
    out *= np.float32(factor)


def _blur_scipy(image: np.ndarray, kernel: np.ndarray, out: np.ndarray) -> None:
    from scipy import ndimage

    ndimage.correlate1d(image, kernel, axis=1, output=out, mode="reflect")
    ndimage.correlate1d(out, kernel, axis=0, output=out, mode="reflect")


def _window_max_opencv(values: np.ndarray, radius: int) -> np.ndarray:
    """Maximum over a (2 radius + 1)-square window; pixels outside the array are ignored."""
    cv2: Any = _cv2()
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    maxima: np.ndarray = cv2.dilate(
        values, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=-np.inf
    )
    return maxima


def _window_max_scipy(values: np.ndarray, radius: int) -> np.ndarray:
    from scipy import ndimage

    maxima: np.ndarray = ndimage.maximum_filter(
        values, size=2 * radius + 1, mode="constant", cval=-np.inf
    )
    return maxima
