"""Parameter counts, shapes, serialization, and the fixes over the public Keras example."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mirnet import layers as L
from mirnet.architectures import ARCHITECTURES, AverageViews, FirstView, Mirror, SpreadViews, StackViews, build_model


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def full_mirnet_parameters(num_rrg: int, num_mrb: int, channels: int, fold: int = 1) -> int:
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
    rrg = 2 * conv(3, c, c) + num_mrb * mrb
    return conv(3, 3 * fold * fold, c) + num_rrg * rrg + conv(3, c, 3 * fold * fold)


def test_mirnet_lite_has_the_seed_summary_parameter_count():
    assert build_model("mirnet-lite", num_rrg=3, num_mrb=2, channels=64).count_params() == 446_659


@pytest.mark.slow
def test_full_mirnet_parameter_count_matches_the_block_diagram():
    model = build_model("mirnet", num_rrg=3, num_mrb=2, channels=64)
    assert model.count_params() == full_mirnet_parameters(3, 2, 64) == 44_157_007


@pytest.mark.parametrize(
    "arguments",
    [{"num_rrg": 1, "num_mrb": 2, "channels": 8}, {"channels": 8, "fold": 2, "num_rrg": 2, "num_mrb": 1}],
)
def test_small_full_mirnet_counts(arguments):
    assert build_model("mirnet", **arguments).count_params() == full_mirnet_parameters(
        arguments["num_rrg"], arguments["num_mrb"], arguments["channels"], arguments.get("fold", 1)
    )


def test_the_refinement_adds_three_full_resolution_convolutions_that_start_at_zero():
    arguments = {"channels": 4, "fold": 4, "num_rrg": 1, "num_mrb": 1}
    plain, refined = build_model("mirnet", **arguments), build_model("mirnet", refine=6, **arguments)
    added = conv(3, 6, 6) + conv(3, 6, 6) + conv(3, 6, 3)  # (output, dark input) -> 6 -> 6 -> 3
    assert refined.count_params() - plain.count_params() == added
    assert not np.any(refined.get_layer("refine_out").get_weights()[0])
    x = np.random.default_rng(1).random((1, 32, 48, 3), dtype=np.float32)
    body = keras.Model(refined.inputs, refined.get_layer("enhanced").output)
    np.testing.assert_array_equal(refined(x), body(x))  # zero-started: the refinement adds nothing yet


def test_a_refinement_on_folded_blocks_sees_each_blocks_pixels_and_also_starts_at_zero():
    arguments = {"channels": 4, "fold": 4, "num_rrg": 1, "num_mrb": 1}
    plain = build_model("mirnet", **arguments)
    refined = build_model("mirnet", refine=8, refine_fold=2, **arguments)
    added = conv(3, 24, 8) + conv(3, 8, 8) + conv(3, 8, 12)  # 2x2 blocks of (output, dark input) -> 8 -> 8 -> 2x2x3
    assert refined.count_params() - plain.count_params() == added
    x = np.random.default_rng(3).random((1, 32, 48, 3), dtype=np.float32)
    body = keras.Model(refined.inputs, refined.get_layer("enhanced").output)
    np.testing.assert_array_equal(refined(x), body(x))
    with pytest.raises(ValueError, match="refine_fold 3 must divide"):
        build_model("mirnet", refine=8, refine_fold=3, **arguments)


def test_refinement_blocks_are_dilated_residual_blocks_that_start_as_the_identity():
    """A refinement grown with ``refine_blocks`` from trained weights without them computes what those did; once
    a block's second convolution is non-zero, the output moves."""
    from mirnet.training import load_weights_by_layer

    arguments = {"channels": 4, "fold": 4, "num_rrg": 1, "num_mrb": 1, "refine": 6}
    rng = np.random.default_rng(4)
    trained = build_model("mirnet", **arguments)
    trained.get_layer("refine_out").set_weights([rng.normal(size=w.shape).astype("float32") for w in
                                                trained.get_layer("refine_out").get_weights()])
    grown = build_model("mirnet", refine_blocks=2, **arguments)
    assert grown.count_params() - trained.count_params() == 4 * conv(3, 6, 6)
    assert [grown.get_layer(f"refine_block_{i}a").dilation_rate for i in (1, 2)] == [(2, 2), (4, 4)]
    load_weights_by_layer(grown, trained)
    x = rng.random((1, 32, 48, 3), dtype=np.float32)
    np.testing.assert_allclose(grown(x), trained(x), atol=1e-6)
    block = grown.get_layer("refine_block_1b")
    block.set_weights([rng.normal(size=w.shape).astype("float32") for w in block.get_weights()])
    assert np.abs(np.asarray(grown(x)) - np.asarray(trained(x))).max() > 1e-3
    with pytest.raises(ValueError, match="refine_blocks needs a refinement"):
        build_model("mirnet", channels=4, fold=4, num_rrg=1, num_mrb=1, refine_blocks=1)


