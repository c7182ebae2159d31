"""The building blocks of MIRNet (Zamir et al., ECCV 2020) as serializable Keras layers.

Every layer takes its sizes as plain constructor arguments and returns them from ``get_config``, so a saved
``.keras`` file rebuilds the same graph and loads back to identical outputs. Two defects of the public Keras
example are fixed here: the final fusion of a multi-scale residual block receives all three streams (the example
passes the third one twice), and selective-kernel fusion normalises its attention across the streams with a
softmax, as the paper describes (the example applies a softmax over channels within each stream).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

from mirnet.global_statistics import spatial_mean

PACKAGE = "mirnet"


def _reduced(channels: int, reduction: int, floor: int = 1) -> int:
    return max(channels // reduction, floor)


def _conv(
    filters: int, kernel: int, name: str, activation: str | None = None, initializer: str = "glorot_uniform"
) -> layers.Conv2D:
    return layers.Conv2D(
        filters, kernel, padding="same", activation=activation, kernel_initializer=initializer, name=name
    )


class CompositeLayer(layers.Layer):
    """A layer that makes its sublayers in ``__init__``.

    Keras applies a saved ``trainable=False`` in ``Layer.__init__``, before the sublayers exist, so they would come
    back trainable: a resumed run that trains only some layers (``train_layers``) would train the frozen ones too.
    Each subclass's ``__init__`` is therefore followed by passing the layer's flag on to what it made.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own_init = cls.__init__

        def __init__(self, *args, **kw):
            own_init(self, *args, **kw)
            if not self.trainable:
                for sublayer in self._layers:  # (setting self.trainable to the value it has changes nothing)
                    sublayer.trainable = False

        __init__.__doc__ = own_init.__doc__
        cls.__init__ = __init__


