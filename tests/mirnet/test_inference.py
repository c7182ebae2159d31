"""Padding, clamping, tiling and batching."""

import numpy as np
import pytest

from mirnet.imageio import to_uint8
from mirnet.inference import Enhancer, pad_to_multiple
from mirnet.metrics import psnr
from mirnet.models import load_model
from mirnet.tiling import plan_windows


@pytest.fixture(scope="module")
def lite(tiny_lite_path):
    return load_model(tiny_lite_path)


@pytest.fixture(scope="module")
def full(tiny_full_path):
    return load_model(tiny_full_path)


def test_pad_reflects_and_handles_one_pixel_sides():
    image = np.arange(3 * 5 * 3, dtype=np.float32).reshape(3, 5, 3)
    padded = pad_to_multiple(image, 4)
    assert padded.shape == (4, 8, 3)
    assert np.array_equal(padded[3, :5], image[1])  # reflected row
    assert np.array_equal(padded[:3, 5], image[:, 3])  # reflected column
    assert pad_to_multiple(np.ones((1, 1, 3), np.float32), 8).shape == (8, 8, 3)


def test_to_uint8_rounds_and_clamps():
    values = np.array([-0.2, 0.0, 0.5 / 255, 1.49 / 255, 1.51 / 255, 1.0, 1.3], np.float32)
    assert to_uint8(values).tolist() == [0, 0, 0, 1, 2, 255, 255]  # 0.5 rounds to even


@pytest.mark.parametrize("size", [(1, 1), (3, 7), (37, 53)])
def test_any_size_comes_back_at_its_size_in_range(full, size, rng):
    out = Enhancer(full, tile=None).enhance(rng.random((*size, 3), dtype=np.float32))
    assert out.shape == (*size, 3) and out.min() >= 0.0 and out.max() <= 1.0


def test_windows_cover_every_pixel_with_positive_weight():
    weight = np.zeros((300, 410))
    for w in plan_windows(300, 410, tile=128, margin=10, blend=8):
        assert w.height == 128 and w.width == 128
        weight[w.top : w.top + w.height, w.left : w.left + w.width] += w.weights
    assert weight.min() > 0


def test_lite_tiled_output_equals_whole_image_output(lite, rng):
    """mirnet-lite's receptive field is finite; with the margin taken from it the tiles are exact."""
    image = rng.random((150, 170, 3), dtype=np.float32)
    whole = Enhancer(lite, tile=None).enhance(image)
    tiled_enhancer = Enhancer(lite, tile=48, batch_size=3)
    assert tiled_enhancer.margin == 2 + 2 * (1 + 2)
    tiled = tiled_enhancer.enhance(image)
    assert len(tiled_enhancer.batch_sizes) > 5  # it really was tiled
    assert np.abs(tiled - whole).max() < 1e-5
    assert (
        np.array_equal(to_uint8(tiled), to_uint8(whole))
        or np.abs(to_uint8(tiled).astype(int) - to_uint8(whole)).max() <= 1
    )  # float ties at a rounding boundary are the only allowed difference


def test_full_network_tiles_are_close_to_whole_image(full, lol_sample):
    from mirnet.imageio import load_rgb_uint8

    image = load_rgb_uint8(str(lol_sample / "low" / "6.png"))[:200, :240].astype(np.float32) / 255
    whole = to_uint8(Enhancer(full, tile=None).enhance(image))
    tiled = to_uint8(Enhancer(full, tile=128, margin=16).enhance(image))
    assert psnr(tiled, whole) > 35


def test_tiles_of_different_images_share_batches(lite, rng):
    images = [rng.random((100, 90, 3), dtype=np.float32), rng.random((60, 130, 3), dtype=np.float32)]
    enhancer = Enhancer(lite, tile=48, batch_size=8)
    together = enhancer.enhance_many(images)
    assert max(enhancer.batch_sizes) == 8  # more windows of one shape than either image alone... share batches
    alone = [Enhancer(lite, tile=48, batch_size=1).enhance(image) for image in images]
    for a, b in zip(together, alone, strict=True):
        assert np.abs(a - b).max() < 1e-5


