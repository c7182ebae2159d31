"""Parameter counts, shapes, serialization, and the fixes over the public Keras example."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mirnet import layers as L
from mirnet.architectures import ARCHITECTURES, build_model
from mirnet.views import VIEW_FLIPS, AverageViews, FirstView, SpreadViews, StackViews


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def full_mirnet_parameters(groups: int, blocks: int, channels: int, fold: int = 1) -> int:
    """Counted from the paper's block diagram, independently of the implementation."""

    def ca(c):
        r = max(c // 8, 1)
        return conv(1, c, r) + conv(1, r, c)

    def dau(c):
        return 2 * conv(3, c, c) + ca(c) + conv(1, 2, 1) + conv(1, 2 * c, c)

    def down(c):
        return conv(1, c, c) + conv(3, c, c) + 2 * conv(1, c, 2 * c)

    def up(c):
        return conv(1, c, c) + conv(3, c, c) + 2 * conv(1, c, c // 2)

    def skff(c):
        z = max(c // 8, 4)
        return conv(1, c, z) + 3 * conv(1, z, c)

    c = channels
    encoder = down(c) + down(2 * c)
    daus = dau(c) + dau(2 * c) + dau(4 * c)
    exchange = (up(2 * c) + up(4 * c) + up(2 * c)) + (down(c) + up(4 * c)) + (down(c) + down(2 * c) + down(2 * c))
    fusions = skff(c) + skff(2 * c) + skff(4 * c)
    output = up(2 * c) + up(4 * c) + up(2 * c) + skff(c) + conv(3, c, c)
    mrb = encoder + 2 * daus + exchange + fusions + output
    rrg = 2 * conv(3, c, c) + blocks * mrb
    return conv(3, 3 * fold * fold, c) + groups * rrg + conv(3, c, 3 * fold * fold)


def test_mirnet_lite_has_the_seed_summary_parameter_count():
    assert build_model("mirnet-lite").count_params() == 446_659


@pytest.mark.slow
def test_full_mirnet_parameter_count_matches_the_block_diagram():
    model = build_model("mirnet")
    assert model.count_params() == full_mirnet_parameters(3, 2, 64) == 44_157_007


def test_small_full_mirnet_counts():
    assert build_model("mirnet", groups=1, blocks=2, channels=8).count_params() == full_mirnet_parameters(1, 2, 8)


# A tiny mirnet-refined: its size multiple is 8 (4 x fold), so 32 x 48 images run whole.
TINY = {"channels": 4, "groups": 1, "blocks": 1, "fold": 2}


def _randomize(model: keras.Model, seed: int) -> keras.Model:
    """Small random weights: every part of the refinement non-zero."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.1, size=w.shape).astype("float32") for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def fresh() -> keras.Model:
    """A tiny mirnet-refined as built: its refinement untrained."""
    return build_model("mirnet-refined", **TINY)


@pytest.fixture
def random(fresh) -> keras.Model:
    """The tiny network with random weights, given back to its fresh ones after the test."""
    initial = fresh.get_weights()
    yield _randomize(fresh, 2)
    fresh.set_weights(initial)


def _images(seed: int, shape=(2, 32, 48, 3)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32) * 0.3


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_output_has_the_input_shape(name):
    arguments = {"channels": 4, "groups": 1, "blocks": 1, **({"fold": 2} if name == "mirnet-refined" else {})}
    model = build_model(name, **arguments)
    assert model(_images(0)).shape == (2, 32, 48, 3)


def test_the_shipped_architecture_is_the_defaults_of_mirnet_refined():
    assert ARCHITECTURES["mirnet-refined"].defaults == {
        "channels": 32, "groups": 2, "blocks": 1, "fold": 4, "views": 4, "refine_views": 2
    }  # fmt: skip
    assert ARCHITECTURES["mirnet"].defaults == ARCHITECTURES["mirnet-lite"].defaults == {
        "channels": 64, "groups": 3, "blocks": 2
    }  # fmt: skip


def test_unknown_architecture_and_argument_are_errors():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("unet")
    with pytest.raises(ValueError, match="not \\['depth'\\]"):
        build_model("mirnet-lite", depth=3)
    with pytest.raises(ValueError, match="not \\['fold'\\]"):
        build_model("mirnet", fold=4)
    with pytest.raises(ValueError, match="refine_views must be one of 1 to views"):
        build_model("mirnet-refined", views=2, refine_views=3, **TINY)
    with pytest.raises(ValueError, match="views must be one of"):
        build_model("mirnet-refined", views=5, **TINY)


def test_an_untrained_refinement_computes_exactly_the_average_of_the_bodys_views(fresh):
    """Every part of the refinement starts at zero: a fresh mirnet-refined is its body's views' average."""
    model = fresh
    body_average = keras.Model(model.input, model.get_layer("enhanced").output)
    x = _images(1)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(body_average(x)))


# Each part of the refinement: the layers that start at zero, and the layers only that part uses. With the first at
# zero, the part changes nothing whatever the others hold (as it was when the part was grown onto trained weights).
PARTS = {
    "dilated block 1": (["refine_block_1b"], ["refine_block_1a"]),
    "dilated block 3": (["refine_block_3b"], ["refine_block_3a"]),
    "context": (["refine_context_tail", "refine_from_context"], ["refine_context_head", "refine_context_group"]),
    "context sees the body": (["refine_context_features"], []),
    "views' spread": (["refine_spread"], []),
    "body's features": (["refine_features"], []),
    "whole refinement": (["refine_out", "refine_context_tail"], ["refine_1", "refine_2", "refine_block_2a"]),
}


def test_every_part_of_the_refinement_starts_at_zero(fresh):
    for zeros, _ in PARTS.values():
        for name in zeros:
            assert all(not np.any(w) for w in fresh.get_layer(name).get_weights()), name


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_part_of_the_refinement_at_zero_changes_nothing(part, random):
    zeros, exclusive = PARTS[part]
    model = random
    x = _images(2)
    moved = np.asarray(model(x))
    for name in zeros:
        layer = model.get_layer(name)
        layer.set_weights([np.zeros(w.shape, "float32") for w in layer.get_weights()])
    at_zero = np.asarray(model(x))
    assert np.abs(at_zero - moved).max() > 1e-4  # the part did something: the test can fail
    rng = np.random.default_rng(3)
    for name in exclusive:
        layer = model.get_layer(name)
        layer.set_weights([rng.normal(scale=0.3, size=w.shape).astype("float32") for w in layer.get_weights()])
    if part == "whole refinement":
        body_average = keras.Model(model.input, model.get_layer("enhanced").output)
        np.testing.assert_allclose(at_zero, np.asarray(body_average(x)), atol=1e-6)
    np.testing.assert_allclose(np.asarray(model(x)), at_zero, atol=1e-6)


def test_views_are_a_batched_self_ensemble_of_the_body(random):
    """The body on ``views`` mirrored copies, flipped back and averaged: with the refinement at zero, the network of
    4 views is the mean of the 1-view network on the image's four mirrors, flipped back."""
    for name in ("refine_out", "refine_context_tail"):
        layer = random.get_layer(name)
        layer.set_weights([np.zeros(w.shape, "float32") for w in layer.get_weights()])
    one = build_model("mirnet-refined", **TINY, views=1, refine_views=1)
    one.set_weights(random.get_weights())
    x = _images(4)
    expected = np.mean([np.flip(np.asarray(one(np.flip(x, axes))), axes) for axes in VIEW_FLIPS[4]], axis=0)
    np.testing.assert_allclose(np.asarray(random(x)), expected, atol=1e-5)
    assert np.abs(expected - np.asarray(one(x))).max() > 1e-4


def test_the_refinement_on_two_views_is_the_network_averaged_with_its_left_right_mirror(random):
    """``refine_views=2``: the refinement also runs on the left-right mirror (the body's average, the input and the
    spread mirrored, the body's features of its mirrored view), and the two, flipped back, are averaged. Mirroring
    the input of a network with four body views only reorders them, so that is the network of one refinement view
    averaged with its output on the mirrored input, flipped back."""
    two = random
    one = build_model("mirnet-refined", **TINY, refine_views=1)
    assert two.count_params() == one.count_params()
    one.set_weights(two.get_weights())
    x = _images(5)
    plain = np.asarray(one(x))
    mirrored = np.asarray(one(x[:, :, ::-1]))[:, :, ::-1]
    np.testing.assert_allclose(np.asarray(two(x)), (plain + mirrored) / 2, atol=1e-5)
    assert np.abs(mirrored - plain).max() > 1e-4  # the refinement differs on the mirror: the test can fail


def test_selective_kernel_fusion_weights_sum_to_one_across_streams():
    fusion = L.SelectiveKernelFusion(8)
    ones = tf.ones((1, 4, 4, 8))
    fusion([ones, ones, ones])  # builds the weights
    # Small weights from a local generator: with the default initialisers a channel's softmax could saturate on
    # one stream (a CI run saw exactly 1.0), and seeding Keras globally would leak into later tests.
    rng = np.random.default_rng(0)
    for weight in fusion.weights:
        weight.assign(rng.normal(0.0, 0.1, weight.shape).astype(np.float32))
    # If the weights of the three streams sum to 1, fusing three identical streams returns that stream.
    assert np.allclose(fusion([ones, ones, ones]).numpy(), 1.0, atol=1e-6)
    streams = [tf.fill((1, 4, 4, 8), v) for v in (1.0, 2.0, 3.0)]
    out = fusion(streams).numpy()
    # A convex combination of the streams per channel: inside [1, 3], and not stream 1 alone.
    assert out.min() >= 1.0 - 1e-6 and out.max() <= 3.0 + 1e-6 and out.max() > 1.0


def test_final_fusion_uses_all_three_streams():
    """The Keras example fuses (stream 1, stream 3, stream 3): stream 2's last up-sampling got no gradient."""
    block = L.MultiScaleResidualBlock(4)
    x = tf.random.uniform((1, 16, 16, 4), seed=1)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(block(x) ** 2)
    variables = block.out_2_to_1.trainable_variables + block.out_3_to_1[1].trainable_variables
    gradients = tape.gradient(y, variables)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)


@pytest.mark.parametrize(
    "layer, shape",
    [
        (L.ChannelPooling(), (1, 8, 8, 6)),
        (L.SpatialAttention(), (1, 8, 8, 6)),
        (L.ChannelAttention(6), (1, 8, 8, 6)),
        (L.DualAttentionUnit(6), (1, 8, 8, 6)),
        (L.DownSample(6), (1, 8, 8, 6)),
        (L.UpSample(6), (1, 8, 8, 6)),
        (L.MultiScaleResidualBlock(4), (1, 16, 16, 4)),
        (L.ResidualConvBlock(6), (1, 8, 8, 6)),
        (L.RecursiveResidualGroup(4, 1, "multi_scale"), (1, 16, 16, 4)),
    ],
)
def test_layers_rebuild_from_their_config(layer, shape):
    x = tf.random.uniform(shape, seed=2)
    y = layer(x)
    clone = layer.__class__.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    assert np.allclose(clone(x).numpy(), y.numpy(), atol=1e-6)
    assert keras.saving.get_registered_object(keras.saving.get_registered_name(layer.__class__)) is layer.__class__


def test_sampling_modules_change_scale_and_channels():
    x = tf.zeros((1, 8, 8, 6))
    assert L.DownSample(6)(x).shape == (1, 4, 4, 12)
    assert L.UpSample(6)(x).shape == (1, 16, 16, 3)


@pytest.mark.parametrize("count", [1, 2, 3])
def test_the_first_views_are_the_batch_that_fewer_views_stack(count):
    """``FirstView(views, count)`` keeps each image's first ``count`` views, image-major: what ``StackViews(count)``
    makes of the images, since the flips of fewer views are the first of more."""
    images = np.random.default_rng(5).random((3, 4, 6, 5), dtype=np.float32)
    stacked = np.asarray(StackViews(4)(images)).reshape(3, 4, 4, 6, 5)
    marked = stacked + np.array([0, 0, 0, 1], dtype=np.float32)[None, :, None, None, None]  # the 4th never taken
    kept = FirstView(4, count)(marked.reshape(12, 4, 6, 5))
    np.testing.assert_allclose(kept, StackViews(count)(images), atol=1e-6)
    with pytest.raises(ValueError, match="count must be between 1 and views"):
        FirstView(2, 3)


@pytest.mark.parametrize("views", [1, 2, 3, 4])
def test_the_views_spread_is_the_standard_deviation_of_the_views_flipped_back(views):
    """Image-major batches as :class:`StackViews` makes them: each image's copies are flipped back before their
    spread is taken, so an image that is its own mirror image has none, and one view has none."""
    rng = np.random.default_rng(3)
    images = rng.random((2, 4, 6, 3), dtype=np.float32)
    stacked = np.asarray(StackViews(views)(images))
    np.testing.assert_allclose(SpreadViews(views)(stacked), 0, atol=1e-6)  # the copies are exact mirrors
    # The body's outputs differ per view: perturb each copy as it lies, then compare with NumPy's std of the
    # copies flipped back by hand.
    outputs = stacked + rng.normal(scale=0.1, size=stacked.shape).astype("float32")
    grouped = outputs.reshape(2, views, 4, 6, 3)
    back = [np.flip(grouped[:, i], axes) if axes else grouped[:, i] for i, axes in enumerate(VIEW_FLIPS[views])]
    np.testing.assert_allclose(SpreadViews(views)(outputs), np.std(back, axis=0), atol=1e-6)
    np.testing.assert_allclose(AverageViews(views)(outputs), np.mean(back, axis=0), atol=1e-6)