class _FactorLayer(layers.Layer):
    """A weightless layer configured by one integer, ``factor``."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PixelUnshuffle(_FactorLayer):
    """Folds ``factor x factor`` pixel blocks into channels (space to depth), so a body runs at 1/``factor`` of the
    resolution and still sees every pixel. A factor of 1 changes nothing."""

    def call(self, inputs):
        return tf.nn.space_to_depth(inputs, self.factor) if self.factor > 1 else inputs


@keras.saving.register_keras_serializable(package=PACKAGE)
class PixelShuffle(_FactorLayer):
    """The inverse of :class:`PixelUnshuffle` (depth to space)."""

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.factor) if self.factor > 1 else inputs


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelPooling(layers.Layer):
    """Mean and max over channels, concatenated: the two-channel summary spatial attention looks at."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs):
        average = ops.mean(inputs, axis=self.axis, keepdims=True)
        maximum = ops.max(inputs, axis=self.axis, keepdims=True)
        return ops.concatenate([average, maximum], axis=self.axis)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[self.axis] = 2
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpatialAttention(CompositeLayer):
    """Re-weights positions: channel pooling, a convolution to one map, a sigmoid gate."""

    def __init__(self, kernel_size: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = kernel_size
        self.pool = ChannelPooling(name="pool")
        self.conv = _conv(1, kernel_size, "conv", activation="sigmoid")

    def call(self, inputs):
        return inputs * self.conv(self.pool(inputs))

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelAttention(CompositeLayer):
    """Re-weights channels (squeeze and excitation): global average, bottleneck, sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.reduction = reduction
        self.squeeze = layers.Conv2D(_reduced(channels, reduction), 1, activation="relu", name="squeeze")
        self.excite = layers.Conv2D(channels, 1, activation="sigmoid", name="excite")

    def call(self, inputs):
        descriptor = spatial_mean(inputs)
        return inputs * self.excite(self.squeeze(descriptor))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "reduction": self.reduction}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DualAttentionUnit(CompositeLayer):
    """Two convolutions, then channel and spatial attention side by side, fused by a 1x1 convolution, plus input."""

    def __init__(self, channels: int, reduction: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.reduction = reduction
        self.conv_1 = _conv(channels, 3, "conv_1", activation="relu")
        self.conv_2 = _conv(channels, 3, "conv_2")
        self.channel_attention = ChannelAttention(channels, reduction, name="channel_attention")
        self.spatial_attention = SpatialAttention(name="spatial_attention")
        self.fuse = layers.Conv2D(channels, 1, name="fuse")

    def call(self, inputs):
        features = self.conv_2(self.conv_1(inputs))
        both = ops.concatenate([self.channel_attention(features), self.spatial_attention(features)], axis=-1)
        return inputs + self.fuse(both)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "reduction": self.reduction}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DownSample(CompositeLayer):
    """Halves resolution and doubles channels: a convolutional branch with max pooling plus a pooled skip."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.main_1 = layers.Conv2D(channels, 1, activation="relu", name="main_1")
        self.main_2 = _conv(channels, 3, "main_2", activation="relu")
        self.main_pool = layers.MaxPooling2D(name="main_pool")
        self.main_out = layers.Conv2D(2 * channels, 1, name="main_out")
        self.skip_pool = layers.MaxPooling2D(name="skip_pool")
        self.skip_out = layers.Conv2D(2 * channels, 1, name="skip_out")

    def call(self, inputs):
        main = self.main_out(self.main_pool(self.main_2(self.main_1(inputs))))
        return main + self.skip_out(self.skip_pool(inputs))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def _upscale_2x(x):
    """Bilinear 2x upscaling that works on unknown spatial sizes (Keras' UpSampling2D needs them known)."""
    resized = tf.image.resize(x, tf.shape(x)[1:3] * 2, method="bilinear")
    return ops.cast(resized, x.dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class UpSample(CompositeLayer):
    """Doubles resolution (bilinear) and halves channels: a convolutional branch plus an upsampled skip."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.main_1 = layers.Conv2D(channels, 1, activation="relu", name="main_1")
        self.main_2 = _conv(channels, 3, "main_2", activation="relu")
        self.main_out = layers.Conv2D(channels // 2, 1, name="main_out")
        self.skip_out = layers.Conv2D(channels // 2, 1, name="skip_out")

    def call(self, inputs):
        main = self.main_out(_upscale_2x(self.main_2(self.main_1(inputs))))
        return main + self.skip_out(_upscale_2x(inputs))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SelectiveKernelFusion(CompositeLayer):
    """Fuses same-shaped streams with attention that sums to one across the streams at every channel."""

    def __init__(self, channels: int, streams: int = 3, reduction: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.streams = streams
        self.reduction = reduction
        self.squeeze = layers.Conv2D(_reduced(channels, reduction, floor=4), 1, activation="relu", name="squeeze")
        self.select = [layers.Conv2D(channels, 1, name=f"select_{i}") for i in range(streams)]

    def call(self, inputs):
        if len(inputs) != self.streams:
            raise ValueError(f"expected {self.streams} streams, got {len(inputs)}")
        summary = self.squeeze(spatial_mean(sum(inputs[1:], inputs[0])))
        logits = ops.stack([select(summary) for select in self.select], axis=0)
        weights = ops.softmax(logits, axis=0)
        return sum(weights[i] * stream for i, stream in enumerate(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = {"channels": self.channels, "streams": self.streams, "reduction": self.reduction}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MultiScaleResidualBlock(CompositeLayer):
    """Three parallel streams at full, 1/2 and 1/4 resolution that exchange information twice, plus input.

    Stream ``i`` has ``channels * 2**i`` channels. Each stream is refined by a dual attention unit, every stream
    receives the others resampled to its scale and fuses them (selective kernel fusion), is refined again, and the
    three are finally fused at full resolution. Inputs must have sides divisible by 4.
    """

    def __init__(self, channels: int, reduction: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.reduction = reduction
        c = channels
        self.down_1_2 = DownSample(c, name="down_1_2")
        self.down_2_3 = DownSample(2 * c, name="down_2_3")
        self.dau_in = [DualAttentionUnit(c * 2**i, reduction, name=f"dau_in_{i + 1}") for i in range(3)]
        # Exchange: everything each stream needs from the others, resampled to its scale.
        self.x_2_to_1 = UpSample(2 * c, name="x_2_to_1")
        self.x_3_to_1 = [UpSample(4 * c, name="x_3_to_1_a"), UpSample(2 * c, name="x_3_to_1_b")]
        self.x_1_to_2 = DownSample(c, name="x_1_to_2")
        self.x_3_to_2 = UpSample(4 * c, name="x_3_to_2")
        self.x_1_to_3 = [DownSample(c, name="x_1_to_3_a"), DownSample(2 * c, name="x_1_to_3_b")]
        self.x_2_to_3 = DownSample(2 * c, name="x_2_to_3")
        self.fuse = [SelectiveKernelFusion(c * 2**i, 3, reduction, name=f"fuse_{i + 1}") for i in range(3)]
        self.dau_out = [DualAttentionUnit(c * 2**i, reduction, name=f"dau_out_{i + 1}") for i in range(3)]
        self.out_2_to_1 = UpSample(2 * c, name="out_2_to_1")
        self.out_3_to_1 = [UpSample(4 * c, name="out_3_to_1_a"), UpSample(2 * c, name="out_3_to_1_b")]
        self.fuse_out = SelectiveKernelFusion(c, 3, reduction, name="fuse_out")
        self.conv_out = _conv(c, 3, "conv_out")

    def call(self, inputs):
        level_2 = self.down_1_2(inputs)
        level_3 = self.down_2_3(level_2)
        d1, d2, d3 = (dau(x) for dau, x in zip(self.dau_in, (inputs, level_2, level_3), strict=True))
        f1 = self.fuse[0]([d1, self.x_2_to_1(d2), self.x_3_to_1[1](self.x_3_to_1[0](d3))])
        f2 = self.fuse[1]([self.x_1_to_2(d1), d2, self.x_3_to_2(d3)])
        f3 = self.fuse[2]([self.x_1_to_3[1](self.x_1_to_3[0](d1)), self.x_2_to_3(d2), d3])
        e1, e2, e3 = (dau(x) for dau, x in zip(self.dau_out, (f1, f2, f3), strict=True))
        fused = self.fuse_out([e1, self.out_2_to_1(e2), self.out_3_to_1[1](self.out_3_to_1[0](e3))])
        return inputs + self.conv_out(fused)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "reduction": self.reduction}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualConvBlock(CompositeLayer):
    """The seed's simplified multi-scale residual block: a 3x3 convolution, ReLU, plus input."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.conv = _conv(channels, 3, "conv", activation="relu")

    def call(self, inputs):
        return inputs + self.conv(inputs)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


BLOCKS = {"multi_scale": MultiScaleResidualBlock, "residual_conv": ResidualConvBlock}


@keras.saving.register_keras_serializable(package=PACKAGE)
class RecursiveResidualGroup(CompositeLayer):
    """A 3x3 convolution, ``num_blocks`` residual blocks, another 3x3 convolution, plus the group's input.

    With ``starts_as_identity`` the last convolution starts at zero, so the group starts out passing its input
    through: a group added to trained weights leaves what they compute unchanged until it trains.
    """

    def __init__(
        self, channels: int, num_blocks: int, block: str = "multi_scale", starts_as_identity: bool = False, **kwargs
    ):
        super().__init__(**kwargs)
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; choose from {sorted(BLOCKS)}")
        self.channels = channels
        self.num_blocks = num_blocks
        self.block = block
        self.starts_as_identity = starts_as_identity
        self.conv_in = _conv(channels, 3, "conv_in")
        self.blocks = [BLOCKS[block](channels, name=f"block_{i + 1}") for i in range(num_blocks)]
        self.conv_out = _conv(channels, 3, "conv_out", initializer="zeros" if starts_as_identity else "glorot_uniform")

    def call(self, inputs):
        x = self.conv_in(inputs)
        for block in self.blocks:
            x = block(x)
        return inputs + self.conv_out(x)

    def get_config(self):
        config = {
            "channels": self.channels,
            "num_blocks": self.num_blocks,
            "block": self.block,
            "starts_as_identity": self.starts_as_identity,
        }
        return {**super().get_config(), **config}