def test_bf16_is_close_to_fp32(full, rng):
    image = rng.random((32, 32, 3), dtype=np.float32) * 0.3
    fp32 = to_uint8(Enhancer(full, tile=None).enhance(image))
    bf16_enhancer = Enhancer(full, precision="bf16", tile=None)
    assert bf16_enhancer.model.layers[-2].dtype_policy.name in ("float32",)  # the tail stays in float32
    bf16 = to_uint8(bf16_enhancer.enhance(image))
    assert psnr(fp32, bf16) > 30


def test_bad_settings_are_refused(full, lite):
    with pytest.raises(ValueError, match="precision"):
        Enhancer(full, precision="fp8")
    with pytest.raises(ValueError, match="multiple of 4"):
        Enhancer(full, tile=130)
    with pytest.raises(ValueError, match="exceed"):
        Enhancer(lite, tile=20)


def test_views_average_the_mirrored_outputs(lite, rng):
    """Two views = clip((f(x) + mirror(f(mirror(x)))) / 2), computed here by hand from the raw network."""
    image = rng.random((40, 56, 3), dtype=np.float32)

    def raw(x):
        return lite.model(x[None].copy(), training=False).numpy()[0]

    one, mirrored, upside_down = raw(image), raw(image[:, ::-1])[:, ::-1], raw(image[::-1])[::-1]
    assert not np.allclose(one, mirrored, atol=1e-3)  # the network is not mirror-symmetric, so views matter
    two = Enhancer(lite, tile=None, views=2).enhance(image)
    three = Enhancer(lite, tile=None, views=3).enhance(image)
    assert np.allclose(two, np.clip((one + mirrored) / 2, 0, 1), atol=1e-5)
    assert np.allclose(three, np.clip((one + mirrored + upside_down) / 3, 0, 1), atol=1e-5)
    # Tiles stay exact with views: each view is the same finite-receptive-field network.
    assert np.abs(Enhancer(lite, tile=48, views=2).enhance(image) - two).max() < 1e-5


def test_inference_defaults_are_the_ones_the_cli_and_the_workers_take():
    import inspect

    from mirnet import choices

    defaults = {k: p.default for k, p in inspect.signature(Enhancer.__init__).parameters.items()}
    assert (defaults["precision"], defaults["tile"], defaults["batch_size"]) == ("auto", 1024, 1)
    assert (defaults["context"], defaults["views"]) == (choices.DEFAULT_CONTEXT, None) == (1024, None)


def test_views_default_to_the_model_card(lite):
    from mirnet.models import LoadedModel

    assert Enhancer(lite, tile=None).views == 1
    card = {**lite.card, "inference": {"views": 2}}
    assert Enhancer(LoadedModel(lite.model, card, lite.version, lite.source), tile=None).views == 2
    with pytest.raises(ValueError, match="views"):
        Enhancer(lite, tile=None, views=5)


def test_the_view_counts_offered_without_tensorflow_are_the_ones_inference_runs():
    from mirnet.choices import VIEW_COUNTS
    from mirnet.views import VIEW_FLIPS

    assert tuple(sorted(VIEW_FLIPS)) == VIEW_COUNTS


REFINED = {"channels": 4, "groups": 1, "blocks": 1, "fold": 2, "views": 4, "refine_views": 2}


@pytest.fixture(scope="module")
def refined():
    """A tiny mirnet-refined with random weights (every refinement part non-zero) and a card like the shipped one:
    bf16, with an fp32 fallback of 3 views and 1 refinement."""
    from mirnet.architectures import build_model
    from mirnet.models import LoadedModel

    model = build_model("mirnet-refined", **REFINED)
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(scale=0.1, size=w.shape).astype("float32") for w in model.get_weights()])
    inference = {"precision": "bf16", "fp32_views": 3, "fp32_refine_views": 1}
    return LoadedModel(
        model, {"architecture": "mirnet-refined", "arguments": REFINED, "inference": inference}, "t", "t"
    )


