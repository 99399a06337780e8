"""Every private TensorFlow and Keras API the reference implementation uses, in one place.

Each one stands in for a public API that TensorFlow 2 or Keras 3 does not have; the comment
on it says which. The other modules import these from here, so a TensorFlow or Keras
upgrade that moves one breaks this module only.

The other modules also read a few private attributes of the Keras objects they save or
trace, for the same reason (Keras 3 has no public accessor for them): a layer's
``_flatten_layers``, ``_call_has_training_arg``, ``_losses`` and ``_loss_ids``,
``_build_shapes_dict``, ``_trainable_variables`` and ``_metrics``; a recurrent cell's
``_dropout_mask`` and ``_recurrent_dropout_mask``; a Sequential model's ``_functional``; a
Functional model's ``_inputs_struct`` and ``_outputs_struct``. A revived
layer (:mod:`reference_impl.revive`) sets its own ``_call_has_training_arg`` and calls
``_track_variable``, as a Keras subclass does.

The SavedModel's protobuf classes (``tensorflow.core.protobuf``) are imported where they are
read: they are the format's schema, which TensorFlow ships as generated modules, not under
``tf``.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

# Keras keeps the current call context in its global state; it has no public accessor.
from keras.src.backend.common import global_state

# Keras has no public way to start an outermost call with a given ``training`` value.
from keras.src.layers.layer import CallContext

# Keras 3 exports no Functional class to tell a Functional model from a subclassed one.
from keras.src.models.functional import Functional

# Keras has no public lookup of a class by name and module that stops short of deserializing.
from keras.src.saving import serialization_lib

# TensorFlow has no public way to trace inside the context ``tf.saved_model.save`` saves in.
from tensorflow.python.saved_model.save_context import save_context

__all__ = [
    "FUNCTIONAL_MODULE",
    "AutoTrackable",
    "CallContext",
    "Functional",
    "find_class",
    "get_call_context",
    "save_context",
    "set_call_context",
]

# TensorFlow exports no plain trackable object (tf.Module adds a name scope); tf_keras uses it.
AutoTrackable = tf.__internal__.tracking.AutoTrackable

# tf_keras' metadata names no module; Keras 3 finds the Functional class only in this one.
FUNCTIONAL_MODULE = "keras.src.models.functional"

# The key of the current call context in Keras' global state.
_CALL_CONTEXT = "current_call_ctx"


def get_call_context() -> Any:
    """Keras' current call context (None outside any layer call)."""
    return global_state.get_global_attribute(_CALL_CONTEXT)


def set_call_context(context: Any) -> None:
    """Make ``context`` Keras' current call context (None: outside any layer call)."""
    global_state.set_global_attribute(_CALL_CONTEXT, context)


def find_class(
    class_name: str, registered_name: str, module: str, custom_objects: dict[str, Any]
) -> Any:
    """The class Keras' deserialization finds for the names; TypeError or ValueError if none.

    Keras' own lookup: registered and custom objects first, then ``module`` (only ``keras``
    packages are imported).
    """
    return serialization_lib._retrieve_class_or_fn(
        class_name,
        registered_name,
        module,
        obj_type="class",
        full_config={},
        custom_objects=custom_objects,
    )
