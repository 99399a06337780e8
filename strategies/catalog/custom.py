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
* ``KscMaskZero`` passes its input through and masks the timesteps equal to ``mask_value``
  (``compute_mask``, ANDed with an incoming mask), for the RNNs after it.
* ``KscScaleKwarg`` has a call keyword ``scale=1.0``; the model calls it with the spec's
  ``call_scale`` (never the default), so savers must trace that value.
* ``KscSeededNoise`` adds seeded Gaussian noise in training: a ``SeedGenerator`` in Keras 3,
  a stateless op keyed by ``(seed, step)`` with an int64 ``step`` counter in tf_keras. Each
  training call draws anew (not reproducible call to call), but the same seed and state give
  the same noise.
* ``KscNormBlock``'s ``call`` takes no ``training``; its inner BatchNormalization does, so the
  framework passes the mode down and savers must trace both modes.
* ``KscGain`` (a per-channel ``gain`` weight, sometimes frozen) is *not* registered: loaders
  must revive it.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from .base import Kind, framework_name, pick, register

ANY_RANK = (1, 2, 3, 4)
_CACHE: dict[str, dict[str, Any]] = {}
# Classes kept out of custom_objects (and of the registry): loaders must revive them.
_UNREGISTERED: dict[str, dict[str, Any]] = {}
# Each new kind is drawn about as often as a one-rank-in-twelve kind (modest CI cost).
_RARE = 2


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

    @reg
    class KscMaskZero(K.layers.Layer):
        def __init__(self, mask_value=0.0, **kwargs):
            super().__init__(**kwargs)
            self.mask_value = float(mask_value)
            self.supports_masking = True

        def call(self, inputs):
            return inputs

        def compute_mask(self, inputs, mask=None):
            # Keras 3 calls compute_mask on symbolic tensors too: its ops, not tf's.
            ops = tf if legacy else K.ops
            value = ops.cast(self.mask_value, inputs.dtype)
            keep = (tf.reduce_any if legacy else ops.any)(ops.not_equal(inputs, value), axis=-1)
            if mask is None:
                return keep
            return ops.logical_and(keep, ops.cast(mask, "bool"))

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "mask_value": self.mask_value}

    @reg
    class KscScaleKwarg(K.layers.Layer):
        def call(self, inputs, scale=1.0):
            return inputs * tf.cast(scale, inputs.dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

    @reg
    class KscSeededNoise(K.layers.Layer):
        def __init__(self, stddev=0.1, seed=0, **kwargs):
            super().__init__(**kwargs)
            self.stddev = float(stddev)
            self.seed = int(seed)
            if not legacy:
                self.seed_generator = K.random.SeedGenerator(self.seed)

        def build(self, input_shape):
            if legacy:
                self.step = self.add_weight(
                    name="seed_step", shape=(), dtype="int64", initializer="zeros",
                    trainable=False,
                )
            super().build(input_shape)

        def call(self, inputs, training=None):
            if training is not True:  # a Python bool in both frameworks' saves
                return inputs
            shape = tf.shape(inputs)
            if legacy:
                seed = tf.stack([tf.constant(self.seed, tf.int64), self.step.read_value()])
                self.step.assign_add(tf.constant(1, tf.int64))
                noise = tf.random.stateless_normal(shape, seed=seed, dtype=inputs.dtype)
            else:
                noise = K.random.normal(shape, seed=self.seed_generator, dtype=inputs.dtype)
            return inputs + tf.cast(self.stddev, inputs.dtype) * noise

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}

    @reg
    class KscNormBlock(K.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.norm = K.layers.BatchNormalization(
                name=f"{self.name}_bn", dtype=kwargs.get("dtype")
            )

        def build(self, input_shape):
            self.norm.build(input_shape)
            super().build(input_shape)

        def call(self, inputs):  # no training argument: the call context passes it down
            return self.norm(inputs)

        def compute_output_shape(self, input_shape):
            return input_shape

    class KscGain(K.layers.Layer):  # deliberately not registered
        def build(self, input_shape):
            self.gain = self.add_weight(
                name="gain", shape=(int(input_shape[-1]),), initializer="ones", trainable=True
            )
            super().build(input_shape)

        def call(self, inputs):
            return inputs * tf.cast(self.gain, inputs.dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

    _UNREGISTERED[fw] = {"KscGain": KscGain}
    _CACHE[fw] = {
        "KscScaledL2": KscScaledL2,
        "KscInputLoss": KscInputLoss,
        "KscWeightLoss": KscWeightLoss,
        "KscTrainingScale": KscTrainingScale,
        "KscCounter": KscCounter,
        "KscMaskZero": KscMaskZero,
        "KscScaleKwarg": KscScaleKwarg,
        "KscSeededNoise": KscSeededNoise,
        "KscNormBlock": KscNormBlock,
    }
    return _CACHE[fw]


def unregistered_objects(K) -> dict[str, Any]:
    """The custom classes for ``K`` that are deliberately not registered."""
    custom_objects(K)
    return _UNREGISTERED[framework_name(K)]


def _make(name):
    def make(K, p, kw):
        classes = {**custom_objects(K), **unregistered_objects(K)}
        # call_* parameters are call arguments (Kind.call_kwargs), not constructor ones
        return classes[name](**{k: v for k, v in p.items() if not k.startswith("call_")}, **kw)

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
register(
    Kind(
        name="KscMaskZero",
        family="custom",
        ranks=(2,),
        params=lambda draw, s, d: {"mask_value": pick(draw, (0.0, 1.0))},
        out_shape=lambda s, p: s[0],
        make=_make("KscMaskZero"),
        supports_mask=True,
        produces_mask=lambda p, m: True,
        weight=_RARE,
    )
)
register(
    Kind(
        name="KscScaleKwarg",
        family="custom",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {"call_scale": pick(draw, (2.0, 0.5, -1.0))},
        out_shape=lambda s, p: s[0],
        make=_make("KscScaleKwarg"),
        call_kwargs=lambda p: {"scale": p["call_scale"]},
        in_sequential=False,  # Sequential passes no call arguments
        weight=_RARE,
    )
)
register(
    Kind(
        name="KscSeededNoise",
        family="custom",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {
            "stddev": pick(draw, (0.1, 1.0)),
            "seed": draw(st.integers(0, 1000)),
        },
        out_shape=lambda s, p: s[0],
        make=_make("KscSeededNoise"),
        deterministic_in_training=False,  # each training call advances the seed state
        weight=_RARE,
    )
)
register(
    Kind(
        name="KscNormBlock",
        family="custom",
        ranks=ANY_RANK,
        params=lambda draw, s, d: {},
        out_shape=lambda s, p: s[0],
        make=_make("KscNormBlock"),
        weight=_RARE,
    )
)
register(
    Kind(
        name="KscGain",
        family="custom",
        ranks=ANY_RANK,
        # sometimes frozen: loaders must keep the layer's trainable flag
        params=lambda draw, s, d: {"trainable": pick(draw, (True, True, False))},
        out_shape=lambda s, p: s[0],
        make=_make("KscGain"),
        weight=_RARE,
    )
)
