import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mirnet.imageio import load_rgb_uint8
from mirnet.metrics import psnr, ssim


def _skimage_ssim(a, b):
    return structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1
    )


def test_psnr_matches_skimage_on_a_real_pair(lol_sample):
    low = load_rgb_uint8(str(lol_sample / "low" / "2.png"))
    high = load_rgb_uint8(str(lol_sample / "high" / "2.png"))
    assert psnr(low, high) == pytest.approx(peak_signal_noise_ratio(high, low, data_range=255), abs=1e-9)


def test_ssim_matches_skimage_on_a_real_pair(lol_sample):
    low = load_rgb_uint8(str(lol_sample / "low" / "5.png"))
    high = load_rgb_uint8(str(lol_sample / "high" / "5.png"))
    assert ssim(low, high) == pytest.approx(_skimage_ssim(low, high), abs=1e-7)


def test_ssim_matches_skimage_on_noise_of_odd_size(rng):
    a = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(_skimage_ssim(a, b), abs=1e-7)


def test_identical_images_give_infinite_psnr_and_unit_ssim(rng):
    a = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    assert math.isinf(psnr(a, a))
    assert ssim(a, a) == pytest.approx(1.0)


def test_psnr_of_a_known_error():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 5, np.uint8)  # MSE 25
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 25))


def test_metrics_refuse_float_images_and_shape_mismatch():
    with pytest.raises(TypeError):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)))
    with pytest.raises(ValueError):
        psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((5, 5, 3), np.uint8), np.zeros((5, 5, 3), np.uint8))


def test_gt_mean_psnr_forgives_only_global_brightness(lol_sample):
    from mirnet.evaluation import gt_mean_psnr

    high = load_rgb_uint8(str(lol_sample / "high" / "2.png"))
    darker = np.round(high * 0.7).astype(np.uint8)
    assert psnr(darker, high) < 20
    assert gt_mean_psnr(darker, high) > 40  # a pure exposure error is (almost) forgiven
    noisy = np.clip(high.astype(int) + np.random.default_rng(0).integers(-30, 30, high.shape), 0, 255).astype(np.uint8)
    assert gt_mean_psnr(noisy, high) == pytest.approx(psnr(noisy, high), abs=0.3)  # noise is not