def test_a_refinement_context_starts_as_nothing_and_its_correction_keeps_each_images_mean_colour():
    """``refine_context`` grows a multi-scale block beside the refinement: grown from trained weights it computes
    what they did; once its tail is non-zero it moves the output, but (with ``refine_keeps_mean``) not any image's
    mean colour, because its correction is added before the mean is removed."""
    from mirnet.training import load_weights_by_layer

    arguments = {"channels": 8, "fold": 4, "num_rrg": 1, "num_mrb": 1, "refine": 6, "refine_keeps_mean": True}
    rng = np.random.default_rng(5)
    keras.utils.set_random_seed(5)
    trained = build_model("mirnet", **arguments)
    grown = build_model("mirnet", refine_context=8, **arguments)
    context = [layer for layer in grown.layers if layer.name.startswith("refine_context")]
    assert {layer.name for layer in context} >= {"refine_context_head", "refine_context_group", "refine_context_tail"}
    assert grown.count_params() - trained.count_params() == sum(layer.count_params() for layer in context)
    assert isinstance(grown.get_layer("refine_context_group"), L.RecursiveResidualGroup)
    load_weights_by_layer(grown, trained)
    x = rng.random((2, 64, 96, 3), dtype=np.float32)
    np.testing.assert_allclose(grown(x), trained(x), atol=1e-6)
    tail = grown.get_layer("refine_context_tail")
    # Small weights: a correction of the size training gives, so that float32 sums keep its mean's removal exact.
    tail.set_weights([0.01 * rng.normal(size=w.shape).astype("float32") for w in tail.get_weights()])
    moved, before = np.asarray(grown(x)), np.asarray(trained(x))
    assert np.abs(moved - before).max() > 1e-3
    np.testing.assert_allclose(moved.mean(axis=(1, 2)), before.mean(axis=(1, 2)), atol=1e-5)
    with pytest.raises(ValueError, match="refine_context needs a refinement"):
        build_model("mirnet", channels=8, fold=4, num_rrg=1, num_mrb=1, refine_context=8)


@pytest.mark.parametrize("refine_fold", [1, 2])
def test_a_refinement_that_keeps_the_mean_moves_detail_but_not_each_images_mean_colour(refine_fold):
    from mirnet.global_statistics import recording

    model = build_model(
        "mirnet", channels=4, fold=4, num_rrg=1, num_mrb=1, refine=4, refine_keeps_mean=True, refine_fold=refine_fold
    )
    rng = np.random.default_rng(2)
    kernel, bias = model.get_layer("refine_out").get_weights()
    model.get_layer("refine_out").set_weights([rng.normal(size=kernel.shape).astype("float32"), np.ones_like(bias)])
    body = keras.Model(model.inputs, model.get_layer("enhanced").output)
    x = rng.random((2, 32, 48, 3), dtype=np.float32)
    with recording() as values:
        refined = np.asarray(model(x))
    plain = np.asarray(body(x))
    assert np.abs(refined - plain).max() > 0.5  # the correction is large ...
    np.testing.assert_allclose(refined.mean(axis=(1, 2)), plain.mean(axis=(1, 2)), atol=1e-5)  # ... its mean zero
    assert tuple(values[-1].shape) == (2, 1, 1, 3)  # the mean it removes is one tiles replay


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_output_has_the_input_shape(name):
    model = build_model(name, num_rrg=1, num_mrb=1, channels=4)
    x = np.random.default_rng(0).random((2, 32, 48, 3), dtype=np.float32)
    assert model(x).shape == (2, 32, 48, 3)


def test_unknown_architecture_and_argument_are_errors():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("unet")
    with pytest.raises(ValueError, match="not \\['depth'\\]"):
        build_model("mirnet-lite", depth=3)


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


def test_body_views_inside_the_network_compute_what_test_time_views_compute_outside_it():
    """``body_views`` runs the body on mirrored copies inside the network: without a refinement, exactly the
    Enhancer's test-time views of the same weights (the refinement then runs once, on their average)."""
    from mirnet.inference import Enhancer
    from mirnet.models import LoadedModel
    from mirnet.training import load_weights_by_layer

    arguments = {"channels": 4, "fold": 4, "num_rrg": 1, "num_mrb": 1}
    plain = build_model("mirnet", **arguments)
    rng = np.random.default_rng(4)
    plain.set_weights([rng.normal(scale=0.1, size=w.shape).astype("float32") for w in plain.get_weights()])
    inside = build_model("mirnet", body_views=3, **arguments)
    load_weights_by_layer(inside, plain)
    assert inside.count_params() == plain.count_params()  # one body, its weights shared by the views
    image = rng.random((32, 48, 3), dtype=np.float32)
    card = {"architecture": "mirnet", "arguments": arguments}
    outside = Enhancer(LoadedModel(plain, card, "test", "test"), tile=None, views=3).enhance(image)
    single = Enhancer(LoadedModel(plain, card, "test", "test"), tile=None, views=1).enhance(image)
    computed = np.clip(np.asarray(inside(image[None]))[0], 0.0, 1.0)
    np.testing.assert_allclose(computed, outside, atol=5e-4)  # float32 sums in another order
    assert np.abs(computed - single).max() > 1e-2  # the views differ: the comparison above can fail
    with pytest.raises(ValueError, match="body_views must be one of"):
        build_model("mirnet", body_views=5, **arguments)
    # Under bf16 the mirrored inputs stay float32: each is added back to its view's output unrounded.
    mixed = build_model("mirnet", policy="mixed_bfloat16", body_views=3, **arguments)
    views = [layer for layer in mixed.layers if isinstance(layer, (StackViews, AverageViews))]
    assert len(views) == 2 and {layer.compute_dtype for layer in views} == {"float32"}