def _built(loaded, **arguments) -> np.ndarray:
    """The network of ``loaded`` built with other views, with its weights: what the Enhancer must run."""
    from mirnet.architectures import build_model

    model = build_model("mirnet-refined", **{**REFINED, **arguments})
    model.set_weights(loaded.model.get_weights())
    return model


def _run(model, image: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(model(image[None]))[0], 0, 1)


def test_the_views_of_a_network_with_its_views_inside_are_the_copies_its_body_runs_on(refined, rng):
    """The Enhancer's ``views`` (the CLI's, the workers' ``VIEWS``) choose how many mirrored copies the body runs on,
    with the same weights, in one pass; the refinement runs on no more views than the body has."""
    image = rng.random((32, 48, 3), dtype=np.float32) * 0.3
    shipped = Enhancer(refined, precision="bf16", tile=None)
    assert (shipped.views, shipped.model.get_layer("refined_views").views) == (4, 2)
    in_fp32 = Enhancer(refined, precision="fp32", tile=None, views=4)
    np.testing.assert_allclose(in_fp32.enhance(image), _run(refined.model, image), atol=1e-5)
    assert np.abs(shipped.enhance(image) - in_fp32.enhance(image)).mean() < 0.02  # bf16 rounds, on random weights
    two = Enhancer(refined, precision="fp32", tile=None, views=2)
    expected = _run(_built(refined, views=2), image)
    np.testing.assert_allclose(two.enhance(image), expected, atol=1e-5)
    assert np.abs(expected - in_fp32.enhance(image)).max() > 1e-4  # two copies are not four: the test can fail
    one = Enhancer(refined, precision="fp32", tile=None, views=1)
    np.testing.assert_allclose(one.enhance(image), _run(_built(refined, views=1, refine_views=1), image), atol=1e-5)


def test_the_fp32_fallback_runs_the_cards_views_and_refinements(refined, rng):
    """The card's ``inference.fp32_views`` and ``fp32_refine_views`` apply in fp32 only (a CPU without bf16); bf16
    runs the network's own, and an explicit ``views`` keeps the network's refinements."""
    from mirnet.inference import default_refine_views, default_views

    image = rng.random((32, 48, 3), dtype=np.float32) * 0.3
    fallback = Enhancer(refined, precision="fp32", tile=None)
    assert fallback.views == default_views(REFINED, refined.card, "fp32") == 3
    assert default_refine_views(REFINED, refined.card, "fp32") == 1
    assert (default_views(REFINED, refined.card, "bf16"), default_refine_views(REFINED, refined.card, "bf16")) == (4, 2)
    expected = _run(_built(refined, views=3, refine_views=1), image)
    np.testing.assert_allclose(fallback.enhance(image), expected, atol=1e-5)
    twice = Enhancer(refined, precision="fp32", tile=None, views=3).enhance(image)
    np.testing.assert_allclose(twice, _run(_built(refined, views=3, refine_views=2), image), atol=1e-5)
    assert np.abs(twice - expected).max() > 1e-5  # two refinements are not one: the test can fail


def test_tiles_of_a_refined_network_share_the_whole_image_statistics(refined, rng):
    """The body and the context average over their whole input: every view's averages (and the refinement's mean)
    are recorded in one whole-image pass and replayed by the tiles; tiles that each average alone disagree."""
    image = rng.random((96, 192, 3), dtype=np.float32) * 0.3
    whole = to_uint8(Enhancer(refined, precision="fp32", tile=None).enhance(image))
    shared = Enhancer(refined, precision="fp32", tile=96, margin=24)
    alone = to_uint8(Enhancer(refined, precision="fp32", tile=96, margin=24, context=None).enhance(image))
    tiled = to_uint8(shared.enhance(image))
    assert len(shared.batch_sizes) > 1
    # Random weights reach further than the margin (41.5 dB here), but shared averages gain 5 dB (alone: 36.3).
    assert psnr(tiled, whole) > 39 and psnr(tiled, whole) > psnr(alone, whole) + 3


