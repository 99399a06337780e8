"""Custom layers and a custom regularizer of our own, registered as serializable (package
``ksc``) in both frameworks.

* ``KscInputLoss`` adds a loss that depends on its input (``add_loss`` in ``call``).
* ``KscWeightLoss`` adds a loss that depends only on its weights (tf_keras: a callable loss
  added in ``build``, which tf_keras saves as an unconditional ``loss_fn``; Keras 3 has no
  callable losses, so it adds the same value in ``call``).
* ``KscTrainingScale`` takes ``training`` and scales its input by ``factor`` when training
  (deterministic).
* ``KscCounter`` keeps non-trainable state: an ``offset`` added to its input and an integer
  ``calls`` counter incremented on each training call (its output stays deterministic).
* ``KscScaledL2`` is a regularizer: ``factor * mean(x ** 2)``.
"""

from __future__ import annotations

from typing import Any

from .base import Kind, framework_name, pick, register

ANY_RANK = (1, 2, 3, 4)
_CACHE: dict[str, dict[str, Any]] = {}


def _register(K):
    saving = getattr(K, "saving", None)
    if saving is not None and hasattr(saving, "register_keras_serializable"):
        return saving.register_keras_serializable(package="ksc")
    return K.utils.register_keras_serializable(package="ksc")


def custom_objects(K) -> dict[str, Any]:
    """The custom classes for framework module ``K`` (keras or tf_keras), made once."""
    fw = framework_name(K)
    if fw in _CACHE:
        return _CACHE[fw]
    import tensorflow as tf  # lazily: drawing specs must not need TensorFlow

    reg = _register(K)
    legacy = fw == "tf_keras"

    @reg
    class KscScaledL2(K.regularizers.Regularizer):
        def __init__(self, factor=0.01):
            self.factor = float(factor)

        def __call__(self, x):
            return tf.cast(self.factor, x.dtype) * tf.reduce_mean(tf.square(x))

        def get_config(self):
            return {"factor": self.factor}

    @reg
    class KscInputLoss(K.layers.Layer):
        def __init__(self, rate=0.01, **kwargs):
            super().__init__(**kwargs)
            self.rate = float(rate)

        def call(self, inputs):
            x = tf.cast(inputs, tf.float32)
            self.add_loss(self.rate * tf.reduce_mean(tf.square(x)))
            return inputs

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "rate": self.rate}

    @reg
    class KscWeightLoss(K.layers.Layer):
        def __init__(self, rate=0.01, **kwargs):
            super().__init__(**kwargs)
            self.rate = float(rate)

        def build(self, input_shape):
            self.scale = self.add_weight(
                name="scale", shape=(int(input_shape[-1]),), initializer="ones", trainable=True
            )
            if legacy:
                self.add_loss(lambda: self._weight_loss())
            super().build(input_shape)

        def _weight_loss(self):
            return self.rate * tf.reduce_sum(tf.square(tf.cast(self.scale, tf.float32)))

        def call(self, inputs):
            if not legacy:
                self.add_loss(self._weight_loss())
            return inputs * tf.cast(self.scale, inputs.dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "rate": self.rate}

    @reg
    class KscTrainingScale(K.layers.Layer):
        def __init__(self, factor=0.5, **kwargs):
            super().__init__(**kwargs)
            self.factor = float(factor)

        def call(self, inputs, training=None):
            if training is None:
                return inputs
            t = tf.cast(training, inputs.dtype)
            return inputs * (1.0 + (tf.cast(self.factor, inputs.dtype) - 1.0) * t)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    @reg
    class KscCounter(K.layers.Layer):
        def build(self, input_shape):
            self.offset = self.add_weight(
                name="offset", shape=(int(input_shape[-1]),), initializer="zeros", trainable=False
            )
            self.calls = self.add_weight(
                name="calls", shape=(), dtype="int64", initializer="zeros", trainable=False
            )
            super().build(input_shape)

        def call(self, inputs, training=None):
            if training is True:
                self.calls.assign_add(tf.constant(1, tf.int64))
            return inputs + tf.cast(self.offset, inputs.dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

    _CACHE[fw] = {
        "KscScaledL2": KscScaledL2,
        "KscInputLoss": KscInputLoss,
        "KscWeightLoss": KscWeightLoss,
        "KscTrainingScale": KscTrainingScale,
        "KscCounter": KscCounter,
    }
    return _CACHE[fw]


def _make(name):
    def make(K, p, kw):
        return custom_objects(K)[name](**p, **kw)

    return make


register(
    Kind(
        name="KscInputLoss",
        family="custom",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {"rate": pick(draw, (0.01, 0.0, 1.0))},
        out_shape=lambda s, p: s[0],
        make=_make("KscInputLoss"),
    )
)
register(
    Kind(
        name="KscWeightLoss",
        family="custom",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {"rate": pick(draw, (0.01, 0.0, 1.0))},
        out_shape=lambda s, p: s[0],
        make=_make("KscWeightLoss"),
    )
)
register(
    Kind(
        name="KscTrainingScale",
        family="custom",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {"factor": pick(draw, (0.5, 2.0, 0.0))},
        out_shape=lambda s, p: s[0],
        make=_make("KscTrainingScale"),
    )
)
register(
    Kind(
        name="KscCounter",
        family="custom",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {},
        out_shape=lambda s, p: s[0],
        make=_make("KscCounter"),
    )
)