# The last packaged network saved with one pass of the body per view: mirnet-lol-v12, as committed here.
V12_COMMIT = "1c06954"


def test_the_body_runs_its_views_as_one_batch_and_computes_what_one_pass_per_view_computed(tmp_path):
    """v12 was saved from a network that ran its body once per view (Mirror, Add, Average); the network built now
    runs the views as one batch of the body. Same weights in the same order, same output."""
    from mirnet.models import load_model
    from tests.scripts.loading import load_script

    # The weights and card as committed there, written out the way scripts/validation_scenes.py reads a commit.
    packaged = load_model(load_script("validation_scenes")._model_path(V12_COMMIT, tmp_path))
    assert packaged.version == "mirnet-lol-v12"
    saved = packaged.model
    assert sum(isinstance(layer, Mirror) for layer in saved.layers) == 6  # three views mirrored there and back
    built = build_model(packaged.architecture, **packaged.arguments)
    assert sum(isinstance(layer, StackViews) for layer in built.layers) == 1
    assert not any(isinstance(layer, Mirror) for layer in built.layers)
    built.set_weights(saved.get_weights())
    image = np.random.default_rng(7).random((1, 64, 96, 3), dtype=np.float32) * 0.2
    np.testing.assert_allclose(np.asarray(built(image)), np.asarray(saved(image)), atol=1e-5)


def test_views_of_a_network_with_its_views_inside_are_the_copies_its_body_runs_on():
    """For a network built with ``body_views``, the Enhancer's ``views`` (the card's, the CLI's, the workers'
    ``VIEWS``) chooses how many mirrored copies the body runs on, with the same weights; the network runs once."""
    from mirnet.inference import Enhancer
    from mirnet.models import LoadedModel

    arguments = {"channels": 4, "fold": 4, "num_rrg": 1, "num_mrb": 1, "refine": 4, "refine_keeps_mean": True}
    rng = np.random.default_rng(5)
    four = build_model("mirnet", body_views=4, **arguments)
    four.set_weights([rng.normal(scale=0.1, size=w.shape).astype("float32") for w in four.get_weights()])
    loaded = LoadedModel(four, {"architecture": "mirnet", "arguments": {**arguments, "body_views": 4}}, "t", "t")
    image = rng.random((32, 48, 3), dtype=np.float32)
    shipped = Enhancer(loaded, tile=None)
    assert shipped.views == 4
    np.testing.assert_allclose(shipped.enhance(image), np.clip(np.asarray(four(image[None]))[0], 0, 1), atol=1e-6)
    two = build_model("mirnet", body_views=2, **arguments)
    two.set_weights(four.get_weights())
    fewer = Enhancer(loaded, tile=None, views=2)
    assert fewer.views == 2
    expected = np.clip(np.asarray(two(image[None]))[0], 0, 1)
    np.testing.assert_allclose(fewer.enhance(image), expected, atol=1e-6)
    assert np.abs(expected - shipped.enhance(image)).max() > 1e-3  # two copies are not four: the test can fail
    np.testing.assert_allclose(Enhancer(loaded, tile=None, views=1, precision="bf16").enhance(image),
                               Enhancer(loaded, tile=None, views=1).enhance(image), atol=0.03)


def test_a_card_s_fp32_fallback_chooses_the_views_only_when_the_model_runs_in_fp32():
    """A model that ships in bf16 can name fewer body views for fp32 (``inference.fp32_views``), for CPUs without
    bf16 instructions: fp32 runs them, bf16 runs the views the network was built with, and ``views`` overrides."""
    from mirnet.inference import Enhancer
    from mirnet.models import LoadedModel

    arguments = {"channels": 4, "fold": 4, "num_rrg": 1, "num_mrb": 1, "refine": 4, "refine_keeps_mean": True}
    rng = np.random.default_rng(6)
    four = build_model("mirnet", body_views=4, **arguments)
    four.set_weights([rng.normal(scale=0.1, size=w.shape).astype("float32") for w in four.get_weights()])
    card = {
        "architecture": "mirnet",
        "arguments": {**arguments, "body_views": 4},
        "inference": {"views": 1, "precision": "bf16", "fp32_views": 2},
    }
    loaded = LoadedModel(four, card, "t", "t")
    image = rng.random((32, 48, 3), dtype=np.float32)
    fallback = Enhancer(loaded, tile=None, precision="fp32")
    assert fallback.views == 2
    two = build_model("mirnet", body_views=2, **arguments)
    two.set_weights(four.get_weights())
    np.testing.assert_allclose(fallback.enhance(image), np.clip(np.asarray(two(image[None]))[0], 0, 1), atol=1e-6)
    assert Enhancer(loaded, tile=None, precision="bf16").views == 4
    assert Enhancer(loaded, tile=None, precision="fp32", views=4).views == 4
    plain = LoadedModel(four, {**card, "inference": {"views": 1, "precision": "bf16"}}, "t", "t")
    assert Enhancer(plain, tile=None, precision="fp32").views == 4


