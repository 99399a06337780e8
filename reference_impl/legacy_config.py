"""Translate a config written by tf_keras (or ``tf.keras`` of TensorFlow 2.12–2.15) to Keras 3.

tf_keras' ``keras_metadata.pb`` holds the Keras 2 serialization: ``class_name`` and
``config`` without ``module``, InputLayer's ``batch_input_shape``, dtype policies as
``{"class_name": "Policy", ...}``, the legacy ``inbound_nodes`` lists, and arguments Keras 3
renamed or dropped. :func:`translate` rewrites a whole serialized model, top-down, one
function per concern; a layer that has no Keras 3 equivalent raises :class:`Untranslatable`
(the loader then revives the model from its saved functions).

Keras 3 reads the rest of the legacy format itself (initializer, regularizer and constraint
configs without ``module``, the list form of ``inbound_nodes``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

import keras

__all__ = ["Untranslatable", "is_legacy", "translate"]

# Arguments tf_keras writes that Keras 3 does not take, with the only value that means the
# same there (any other value does not translate).
_DROPPED: dict[str, dict[str, Any]] = {
    "Conv1DTranspose": {"groups": 1},
    "Conv2DTranspose": {"groups": 1},
    "Conv3DTranspose": {"groups": 1},
    "DepthwiseConv1D": {"groups": 1},
    "DepthwiseConv2D": {"groups": 1},
    "SeparableConv1D": {"groups": 1},
    "SeparableConv2D": {"groups": 1},
    "LSTM": {"time_major": False, "implementation": None},
    "GRU": {"time_major": False, "implementation": None},
    "SimpleRNN": {"time_major": False},
    "ConvLSTM1D": {"time_major": False},
    "ConvLSTM2D": {"time_major": False},
    "ConvLSTM3D": {"time_major": False},
    "LSTMCell": {"implementation": None},
    "GRUCell": {"implementation": None},
    "BatchNormalization": {"fused": None, "renorm": False, "renorm_clipping": None,
                           "renorm_momentum": 0.99, "virtual_batch_size": None,
                           "adjustment": None},
    "Embedding": {"input_length": None},
}
# Keys the metadata adds to nested configs for its own bookkeeping.
_BOOKKEEPING = ("shared_object_id",)
_MODELS = ("Functional", "Model", "Sequential")
_LOOKUPS = ("StringLookup", "IntegerLookup", "TextVectorization")
_ASSETS: dict[str, str | None] = {"dir": None}


@keras.saving.register_keras_serializable(package="reference_impl.legacy")
def hard_sigmoid(x: Any) -> Any:
    """tf_keras' ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)`` (Keras 3's is ``x / 6 + 0.5``)."""
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


# Activations by name whose Keras 3 namesake computes something else.
_ACTIVATIONS = {"hard_sigmoid": hard_sigmoid}
_ACTIVATION_KEYS = ("activation", "recurrent_activation")


class Untranslatable(Exception):
    """A config has no Keras 3 equivalent; the message says which layer and why."""


def is_legacy(record: Mapping[str, Any]) -> bool:
    """Whether a metadata record was written in the Keras 2 format (tf_keras, tf.keras)."""
    version = str(record.get("keras_version") or "")
    return "module" not in record and not version.startswith("3.")


def translate(serialized: Mapping[str, Any], assets: str | None = None) -> dict[str, Any]:
    """The Keras 3 form of a serialized tf_keras layer or model (``class_name``, ``config``).

    ``assets`` is the SavedModel's ``assets`` directory, where the vocabulary files of
    lookup layers were copied (given on the outermost call; nested calls keep it).
    """
    if assets is not None:
        _ASSETS["dir"] = assets
    serialized = _strip_bookkeeping(serialized)
    name = serialized.get("class_name")
    config = dict(serialized.get("config") or {})
    if name in ("Functional", "Model") and "layers" in config:
        config = _functional(config)
    elif name == "Sequential":
        config = _sequential(config)
    else:
        config = _layer(name, config)
    out = {key: value for key, value in serialized.items() if key not in ("config",)}
    out["config"] = config
    return out


# -- models ------------------------------------------------------------------------------


def _functional(config: dict) -> dict:
    """A Functional config: each layer translated, and its inbound node indices made Keras 3's."""
    sequential = {
        layer["config"].get("name", layer.get("name"))
        for layer in config["layers"]
        if layer.get("class_name") == "Sequential"
    }
    layers = []
    for layer in config["layers"]:
        translated = translate(layer)
        translated["name"] = layer.get("name", translated["config"].get("name"))
        translated["inbound_nodes"] = _inbound_nodes(layer.get("inbound_nodes", []), sequential)
        layers.append(translated)
    config["layers"] = layers
    config["input_layers"] = _node_refs(config.get("input_layers"), sequential)
    config["output_layers"] = _node_refs(config.get("output_layers"), sequential)
    return config


def _inbound_nodes(nodes: list, sequential: set) -> list:
    """tf_keras counts a nested model's construction as its node 0; Keras 3 does so for a
    Functional but not for a Sequential, whose first call is its node 0 there."""
    return [_node_refs(node, sequential) for node in nodes]


