"""Floating-point operations of a network on one image, counted from its TensorFlow graph.

Counts follow the TensorFlow profiler: a multiply-add is two operations, so a 3x3 convolution from C to C'
channels over H x W pixels costs 2 * 9 * C * C' * H * W. Element-wise and pooling operations are counted where
the profiler knows them; they are a small share for these networks.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from mirnet.architectures import ARCHITECTURES, resolve_arguments


def count_flops(model: keras.Model, height: int = 400, width: int = 600) -> int:
    """Operations for one ``height`` x ``width`` RGB image (600x400, LOL's size, by default)."""
    function = tf.function(lambda image: model(image, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec((1, height, width, 3), tf.float32))
    graph = convert_variables_to_constants_v2(concrete).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profile = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options)
    return int(profile.total_float_ops)


def gflops_per_image(
    model: keras.Model, architecture: str, arguments: dict, height: int = 400, width: int = 600
) -> float:
    """GFLOPs for one ``height`` x ``width`` image as inference runs it: padded to the architecture's size multiple."""
    multiple = ARCHITECTURES[architecture].size_multiple(resolve_arguments(architecture, arguments))
    return count_flops(model, -(-height // multiple) * multiple, -(-width // multiple) * multiple) / 1e9