@pytest.mark.parametrize("refine_views", [1, 2])
def test_a_network_with_body_views_tiles_like_its_whole_image(lol_sample, refine_views):
    """Every view's averages (and the refinement's mean) are recorded in one whole-image pass and replayed by the
    tiles, in the order the views compute them: the packaged weights with their body views inside (and, since v13,
    the refinement seeing the views' spread, which is per pixel and so needs nothing recorded; since v14, the context
    seeing the body's features, computed under the same recorded averages, since v16 the refinement too, and since
    v18 the refinement seeing the context's features)."""
    from mirnet.imageio import load_rgb_uint8, to_uint8
    from mirnet.inference import Enhancer
    from mirnet.metrics import psnr
    from mirnet.models import LoadedModel, load_model
    from mirnet.training import load_weights_by_layer

    packaged = load_model()
    assert packaged.arguments["refine_spread"] and packaged.arguments["refine_context_features"]
    assert packaged.arguments["refine_features"] and packaged.arguments["refine_context_to_path"]
    arguments = {**packaged.arguments, "body_views": 3, "refine_views": refine_views}
    model = build_model("mirnet", **arguments)
    load_weights_by_layer(model, packaged.model)
    loaded = LoadedModel(model, {**packaged.card, "arguments": arguments, "inference": {"views": 1}}, "t", "t")
    image = load_rgb_uint8(str(lol_sample / "low" / "6.png")).astype(np.float32) / 255
    whole = to_uint8(Enhancer(loaded, tile=None).enhance(image))
    shared = Enhancer(loaded, tile=256)
    alone = to_uint8(Enhancer(loaded, tile=256, context=None).enhance(image))
    assert psnr(to_uint8(shared.enhance(image)), whole) > 45
    assert len(shared.batch_sizes) > 1 and psnr(alone, whole) < 35


def _random_mirnet(seed: int, **arguments):
    model = build_model("mirnet", **arguments)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.1, size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def test_an_anchored_network_is_the_detail_scaled_to_the_anchor_bodys_mean_colour():
    """``anchor=True``: a second body (``anchor_*``) beside the network; the output is the network's own, scaled
    per channel so that its mean colour is that body's. The anchor's refinement is left out: with
    ``refine_keeps_mean`` it does not move the mean colour, which the assertions below also check."""
    from mirnet.global_statistics import recording
    from mirnet.training import load_anchor_weights, load_weights_by_layer

    arguments = {"channels": 4, "fold": 4, "num_rrg": 1, "num_mrb": 1, "refine": 4, "refine_keeps_mean": True}
    detail = _random_mirnet(5, **arguments)
    source = _random_mirnet(6, **arguments)
    anchored = build_model("mirnet", anchor=True, **arguments)
    load_weights_by_layer(anchored, detail)
    load_anchor_weights(anchored, source)
    source_body = keras.Model(source.inputs, source.get_layer("enhanced").output)
    assert anchored.count_params() == detail.count_params() + source_body.count_params()

    x = np.random.default_rng(7).random((2, 32, 48, 3), dtype=np.float32)
    with recording() as values:
        out = np.asarray(anchored(x))
    own, target = np.asarray(detail(x)), np.asarray(source(x))
    gain = target.mean(axis=(1, 2)) / own.mean(axis=(1, 2))
    assert np.abs(np.log(gain)).max() > 0.05  # the two networks disagree: the checks below can fail
    np.testing.assert_allclose(out.mean(axis=(1, 2)), target.mean(axis=(1, 2)), rtol=1e-4)
    np.testing.assert_allclose(out, own * gain[:, None, None, :], rtol=1e-4, atol=1e-6)
    assert [tuple(v.shape) for v in values[-2:]] == [(2, 1, 1, 3)] * 2  # the means that tiles replay


def test_anchor_weights_must_fit_the_anchor_body():
    from mirnet.training import load_anchor_weights

    anchored = build_model("mirnet", anchor=True, channels=4, fold=4, num_rrg=1, num_mrb=1)
    with pytest.raises(ValueError, match="no layer 'anchor_head'"):
        load_anchor_weights(anchored, build_model("mirnet", channels=8, fold=4, num_rrg=1, num_mrb=1))
    with pytest.raises(ValueError, match="no layer 'anchor_group_2'"):
        load_anchor_weights(anchored, build_model("mirnet", channels=4, fold=4, num_rrg=2, num_mrb=1))


