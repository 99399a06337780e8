"""Keras 3 configs translated into the form tf_keras' SavedModel loader rebuilds them from.

``keras_metadata.pb`` carries each saved object's config, and tf_keras 2.x's ``load_model``
rebuilds a layer from it with the layer's ``from_config``. A Keras 3 config does not rebuild
in tf_keras as it is: InputLayer says ``batch_shape`` where tf_keras says
``batch_input_shape``, dtype policies are serialized objects where tf_keras takes a name,
Functional models record their calls as ``{"args", "kwargs"}`` with ``__keras_tensor__``
records where tf_keras records ``[layer, node, tensor, kwargs]`` lists, and some layers
take arguments tf_keras does not know. :func:`translate` rewrites a config into tf_keras'
form, or raises :class:`Untranslatable` when the layer would not compute the same thing in
tf_keras; the saver then writes no tf_keras config for it and tf_keras revives the layer
from its saved functions instead.

Only the config is translated here. Which saved variables a layer rebuilt by tf_keras gets
is decided by the object graph (:func:`variable_name`, used by the saver).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Untranslatable", "translate", "variable_name", "DROPPED", "RENAMED"]


class Untranslatable(ValueError):
    """The config has no tf_keras equivalent; the message says why."""


# Keras 3 arguments tf_keras' class does not take, with the one value for which leaving the
# argument out means the same layer. Any other value is Untranslatable.
_ANY_LAYER = {"quantization_config": None, "optional": False}
DROPPED: dict[str, dict[str, Any]] = {
    "AdditiveAttention": {"seed": None},
    "Attention": {"seed": None},
    "BatchNormalization": {"renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99},
    "ConvLSTM1D": {"seed": None},
    "ConvLSTM2D": {"seed": None},
    "ConvLSTM3D": {"seed": None},
    "ConvLSTMCell": {"seed": None},
    "GRU": {"seed": None},
    "GRUCell": {"seed": None},
    "LSTM": {"seed": None},
    "LSTMCell": {"seed": None},
    "SimpleRNN": {"seed": None},
    "SimpleRNNCell": {"seed": None},
    "LayerNormalization": {"rms_scaling": False},
}

# Keras 3 argument name -> tf_keras argument name.
RENAMED: dict[str, dict[str, str]] = {
    "InputLayer": {"batch_shape": "batch_input_shape"},
}

# Activations tf_keras knows by the same name but computes differently: Keras 3's
# hard_sigmoid is relu6(x + 3) / 6, tf_keras' is clip(0.2 x + 0.5, 0, 1).
_ACTIVATIONS_DIFFERING = frozenset({"hard_sigmoid"})

# Keras 3 initializer arguments tf_keras' initializers do not take, with their neutral value.
_INITIALIZER_DROPPED = {"input_axes": None, "output_axes": None}

# Keras 3 variable name -> the name tf_keras' class tracks the same weight under.
_VARIABLE_RENAMED: dict[str, dict[str, str]] = {
    "DepthwiseConv1D": {"kernel": "depthwise_kernel"},
    "DepthwiseConv2D": {"kernel": "depthwise_kernel"},
}


def translate(class_name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The tf_keras form of the Keras 3 ``config`` of a ``class_name`` object.

    Raises:
        Untranslatable: an argument has no tf_keras equivalent at its value.
    """
    if class_name == "Functional":
        return _functional(config)
    if class_name == "Sequential":
        return _sequential(config)
    return _layer(class_name, config)


def variable_name(class_name: str, name: str) -> str:
    """The name tf_keras' ``class_name`` tracks the weight Keras 3 calls ``name`` under."""
    return _VARIABLE_RENAMED.get(class_name, {}).get(name, name)


# -- one layer ---------------------------------------------------------------------------


