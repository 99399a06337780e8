"""Reviving a saved Keras object whose class is not known, from its saved functions.

The SavedModel is loaded with ``tf.saved_model.load``; the root's ``keras_api`` gives the
functions and variables. :class:`RevivedLayer` (and :class:`RevivedModel` for models) is a
Keras 3 layer that:

* exposes the loaded ``tf.Variable`` objects as Keras variables *sharing their storage*
  (``keras.Variable`` wraps an existing ``tf.Variable`` without copying it, so the saved
  functions and the optimizer see the same values), trainable and not as saved;
* calls ``call_and_return_all_conditional_losses`` with the ``training`` value Keras
  resolves (inference when none), and adds the returned input-dependent losses with
  ``add_loss``;
* gives each regularized variable a ``regularizer`` that runs the saved zero-argument loss
  function, so the regularization losses appear in ``losses`` wherever Keras looks for them
  (also inside a larger model).

It can therefore be called, fine-tuned with a gradient step, used inside a new model, and
saved again with :func:`reference_impl.save`. Its config cannot rebuild it (there is no
class to rebuild); a re-saved revived model is revived again.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import tensorflow as tf

from reference_impl.attributes import KERAS_API
from reference_impl.metadata import MetadataNode

__all__ = ["RevivedLayer", "RevivedModel", "revive"]


class _SavedFunctions:
    """Holds the loaded object out of Keras' and TensorFlow's attribute tracking."""

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded
        self.api = getattr(loaded, KERAS_API)


def _takes_training(function: Any) -> bool:
    """Whether a loaded call function was saved with a ``training`` argument."""
    for concrete in function.concrete_functions:
        return len(concrete.structured_input_signature[0]) > 1
    return False


def _saved_input_signature(function: Any) -> Any:
    """The first saved input signature (a nest of ``tf.TensorSpec``), or None."""
    for concrete in function.concrete_functions:
        return concrete.structured_input_signature[0][0]
    return None


def _as_saved_dtypes(inputs: Any, signature: Any) -> Any:
    """``inputs`` cast leaf by leaf to the saved signature's dtypes, where they line up.

    Keras casts floating inputs to the layer's compute dtype before ``call``; the saved
    functions want the dtypes they were traced with.
    """
    if signature is None:
        return inputs
    flat_inputs, flat_specs = tf.nest.flatten(inputs), tf.nest.flatten(signature)
    if len(flat_inputs) != len(flat_specs):
        return inputs
    cast = [
        tf.cast(x, spec.dtype) if tf.as_dtype(x.dtype) != spec.dtype else x
        for x, spec in zip(flat_inputs, flat_specs, strict=True)
    ]
    return tf.nest.pack_sequence_as(inputs, cast)


def _captured_handles(function: Any) -> list:
    return [c for concrete in function.concrete_functions for c in concrete.captured_inputs]


class RevivedLayer(keras.layers.Layer):
    """A Keras layer around the saved functions of a layer whose class is unknown."""

    def __init__(self, saved: _SavedFunctions, record: dict | None = None, **kwargs: Any):
        record = record or {}
        kwargs.setdefault("name", record.get("name"))
        kwargs.setdefault("trainable", record.get("trainable", True))
        if record.get("dtype") is not None:
            kwargs.setdefault("dtype", record["dtype"])
        super().__init__(**kwargs)
        self._saved = saved
        api = saved.api
        self._call_function = getattr(api, "call_and_return_all_conditional_losses", None)
        self._takes_training = self._call_function is not None and _takes_training(
            self._call_function
        )
        self._revive_variables(api)
        # reference_impl.save traces a revived layer again for this signature.
        self._saved_input_signature = (
            None if self._call_function is None else _saved_input_signature(self._call_function)
        )
        if self._saved_input_signature is not None:
            self.build(
                tf.nest.map_structure(
                    lambda s: tuple(s.shape.as_list()), self._saved_input_signature
                )
            )
        else:
            self.built = True

    def _revive_variables(self, api: Any) -> None:
        trainable_ids = {id(v) for v in api.trainable_variables}
        losses_by_handle = {}
        for loss_fn in api.regularization_losses:
            for handle in _captured_handles(loss_fn):
                losses_by_handle.setdefault(id(handle), loss_fn)
        for saved_variable in api.variables:
            variable = keras.Variable(
                initializer=saved_variable,  # the same tf.Variable, not a copy
                shape=saved_variable.shape,
                dtype=saved_variable.dtype.name,
                trainable=id(saved_variable) in trainable_ids,
                name=saved_variable.name.split(":")[0].replace("/", "_"),
            )
            loss_fn = losses_by_handle.get(id(saved_variable.handle))
            if loss_fn is not None:
                variable.regularizer = _SavedRegularizer(loss_fn)
            self._track_variable(variable)

    def build(self, input_shape: Any) -> None:
        # The variables already exist; building only records the input shape.
        del input_shape

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if self._call_function is None:
            raise NotImplementedError(
                f"Revived layer '{self.name}' was saved without call functions "
                "(it was not built when saved)."
            )
        inputs = _as_saved_dtypes(inputs, self._saved_input_signature)
        args = (inputs, bool(training)) if self._takes_training else (inputs,)
        outputs, losses = self._call_function(*args)
        for loss in losses:
            self.add_loss(loss)
        return outputs

    def get_config(self) -> dict:
        # Not enough to rebuild the layer: its class is what was unknown.
        return {"name": self.name, "trainable": self.trainable}


class RevivedModel(RevivedLayer, keras.Model):
    """A Keras model around the saved functions of a model whose class is unknown."""


class _SavedRegularizer:
    """A variable's regularizer that runs the saved zero-argument loss function."""

    def __init__(self, loss_fn: Any) -> None:
        self.loss_fn = loss_fn

    def __call__(self, value: Any) -> Any:
        del value  # The saved function reads the variable itself.
        return self.loss_fn()


_MODEL_IDENTIFIERS = ("_tf_keras_model", "_tf_keras_network", "_tf_keras_sequential")


def revive(path: str, root: MetadataNode | None) -> RevivedLayer:
    """Load the SavedModel at ``path`` and wrap its root in a revived layer or model."""
    loaded = tf.saved_model.load(path)
    saved = _SavedFunctions(loaded)
    record = dict(root.metadata) if root is not None else {}
    is_model = root is None or root.identifier in _MODEL_IDENTIFIERS
    revived = (RevivedModel if is_model else RevivedLayer)(saved, record)
    if revived._call_function is None:
        warnings.warn(
            f"The object at '{path}' was saved without call functions; the revived "
            f"{type(revived).__name__} holds its variables but cannot be called.",
            stacklevel=3,
        )
    return revived
