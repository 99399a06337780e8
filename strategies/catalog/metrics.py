"""A custom metric of our own, registered as serializable (package ``ksc``) in both
frameworks: compiled models name it beside built-in metrics, so a loader must find it by its
registered name to compile the model again."""

from __future__ import annotations

from typing import Any

from .base import framework_name
from .custom import _register

CUSTOM_METRICS = ("ksc_mean_abs",)
_CACHE: dict[str, dict[str, Any]] = {}


def custom_metrics(K) -> dict[str, Any]:
    """The custom metric classes for framework module ``K``, by spec name, made once."""
    fw = framework_name(K)
    if fw in _CACHE:
        return _CACHE[fw]
    import tensorflow as tf  # lazily: drawing specs must not need TensorFlow

    register = _register(K)

    def mean_abs_error(y_true, y_pred):
        y_pred = tf.convert_to_tensor(y_pred)
        return tf.reduce_mean(tf.abs(y_pred - tf.cast(y_true, y_pred.dtype)), axis=-1)

    @register
    class KscMeanAbs(K.metrics.MeanMetricWrapper):
        def __init__(self, name="ksc_mean_abs", dtype=None):
            super().__init__(mean_abs_error, name=name, dtype=dtype)

        def get_config(self):
            return {"name": self.name, "dtype": self.dtype}

        @classmethod
        def from_config(cls, config):
            return cls(**config)

    _CACHE[fw] = {"ksc_mean_abs": KscMeanAbs}
    return _CACHE[fw]
