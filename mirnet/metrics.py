"""PSNR and SSIM as the low-light literature reports them: full image, RGB, 8-bit.

SSIM follows Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5, population (not sample) statistics,
K1 = 0.01, K2 = 0.03, computed over the window positions that fit inside the image, per channel, then averaged.
This equals ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255, channel_axis=-1)``. NumPy only, so the web tier can use it too.
"""

from __future__ import annotations

import math

import numpy as np

_SIGMA = 1.5
_RADIUS = 5  # int(3.5 * sigma + 0.5): an 11x11 window
_K1, _K2 = 0.01, 0.03


def _as_uint8_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise TypeError("PSNR and SSIM are defined here on 8-bit images; convert with mirnet.imageio.to_uint8")
    return a, b


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images (peak 255). Identical images give inf."""
    a, b = _as_uint8_pair(a, b)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def _gaussian_kernel() -> np.ndarray:
    x = np.arange(-_RADIUS, _RADIUS + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / _SIGMA) ** 2)
    return kernel / kernel.sum()


def _filter_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering with small memory: one shifted add per tap and axis."""
    size = kernel.size
    rows = image.shape[0] - size + 1
    out = sum(kernel[k] * image[k : k + rows] for k in range(size))
    cols = image.shape[1] - size + 1
    return sum(kernel[k] * out[:, k : k + cols] for k in range(size))


def _ssim_channel(x: np.ndarray, y: np.ndarray, kernel: np.ndarray) -> float:
    c1 = (_K1 * 255.0) ** 2
    c2 = (_K2 * 255.0) ** 2
    mu_x = _filter_valid(x, kernel)
    mu_y = _filter_valid(y, kernel)
    var_x = _filter_valid(x * x, kernel) - mu_x * mu_x
    var_y = _filter_valid(y * y, kernel) - mu_y * mu_y
    cov = _filter_valid(x * y, kernel) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return float(np.mean(numerator / denominator))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity between two uint8 images (H x W or H x W x C), averaged over channels."""
    a, b = _as_uint8_pair(a, b)
    if min(a.shape[0], a.shape[1]) < 2 * _RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least {2 * _RADIUS + 1}x{2 * _RADIUS + 1} pixels")
    kernel = _gaussian_kernel()
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    values = [
        _ssim_channel(a[..., c].astype(np.float64), b[..., c].astype(np.float64), kernel) for c in range(a.shape[2])
    ]
    return float(np.mean(values))