def test_an_anchored_network_tiles_like_its_whole_image(lol_sample):
    """Both means of the anchoring are recorded in the whole-image pass and replayed by the tiles: the packaged
    weights as the detail (3 body views inside), and a copy of them made brighter as the anchor."""
    from mirnet.imageio import load_rgb_uint8, to_uint8
    from mirnet.inference import Enhancer
    from mirnet.metrics import psnr
    from mirnet.models import LoadedModel, load_model
    from mirnet.training import load_anchor_weights, load_weights_by_layer

    packaged = load_model()
    brighter = build_model("mirnet", **packaged.arguments)
    brighter.set_weights(packaged.model.get_weights())
    kernel, bias = brighter.get_layer("tail").get_weights()
    brighter.get_layer("tail").set_weights([kernel, bias + 0.05])
    arguments = {**packaged.arguments, "body_views": 3, "anchor": True}
    model = build_model("mirnet", **arguments)
    load_weights_by_layer(model, packaged.model)
    load_anchor_weights(model, brighter)
    loaded = LoadedModel(model, {**packaged.card, "arguments": arguments, "inference": {"views": 1}}, "t", "t")
    image = load_rgb_uint8(str(lol_sample / "low" / "6.png")).astype(np.float32) / 255
    whole = Enhancer(loaded, tile=None).enhance(image)
    plain = Enhancer(packaged, tile=None, views=3).enhance(image)
    assert whole.mean() > plain.mean() + 0.02  # the anchor, not the detail, chose the brightness
    shared = Enhancer(loaded, tile=256)
    alone = to_uint8(Enhancer(loaded, tile=256, context=None).enhance(image))
    assert psnr(to_uint8(shared.enhance(image)), to_uint8(whole)) > 45
    assert len(shared.batch_sizes) > 1 and psnr(alone, to_uint8(whole)) < 35


# A small network with a refinement and its context, for the tests of what grows onto them.
SMALL_WITH_CONTEXT = {
    "channels": 8,
    "fold": 4,
    "num_rrg": 1,
    "num_mrb": 1,
    "refine": 6,
    "refine_keeps_mean": True,
    "refine_context": 8,
}


# v20's arguments on a small network: every input its refinement and context take.
SMALL_LIKE_V20 = {
    **SMALL_WITH_CONTEXT,
    "refine_blocks": 1,
    "body_views": 4,
    "refine_spread": True,
    "refine_context_features": True,
    "refine_features": True,
    "refine_context_to_path": True,
}


def test_a_deeper_refinement_context_grown_from_a_trained_one_starts_where_it_was():
    """``refine_context_groups`` adds residual groups after the context's block, each starting as the identity: a
    context grown deeper from trained weights computes what they did, and moves the output once a new group's
    last convolution is non-zero."""
    from mirnet.training import load_weights_by_layer

    arguments = SMALL_WITH_CONTEXT
    rng = np.random.default_rng(7)
    keras.utils.set_random_seed(7)
    trained = build_model("mirnet", **arguments)
    tail = trained.get_layer("refine_context_tail")
    tail.set_weights([0.01 * rng.normal(size=w.shape).astype("float32") for w in tail.get_weights()])
    grown = build_model("mirnet", refine_context_groups=3, **arguments)
    added = [grown.get_layer(f"refine_context_group_{i}") for i in (2, 3)]
    assert all(isinstance(layer, L.RecursiveResidualGroup) and layer.starts_as_identity for layer in added)
    assert grown.count_params() - trained.count_params() == sum(layer.count_params() for layer in added)
    load_weights_by_layer(grown, trained)
    x = rng.random((1, 64, 96, 3), dtype=np.float32)
    before = np.asarray(trained(x))
    np.testing.assert_allclose(grown(x), before, atol=1e-6)
    out = added[0].conv_out
    out.set_weights([0.1 * rng.normal(size=w.shape).astype("float32") for w in out.get_weights()])
    assert np.abs(np.asarray(grown(x)) - before).max() > 1e-4
    with pytest.raises(ValueError, match="refine_context_groups must be at least 1"):
        build_model("mirnet", refine_context_groups=0, **arguments)


def test_a_residual_group_keeps_starting_as_the_identity_through_a_save(tmp_path):
    group = L.RecursiveResidualGroup(4, 1, "multi_scale", starts_as_identity=True, name="group")
    inputs = keras.Input((16, 16, 4))
    model = keras.Model(inputs, group(inputs))
    x = np.random.default_rng(3).random((1, 16, 16, 4), dtype=np.float32)
    np.testing.assert_allclose(model(x), x, atol=1e-6)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.get_layer("group").starts_as_identity
    np.testing.assert_allclose(loaded(x), x, atol=1e-6)


@pytest.mark.parametrize("views", [1, 2, 3, 4])
def test_the_views_spread_is_the_standard_deviation_of_the_views_flipped_back(views):
    """Image-major batches as :class:`StackViews` makes them: each image's copies are flipped back before their
    spread is taken, so an image that is its own mirror image has none, and one view has none."""
    from mirnet.architectures import VIEW_FLIPS

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