def _layer(class_name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    dropped = {**_ANY_LAYER, **DROPPED.get(class_name, {})}
    renamed = RENAMED.get(class_name, {})
    for key, value in config.items():
        if key in dropped:
            if value != dropped[key]:
                raise Untranslatable(
                    f"{class_name}({key}={value!r}): tf_keras' {class_name} has no '{key}'"
                )
            continue
        out[renamed.get(key, key)] = _value(key, value)
    return out


def _value(key: str, value: Any) -> Any:
    """An argument's value in tf_keras' form (dtype policies, nested serialized objects)."""
    if key == "dtype":
        return _dtype(value)
    if key.endswith("activation") and value in _ACTIVATIONS_DIFFERING:
        raise Untranslatable(f"{key}={value!r} means another function in tf_keras")
    if _is_serialized(value):
        return _serialized(value)
    return value


def _dtype(value: Any) -> Any:
    """A Keras 3 ``DTypePolicy`` record becomes its name, which tf_keras' layers take."""
    if isinstance(value, Mapping) and value.get("class_name") in (
        "DTypePolicy",
        "FloatDTypePolicy",
    ):
        return value.get("config", {}).get("name")
    if isinstance(value, Mapping):
        raise Untranslatable(f"dtype policy {value.get('class_name')!r} has no tf_keras form")
    return value


def _is_serialized(value: Any) -> bool:
    return isinstance(value, Mapping) and "class_name" in value and "config" in value


def _serialized(record: Mapping[str, Any]) -> dict[str, Any]:
    """A nested serialized object (an initializer, regularizer, constraint)."""
    out = dict(record)
    config = record.get("config")
    if str(record.get("module", "")).startswith("keras.initializers") and isinstance(
        config, Mapping
    ):
        config = dict(config)
        for key, neutral in _INITIALIZER_DROPPED.items():
            if key in config:
                if config[key] != neutral:
                    raise Untranslatable(
                        f"initializer {record['class_name']}({key}={config[key]!r}) has no "
                        "tf_keras form"
                    )
                del config[key]
        out["config"] = config
    return out


# -- models ------------------------------------------------------------------------------


def _entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One layer of a model's layer list: its class and translated config.

    tf_keras rebuilds a model's layers from their own saved nodes, not from this list (only
    a Sequential's InputLayer comes from it), so a layer without a tf_keras form keeps its
    Keras 3 config here: tf_keras revives that layer from its node, and a model whose
    config is None could not be loaded at all (tf_keras' RevivedNetwork cannot make a
    Functional model without its config).
    """
    class_name = entry["class_name"]
    try:
        config = translate(class_name, entry["config"])
    except Untranslatable:
        if class_name == "InputLayer":
            raise
        config = dict(entry["config"])
    out = {"class_name": class_name, "config": config}
    for key in ("module", "registered_name"):
        if entry.get(key) is not None:
            out[key] = entry[key]
    return out


def _sequential(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": config["name"],
        "layers": [_entry(entry) for entry in config["layers"]],
    }


def _functional(config: Mapping[str, Any]) -> dict[str, Any]:
    shifted = {entry["name"] for entry in config["layers"] if _has_own_first_node(entry)}
    layers = []
    for entry in config["layers"]:
        out = _entry(entry)
        out["name"] = entry["name"]
        out["inbound_nodes"] = [_node(node, shifted) for node in entry.get("inbound_nodes", [])]
        layers.append(out)
    return {
        "name": config["name"],
        "trainable": config.get("trainable", True),
        "layers": layers,
        "input_layers": _history_lists(config["input_layers"], shifted),
        "output_layers": _history_lists(config["output_layers"], shifted),
    }


def _has_own_first_node(entry: Mapping[str, Any]) -> bool:
    """Whether tf_keras counts a first node of this layer that Keras 3 does not.

    A tf_keras model built from an Input has a node of its own (inputs to outputs) before
    any call in an outer model, and the outer model's config counts it
    (``functional._should_skip_first_node``): its first call there is node 1, not 0.
    """
    if entry.get("class_name") == "Functional":
        return True
    if entry.get("class_name") == "Sequential":
        layers = entry.get("config", {}).get("layers") or [{}]
        return layers[0].get("class_name") == "InputLayer"
    return False


def _history(name: str, node_index: Any, tensor_index: Any, shifted: set[str]) -> list:
    return [name, int(node_index) + (name in shifted), int(tensor_index)]


def _history_lists(value: Any, shifted: set[str]) -> Any:
    """``[name, node, tensor]`` triples as lists (tf_keras' form), in their structure."""
    if isinstance(value, Mapping):
        return {key: _history_lists(item, shifted) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        if len(value) == 3 and isinstance(value[0], str):
            return _history(*value, shifted)
        return [_history_lists(item, shifted) for item in value]
    raise Untranslatable(f"unexpected input or output layer record {value!r}")


def _node(node: Any, shifted: set[str]) -> Any:
    """A Keras 3 call record ``{"args", "kwargs"}`` as tf_keras' node data.

    tf_keras records a call as the structure of its first argument, each tensor as
    ``[layer name, node index, tensor index, kwargs]``, the call's keyword arguments in
    every entry.
    """
    if not isinstance(node, Mapping) or "args" not in node:
        raise Untranslatable(f"unexpected call record {node!r}")
    args = list(node["args"])
    kwargs = dict(node.get("kwargs") or {})
    if len(args) != 1:
        raise Untranslatable(f"a call with {len(args)} positional arguments has no tf_keras form")
    for key, value in kwargs.items():
        if _contains_tensor(value):
            raise Untranslatable(f"a tensor passed as keyword '{key}' has no tf_keras form here")
    entries = _tensor_entries(args[0], kwargs, shifted)
    if _is_entry(entries):
        return [entries]
    return entries


def _is_keras_tensor(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("class_name") == "__keras_tensor__"


def _contains_tensor(value: Any) -> bool:
    if _is_keras_tensor(value):
        return True
    if isinstance(value, Mapping):
        return any(_contains_tensor(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_tensor(item) for item in value)
    return False


def _tensor_entries(value: Any, kwargs: dict[str, Any], shifted: set[str]) -> Any:
    if _is_keras_tensor(value):
        return [*_history(*value["config"]["keras_history"], shifted), kwargs]
    if isinstance(value, Mapping):
        return {key: _tensor_entries(item, kwargs, shifted) for key, item in value.items()}
    if isinstance(value, (list, tuple)) and value:
        return [_tensor_entries(item, kwargs, shifted) for item in value]
    raise Untranslatable(f"a constant call argument {value!r} has no tf_keras form here")


def _is_entry(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 4 and isinstance(value[0], str)
