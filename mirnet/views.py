"""Test-time views inside the network: the body runs on mirrored copies of each image as one batch, and their
outputs, flipped back, are averaged (a self-ensemble that costs one batched pass instead of one pass per view).

Every layer here is weightless, so a network built for any number of views takes the same weights.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from mirnet.layers import PACKAGE

# The axes (of N x H x W x C) each view mirrors before the body and back after it: the image, its left-right, its
# up-down and its both-ways mirror. The flips of fewer views are the first of more.
VIEW_FLIPS: dict[int, list[list[int]]] = {1: [[]], 2: [[], [2]], 3: [[], [2], [1]], 4: [[], [2], [1], [1, 2]]}


class _ViewsLayer(layers.Layer):
    """A weightless layer between an image batch and its batch of ``views`` mirrored copies; the batch size is the
    only dimension it changes."""

    def __init__(self, views: int, **kwargs):
        super().__init__(**kwargs)
        if views not in VIEW_FLIPS:
            raise ValueError(f"views must be one of {sorted(VIEW_FLIPS)}, not {views}")
        self.views = views

    def compute_output_shape(self, input_shape):
        return (None, *input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "views": self.views}

    def grouped(self, inputs):
        """A batch stacked by :class:`StackViews` as images x views x H x W x C (the copies as they lie)."""
        shape = tf.shape(inputs)
        return tf.reshape(inputs, [-1, self.views, shape[1], shape[2], inputs.shape[-1]])

    def views_back(self, inputs) -> list:
        """A batch stacked by :class:`StackViews` as one tensor per view, each flipped back, in view order."""
        grouped = self.grouped(inputs)
        return [
            tf.reverse(grouped[:, index], axes) if axes else grouped[:, index]
            for index, axes in enumerate(VIEW_FLIPS[self.views])
        ]


@keras.saving.register_keras_serializable(package=PACKAGE)
class StackViews(_ViewsLayer):
    """N x H x W x C -> (N * views) x H x W x C: each image followed by its mirrored copies (:data:`VIEW_FLIPS`), so
    that one pass of the body runs every view as one batch. Image-major, so an image's views sit together: the order
    in which the spatial means recorded on a whole image stack up for its tiles."""

    def call(self, inputs):
        copies = [tf.reverse(inputs, axes) if axes else inputs for axes in VIEW_FLIPS[self.views]]
        shape = tf.shape(inputs)
        return tf.reshape(tf.stack(copies, axis=1), [-1, shape[1], shape[2], inputs.shape[-1]])


@keras.saving.register_keras_serializable(package=PACKAGE)
class AverageViews(_ViewsLayer):
    """The way back from :class:`StackViews`: each image's views flipped back and averaged, in view order."""

    def call(self, inputs):
        total = None
        for view in self.views_back(inputs):
            total = view if total is None else total + view
        return total / self.views


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpreadViews(_ViewsLayer):
    """Beside :class:`AverageViews`: the standard deviation of each image's views, flipped back, per pixel and
    channel: where the body's mirrored copies disagree, which the refinement looks at (zero for one view)."""

    def call(self, inputs):
        return tf.math.reduce_std(tf.stack(self.views_back(inputs), axis=1), axis=1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FirstView(_ViewsLayer):
    """Of a batch stacked by :class:`StackViews`, each image's first ``count`` views, still stacked image-major: the
    batch that :class:`StackViews` of ``count`` views would make (the flips of fewer views are the first of more).
    The refinement runs on ``count`` views and takes the body's features of exactly those."""

    def __init__(self, views: int, count: int = 1, **kwargs):
        super().__init__(views, **kwargs)
        if not 1 <= count <= views:
            raise ValueError(f"count must be between 1 and views ({views}), not {count}")
        self.count = count

    def call(self, inputs):
        if self.count == 1:
            return self.grouped(inputs)[:, 0]
        first = self.grouped(inputs)[:, : self.count]
        shape = tf.shape(inputs)
        return tf.reshape(first, [-1, shape[1], shape[2], inputs.shape[-1]])

    def get_config(self):
        return {**super().get_config(), "count": self.count}