def _grown_starts_where_it_was(seed: int, arguments: dict, layer: str, weights: int, **growth):
    """Grows ``growth`` (a new layer ``layer`` of ``weights`` parameters that starts at zero) onto a network of
    ``arguments`` with random weights, and checks that it computes what that network did, and moves once the new
    layer is non-zero. Returns the grown network (its new layer non-zero) and the input it was checked on."""
    from mirnet.training import load_weights_by_layer

    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    trained = _random_mirnet(seed, **arguments)
    grown = build_model("mirnet", **growth, **arguments)
    added = grown.get_layer(layer)
    assert grown.count_params() - trained.count_params() == added.count_params() == weights
    load_weights_by_layer(grown, trained)
    x = rng.random((1, 64, 96, 3), dtype=np.float32) * 0.3
    before = np.asarray(trained(x))
    np.testing.assert_allclose(grown(x), before, atol=1e-5)
    added.set_weights([rng.normal(scale=0.1, size=w.shape).astype("float32") for w in added.get_weights()])
    assert np.abs(np.asarray(grown(x)) - before).max() > 1e-3
    return grown, x


def test_a_refinement_grown_to_see_the_views_spread_starts_where_it_was():
    """``refine_spread``: the refinement's first convolution also sees where the body's views disagree, through a
    convolution that starts at zero, so a network grown from trained weights computes what they did, and moves
    once that convolution is non-zero; with one view there is no spread to see."""
    arguments = {**SMALL_WITH_CONTEXT, "refine_blocks": 1, "body_views": 4}
    grown, x = _grown_starts_where_it_was(11, arguments, "refine_spread", 3 * 3 * 3 * 6, refine_spread=True)
    added = grown.get_layer("refine_spread")
    one_view = build_model("mirnet", refine_spread=True, **{**arguments, "body_views": 1})
    one_view.set_weights(grown.get_weights())
    seen = np.asarray(one_view(x))
    one_view.get_layer("refine_spread").set_weights([np.zeros_like(w) for w in added.get_weights()])
    np.testing.assert_allclose(one_view(x), seen, atol=1e-6)
    with pytest.raises(ValueError, match="refine_spread needs a refinement"):
        build_model("mirnet", refine_spread=True, num_rrg=1, num_mrb=1, channels=8, fold=4)


@pytest.mark.parametrize("views", [1, 2, 3, 4])
def test_the_first_view_is_each_image_as_it_came(views):
    """Of an image-major batch of views (:class:`StackViews`), :class:`FirstView` keeps each image's own copy."""
    images = np.random.default_rng(4).random((3, 4, 6, 5), dtype=np.float32)
    stacked = np.asarray(StackViews(views)(images)).reshape(3, views, 4, 6, 5)
    # every view but the first moved, so that taking the wrong one shows
    marked = stacked + np.arange(views, dtype=np.float32)[None, :, None, None, None]
    np.testing.assert_allclose(FirstView(views)(marked.reshape(3 * views, 4, 6, 5)), images, atol=1e-6)