def test_whole_and_tiled_images_of_one_window_shape_batch_apart(full, rng):
    """A 128x128 image runs whole with its own averages; the 128x128 tiles of a larger one use shared ones."""
    images = [rng.random((128, 128, 3), dtype=np.float32), rng.random((200, 240, 3), dtype=np.float32)]
    enhancer = Enhancer(full, tile=128, margin=16, batch_size=8)
    together = enhancer.enhance_many(images)
    alone = [Enhancer(full, tile=128, margin=16, batch_size=1).enhance(image) for image in images]
    for a, b in zip(together, alone, strict=True):
        assert np.abs(a - b).max() < 1e-5
    assert np.abs(together[0] - Enhancer(full, tile=None).enhance(images[0])).max() < 1e-5


def test_a_larger_image_shares_the_averages_of_a_downscaled_pass(full, rng):
    import tensorflow as tf

    from mirnet.global_statistics import recording

    image = rng.random((200, 240, 3), dtype=np.float32)
    enhancer = Enhancer(full, tile=128, margin=16, context=64)
    statistics = enhancer._whole_image_statistics(enhancer._canvas(image))
    downscaled = tf.image.resize(image, (53, 64), method="area", antialias=True).numpy()  # longer side 64
    with recording() as expected:
        full.model(pad_to_multiple(downscaled, enhancer.multiple)[None], training=False)
    assert statistics is not None and len(statistics) == 1 and len(statistics[0]) == len(expected) > 0
    for got, want in zip(statistics[0], expected, strict=True):
        assert np.allclose(got, want.numpy(), atol=1e-5)
    assert enhancer.enhance(image).shape == image.shape
    with pytest.raises(ValueError, match="context"):
        Enhancer(full, context=2)


def test_auto_precision_is_the_cards_where_bf16_is_native_and_faster(full):
    from mirnet.choices import cpu_has_bf16
    from mirnet.inference import bf16_pays, bf16_pays_here, bf16_probe_ratio, resolve_precision
    from mirnet.models import LoadedModel

    bf16_card = {"inference": {"views": 4, "precision": "bf16"}}
    assert resolve_precision("auto", bf16_card, pays=lambda: True) == "bf16"
    assert resolve_precision("auto", bf16_card, pays=lambda: False) == "fp32"  # emulated or slow bf16
    assert resolve_precision("auto", {"inference": {"views": 3}}, pays=lambda: True) == "fp32"
    assert resolve_precision("bf16", {}, pays=lambda: False) == "bf16"  # asked for: done, even where slow
    with pytest.raises(ValueError, match="ships with precision 'fp16'"):
        resolve_precision("auto", {"inference": {"precision": "fp16"}})
    assert cpu_has_bf16("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n")
    assert not cpu_has_bf16("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert not cpu_has_bf16("")

    # A GPU, or a CPU with the instructions whose probe runs bf16 faster; nothing is timed on a GPU or without them.
    def unasked() -> float:
        raise AssertionError("probed where the answer was known")

    assert bf16_pays(gpu=lambda: True, cpu_bf16=lambda: False, ratio=unasked)
    assert not bf16_pays(gpu=lambda: False, cpu_bf16=lambda: False, ratio=unasked)  # emulated bf16
    assert bf16_pays(gpu=lambda: False, cpu_bf16=lambda: True, ratio=lambda: 0.6)
    assert not bf16_pays(gpu=lambda: False, cpu_bf16=lambda: True, ratio=lambda: 1.65)  # a Xeon without AMX
    # The probe itself: a real timing on this machine, a positive ratio; and this machine's answer, probed once.
    assert 0 < bf16_probe_ratio(repeats=2) < 100
    assert bf16_pays_here() is bf16_pays_here()
    shipped_bf16 = LoadedModel(full.model, {**full.card, "inference": {"precision": "bf16"}}, "t", "t")
    assert Enhancer(shipped_bf16, precision="auto").precision == ("bf16" if bf16_pays_here() else "fp32")
    assert Enhancer(shipped_bf16, precision="fp32").precision == "fp32"