def _node_refs(refs: Any, sequential: set) -> Any:
    if isinstance(refs, list) and len(refs) >= 3 and isinstance(refs[0], str):
        layer, node_index, tensor_index, *rest = refs
        if layer in sequential and isinstance(node_index, int) and node_index > 0:
            node_index -= 1
        return [layer, node_index, tensor_index, *rest]
    if isinstance(refs, list):
        return [_node_refs(ref, sequential) for ref in refs]
    if isinstance(refs, dict):
        return {key: _node_refs(value, sequential) for key, value in refs.items()}
    return refs


def _sequential(config: dict) -> dict:
    config["layers"] = [translate(layer) for layer in config.get("layers", [])]
    return config


# -- layers ------------------------------------------------------------------------------


def _layer(class_name: str, config: dict) -> dict:
    """One layer's config: dtype policy, InputLayer shape, activations, nested layers,
    dropped arguments."""
    config = _dtype_policy(config)
    config = _activations(config)
    if class_name == "InputLayer":
        config = _input_layer(config)
    if class_name in _LOOKUPS:
        config = _vocabulary(class_name, config)
    for key in ("layer", "cell", "forward_layer", "backward_layer"):
        # Wrappers (TimeDistributed, Bidirectional) and RNN(cell) hold serialized layers.
        if isinstance(config.get(key), Mapping) and "class_name" in config[key]:
            config[key] = translate(config[key])
    if isinstance(config.get("cell"), list):  # StackedRNNCells / RNN([cells])
        config["cell"] = [translate(cell) for cell in config["cell"]]
    if isinstance(config.get("cells"), list):
        config["cells"] = [translate(cell) for cell in config["cells"]]
    return _dropped_arguments(class_name, config)


def _dtype_policy(config: dict) -> dict:
    """``{"class_name": "Policy", "config": {"name": "mixed_float16"}}`` → ``"mixed_float16"``."""
    dtype = config.get("dtype")
    if isinstance(dtype, Mapping):
        name = (dtype.get("config") or {}).get("name")
        if dtype.get("class_name") not in ("Policy", "DTypePolicy") or not isinstance(name, str):
            raise Untranslatable(f"layer '{config.get('name')}' has dtype policy {dtype!r}")
        config["dtype"] = name
    return config


def _activations(config: dict) -> dict:
    """Activations named as in tf_keras that Keras 3 defines differently keep tf_keras'."""
    for key in _ACTIVATION_KEYS:
        if isinstance(config.get(key), str) and config[key] in _ACTIVATIONS:
            config[key] = keras.saving.serialize_keras_object(_ACTIVATIONS[config[key]])
    return config


def _input_layer(config: dict) -> dict:
    """``batch_input_shape`` → ``batch_shape``; the input keeps its saved dtype."""
    if "batch_input_shape" in config:
        config["batch_shape"] = config.pop("batch_input_shape")
    if config.get("ragged"):
        raise Untranslatable(f"InputLayer '{config.get('name')}' is ragged")
    config.pop("ragged", None)
    return config


def _vocabulary(class_name: str, config: dict) -> dict:
    """A vocabulary given as a file: tf_keras wrote the writer's absolute path, and copied the
    file into the SavedModel's ``assets``; the tokens are read from there, inline."""
    vocabulary = config.get("vocabulary")
    if not isinstance(vocabulary, str):
        return config

    asset = os.path.join(_ASSETS["dir"] or "", os.path.basename(vocabulary))
    if not _ASSETS["dir"] or not os.path.isfile(asset):
        raise Untranslatable(
            f"{class_name} '{config.get('name')}' reads its vocabulary from {vocabulary!r}, "
            "which is not among the SavedModel's assets"
        )
    with open(asset, encoding=config.get("encoding") or "utf-8") as f:
        tokens = f.read().splitlines()
    config["vocabulary"] = [int(t) for t in tokens] if class_name == "IntegerLookup" else tokens
    config.pop("vocabulary_size", None)
    return config


def _dropped_arguments(class_name: str, config: dict) -> dict:
    """Drop the arguments Keras 3 does not take, where their value means its behaviour."""
    for key, default in _DROPPED.get(class_name, {}).items():
        if key in config:
            value = config.pop(key)
            if default is not None and value != default:
                raise Untranslatable(
                    f"{class_name} '{config.get('name')}' has {key}={value!r}, which Keras 3 "
                    "does not support"
                )
    cls = _keras_class(class_name)
    if cls is None:
        return config
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return config
    # A constructor without **kwargs (SpatialDropout*, ...) refuses the base Layer arguments
    # tf_keras always writes; only their default values are dropped.
    for key in [k for k in config if k not in parameters]:
        if key == "trainable" and config[key] is True:
            config.pop(key)
        elif key in ("noise_shape",) and config[key] is None:
            config.pop(key)
    return config


def _keras_class(class_name: str) -> type | None:
    cls = getattr(keras.layers, class_name, None)
    return cls if isinstance(cls, type) else None


def _strip_bookkeeping(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: _strip_bookkeeping(item)
            for key, item in value.items()
            if key not in _BOOKKEEPING
        }
    if isinstance(value, list):
        return [_strip_bookkeeping(item) for item in value]
    return value