def test_a_context_grown_to_see_the_body_features_starts_where_it_was():
    """``refine_context_features``: the context also sees the body's last features on the image as it came, through
    a convolution that starts at zero, so a network grown from trained weights computes what they did, and moves
    once that convolution is non-zero; any number of body views takes the same weights and the same features of
    the first view."""
    arguments = {**SMALL_WITH_CONTEXT, "refine_blocks": 1, "body_views": 4, "refine_spread": True}
    channels, context = arguments["channels"], arguments["refine_context"]
    grown, x = _grown_starts_where_it_was(
        12, arguments, "refine_context_features", 3 * 3 * channels * context, refine_context_features=True
    )
    # The features seen are the body's on x itself: a one-view network with the same weights sees the same ones.
    one_view = build_model("mirnet", refine_context_features=True, **{**arguments, "body_views": 1})
    one_view.set_weights(grown.get_weights())
    seen = [keras.Model(m.input, m.get_layer("refine_context_features").input)(x) for m in (grown, one_view)]
    assert seen[0].shape == (1, 64 // 4, 96 // 4, channels)
    np.testing.assert_allclose(seen[0], seen[1], atol=1e-5)
    with pytest.raises(ValueError, match="refine_context_features needs a context"):
        build_model("mirnet", refine_context_features=True, **{**arguments, "refine_context": 0})


def test_a_refinement_grown_to_see_the_body_features_starts_where_it_was():
    """``refine_features``: the refinement's full-resolution path also takes the body's last features (at 1/fold of
    the image), through a convolution that starts at zero to ``refine`` channels for each pixel of a block, unfolded
    to full resolution: a network grown from trained weights computes what they did, and moves once that
    convolution is non-zero. The features are the first view's, whatever the number of views."""
    arguments = {
        **SMALL_WITH_CONTEXT,
        "refine_blocks": 1,
        "body_views": 4,
        "refine_spread": True,
        "refine_context_features": True,
    }
    channels, refine, fold = arguments["channels"], arguments["refine"], arguments["fold"]
    grown, x = _grown_starts_where_it_was(
        13, arguments, "refine_features", 3 * 3 * channels * refine * fold * fold, refine_features=True
    )
    unfolded = keras.Model(grown.input, grown.get_layer("refine_features_unfold").output)(x)
    assert unfolded.shape == (1, 64, 96, refine)
    one_view = build_model("mirnet", refine_features=True, **{**arguments, "body_views": 1})
    one_view.set_weights(grown.get_weights())
    seen = [keras.Model(m.input, m.get_layer("refine_features").input)(x) for m in (grown, one_view)]
    np.testing.assert_allclose(seen[0], seen[1], atol=1e-5)
    with pytest.raises(ValueError, match="refine_features needs a refinement"):
        build_model("mirnet", refine_features=True, num_rrg=1, num_mrb=1, channels=8, fold=4)


def test_a_refinement_grown_to_see_every_views_features_starts_where_it_was():
    """``refine_views_features``: the refinement's path also takes the body's last features averaged over all its
    views, each flipped back, through a convolution that starts at zero: a network grown from trained weights
    computes what they did, and moves once that convolution is non-zero. What it sees is the average of the
    features that one-view networks compute on the mirrored inputs, flipped back; three views (the fp32 fallback)
    take the same weights."""
    arguments = SMALL_LIKE_V20
    channels, refine, fold = arguments["channels"], arguments["refine"], arguments["fold"]
    grown, x = _grown_starts_where_it_was(
        15, arguments, "refine_views_features", 3 * 3 * channels * refine * fold * fold, refine_views_features=True
    )
    assert keras.Model(grown.input, grown.get_layer("refine_views_features_unfold").output)(x).shape == (1, 64, 96, 6)
    seen = np.asarray(keras.Model(grown.input, grown.get_layer("refine_views_features").input)(x))
    one_view = build_model("mirnet", refine_views_features=True, **{**arguments, "body_views": 1})
    one_view.set_weights(grown.get_weights())
    first = keras.Model(one_view.input, one_view.get_layer("refine_views_features").input)
    expected = np.mean([np.flip(first(np.flip(x, axes)), axes) for axes in ((), (2,), (1,), (1, 2))], axis=0)
    assert seen.shape == (1, 64 // fold, 96 // fold, channels)
    np.testing.assert_allclose(seen, expected, atol=1e-5)
    # The first view's features (refine_features) are not the average.
    assert np.abs(np.asarray(first(x)) - seen).max() > 1e-3
    three_views = build_model("mirnet", refine_views_features=True, **{**arguments, "body_views": 3})
    three_views.set_weights(grown.get_weights())
    assert three_views(x).shape == grown(x).shape
    with pytest.raises(ValueError, match="refine_views_features needs a refinement"):
        build_model("mirnet", refine_views_features=True, num_rrg=1, num_mrb=1, channels=8, fold=4)


@pytest.mark.parametrize("refine_fold", [1, 2])
def test_a_refinement_grown_to_see_the_context_features_starts_where_it_was(refine_fold):
    """``refine_context_to_path``: the refinement's path also takes the context's last features (its multi-scale
    block's output, ``refine_context`` channels at 1/fold of the image), through a convolution that starts at zero
    to ``refine`` channels for each pixel of the path's block, unfolded to the path's resolution: a network grown from
    trained weights computes what they did, and moves once that convolution is non-zero. On a path that folds 2x2
    pixels itself, the unfolding is by fold / 2; the body's features (``refine_features``) unfold the same way."""
    arguments = {
        **SMALL_WITH_CONTEXT,
        "refine_blocks": 1,
        "refine_fold": refine_fold,
        "body_views": 2,
        "refine_spread": True,
        "refine_context_features": True,
        "refine_features": True,
    }
    context, refine, scale = arguments["refine_context"], arguments["refine"], arguments["fold"] // refine_fold
    grown, x = _grown_starts_where_it_was(
        14, arguments, "refine_from_context", 3 * 3 * context * refine * scale * scale, refine_context_to_path=True
    )
    path = (1, 64 // refine_fold, 96 // refine_fold, refine)
    for name in ("refine_from_context_unfold", "refine_features_unfold"):
        assert keras.Model(grown.input, grown.get_layer(name).output)(x).shape == path
    # What it sees is the context's block output, the input of the context's tail.
    seen = keras.Model(grown.input, grown.get_layer("refine_from_context").input)(x)
    tail_input = keras.Model(grown.input, grown.get_layer("refine_context_tail").input)(x)
    assert seen.shape == (1, 64 // 4, 96 // 4, context)
    np.testing.assert_allclose(seen, tail_input)
    with pytest.raises(ValueError, match="refine_context_to_path needs a context"):
        build_model(
            "mirnet",
            refine_context_to_path=True,
            **{**arguments, "refine_context": 0, "refine_context_features": False},
        )


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



def test_the_refinement_on_two_views_is_the_network_averaged_with_its_left_right_mirror():
    """``refine_views=2``: the refinement and its context also run on the left-right mirror (the body's average, the
    input and the spread mirrored, the body's features of its mirrored view), and the two refined images, flipped
    back, are averaged. Mirroring the input of a network with four body views only reorders them, so that is the
    network's output averaged with its output on the mirrored input, flipped back: what stage 46 scored."""
    x = np.random.default_rng(16).random((2, 64, 96, 3), dtype=np.float32) * 0.3
    one = _random_mirnet(16, **SMALL_LIKE_V20)
    two = build_model("mirnet", refine_views=2, **SMALL_LIKE_V20)
    assert two.count_params() == one.count_params()
    two.set_weights(one.get_weights())
    plain = np.asarray(one(x))
    mirrored = np.asarray(one(x[:, :, ::-1]))[:, :, ::-1]
    np.testing.assert_allclose(np.asarray(two(x)), (plain + mirrored) / 2, atol=1e-5)
    assert np.abs(mirrored - plain).max() > 1e-3  # the refinement differs on the mirror: the test can fail
    four = build_model("mirnet", refine_views=4, **SMALL_LIKE_V20)
    four.set_weights(one.get_weights())
    flips = ((), (2,), (1,), (1, 2))
    expected = np.mean([np.flip(np.asarray(one(np.flip(x, axes))), axes) for axes in flips], axis=0)
    np.testing.assert_allclose(np.asarray(four(x)), expected, atol=1e-5)


def test_refine_views_needs_a_refinement_and_no_more_views_than_the_body():
    with pytest.raises(ValueError, match="refine_views must be one of 1 to body_views"):
        build_model("mirnet", refine_views=3, **{**SMALL_LIKE_V20, "body_views": 2})
    with pytest.raises(ValueError, match="refine_views needs a refinement"):
        build_model("mirnet", refine_views=2, channels=8, fold=4, num_rrg=1, num_mrb=1, body_views=2)
    with pytest.raises(ValueError, match="does not take refine_views_features"):
        build_model("mirnet", refine_views=2, refine_views_features=True, **SMALL_LIKE_V20)


def test_fewer_body_views_than_refinement_views_take_the_refinement_down_with_them():
    """The Enhancer's ``views`` (the body's copies) can be fewer than the card's ``refine_views``: the refinement then
    runs on as many as the body has, with the same weights, in either precision."""
    from mirnet.inference import Enhancer
    from mirnet.models import LoadedModel

    arguments = {**SMALL_LIKE_V20, "refine_views": 2}
    model = _random_mirnet(17, **arguments)
    loaded = LoadedModel(model, {"architecture": "mirnet", "arguments": arguments}, "t", "t")
    image = np.random.default_rng(17).random((32, 48, 3), dtype=np.float32) * 0.3
    single = build_model("mirnet", **{**arguments, "body_views": 1, "refine_views": 1})
    single.set_weights(model.get_weights())
    np.testing.assert_allclose(Enhancer(loaded, tile=None, views=1).enhance(image),
                               np.clip(np.asarray(single(image[None]))[0], 0, 1), atol=1e-5)
    assert Enhancer(loaded, tile=None, views=1, precision="bf16").enhance(image).shape == image.shape
    three = build_model("mirnet", **{**arguments, "body_views": 3})
    three.set_weights(model.get_weights())
    np.testing.assert_allclose(Enhancer(loaded, tile=None, views=3).enhance(image),
                               np.clip(np.asarray(three(image[None]))[0], 0, 1), atol=1e-5)


def test_the_fp32_fallback_can_run_the_refinement_on_fewer_views():
    """A card's ``inference.fp32_refine_views`` applies with its fp32 fallback (``fp32_views``) only: bf16 and an
    explicit ``views`` keep the refinement's own views."""
    from mirnet.inference import Enhancer
    from mirnet.models import LoadedModel

    arguments = {**SMALL_LIKE_V20, "refine_views": 2}
    model = _random_mirnet(18, **arguments)
    inference = {"views": 1, "precision": "bf16", "fp32_views": 3, "fp32_refine_views": 1}
    loaded = LoadedModel(model, {"architecture": "mirnet", "arguments": arguments, "inference": inference}, "t", "t")
    image = np.random.default_rng(18).random((32, 48, 3), dtype=np.float32) * 0.3
    fallback = Enhancer(loaded, tile=None, precision="fp32")
    assert fallback.views == 3
    three_once = build_model("mirnet", **{**arguments, "body_views": 3, "refine_views": 1})
    three_once.set_weights(model.get_weights())
    expected = np.clip(np.asarray(three_once(image[None]))[0], 0, 1)
    np.testing.assert_allclose(fallback.enhance(image), expected, atol=1e-5)
    three_twice = Enhancer(loaded, tile=None, precision="fp32", views=3).enhance(image)
    assert np.abs(three_twice - expected).max() > 1e-4  # an explicit views keeps both refinements: this can fail
    in_bf16 = Enhancer(loaded, tile=None, precision="bf16").model
    mirrored = sum(isinstance(layer, StackViews) for layer in in_bf16.layers)
    assert mirrored == 1 + 3  # the body's views, and the refinement's inputs, average and spread on two views
