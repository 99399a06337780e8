"""The Keras metadata file of a SavedModel: ``keras_metadata.pb``.

tf_keras stores, beside ``saved_model.pb``, one record per saved Keras object: its node id
in the SavedModel object graph, its path from the root (``root.layer_with_weights-0``), an
identifier naming its kind (``_tf_keras_layer``, ``_tf_keras_network``, ...) and a JSON
string of the Python-side facts a loader needs without executing any code: class, config,
dtype policy, trainable flag, input specs and build shapes.

The protobuf schema is tf_keras' ``saved_metadata.proto`` and ``versions.proto``. The
message classes are built here from a descriptor with the same package, field numbers and
types, so that files written here parse with tf_keras' generated classes and the other way
round, without importing tf_keras. They live in a private descriptor pool: they do not
clash with tf_keras' classes when both are loaded in one process.

The JSON follows tf_keras' conventions (``json_utils``): tuples are written as
``{"class_name": "__tuple__", "items": [...]}`` and shapes as
``{"class_name": "TensorShape", "items": [...]}``. It is written with sorted keys and fixed
separators, so the same model always gives the same bytes. :func:`read_metadata` turns both
back into Python tuples.
"""

from __future__ import annotations

import enum
import inspect
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

from reference_impl import tf_keras_config
from reference_impl.errors import MetadataError

__all__ = [
    "METADATA_FILENAME",
    "KERAS_CONFIG_KEY",
    "INPUT_LAYER_IDENTIFIER",
    "LAYER_IDENTIFIER",
    "RNN_LAYER_IDENTIFIER",
    "METRIC_IDENTIFIER",
    "MODEL_IDENTIFIER",
    "NETWORK_IDENTIFIER",
    "SEQUENTIAL_IDENTIFIER",
    "KERAS_OBJECT_IDENTIFIERS",
    "MetadataNode",
    "SavedMetadata",
    "SavedObject",
    "VersionDef",
    "identifier",
    "layer_metadata",
    "dumps",
    "loads",
    "write_metadata",
    "read_metadata",
]

METADATA_FILENAME = "keras_metadata.pb"
# The Keras 3 config; "config" holds tf_keras' form of it (files written before this key
# existed hold the Keras 3 config in "config").
KERAS_CONFIG_KEY = "keras_config"

INPUT_LAYER_IDENTIFIER = "_tf_keras_input_layer"
LAYER_IDENTIFIER = "_tf_keras_layer"
RNN_LAYER_IDENTIFIER = "_tf_keras_rnn_layer"
METRIC_IDENTIFIER = "_tf_keras_metric"
MODEL_IDENTIFIER = "_tf_keras_model"
NETWORK_IDENTIFIER = "_tf_keras_network"
SEQUENTIAL_IDENTIFIER = "_tf_keras_sequential"
KERAS_OBJECT_IDENTIFIERS = (
    INPUT_LAYER_IDENTIFIER,
    LAYER_IDENTIFIER,
    METRIC_IDENTIFIER,
    MODEL_IDENTIFIER,
    NETWORK_IDENTIFIER,
    RNN_LAYER_IDENTIFIER,
    SEQUENTIAL_IDENTIFIER,
)

# The version tf_keras writes into every node; a reader older than min_consumer refuses it.
PRODUCER_VERSION = 2
MIN_CONSUMER_VERSION = 1

# ---------------------------------------------------------------------------------------
# Protobuf schema (same wire format and full names as tf_keras/protobuf/*.proto)
# ---------------------------------------------------------------------------------------

_PACKAGE = "third_party.py.tf_keras.protobuf"
_FIELD = descriptor_pb2.FieldDescriptorProto


def _build_message_classes() -> tuple[type, type, type]:
    """Build VersionDef, SavedObject and SavedMetadata in a private descriptor pool."""
    versions = descriptor_pb2.FileDescriptorProto(
        name="reference_impl/versions.proto", package=_PACKAGE, syntax="proto3"
    )
    version_def = versions.message_type.add(name="VersionDef")
    version_def.field.add(
        name="producer", number=1, label=_FIELD.LABEL_OPTIONAL, type=_FIELD.TYPE_INT32
    )
    version_def.field.add(
        name="min_consumer", number=2, label=_FIELD.LABEL_OPTIONAL, type=_FIELD.TYPE_INT32
    )
    version_def.field.add(
        name="bad_consumers", number=3, label=_FIELD.LABEL_REPEATED, type=_FIELD.TYPE_INT32
    )

    saved = descriptor_pb2.FileDescriptorProto(
        name="reference_impl/saved_metadata.proto",
        package=_PACKAGE,
        syntax="proto3",
        dependency=[versions.name],
    )
    saved_metadata = saved.message_type.add(name="SavedMetadata")
    saved_metadata.field.add(
        name="nodes",
        number=1,
        label=_FIELD.LABEL_REPEATED,
        type=_FIELD.TYPE_MESSAGE,
        type_name=f".{_PACKAGE}.SavedObject",
    )
    saved_object = saved.message_type.add(name="SavedObject")
    # Field 1 is reserved in tf_keras' schema (a removed field); numbering starts at 2.
    saved_object.reserved_range.add(start=1, end=2)
    for name, number, kind in (
        ("node_id", 2, _FIELD.TYPE_INT32),
        ("node_path", 3, _FIELD.TYPE_STRING),
        ("identifier", 4, _FIELD.TYPE_STRING),
        ("metadata", 5, _FIELD.TYPE_STRING),
    ):
        saved_object.field.add(name=name, number=number, label=_FIELD.LABEL_OPTIONAL, type=kind)
    saved_object.field.add(
        name="version",
        number=6,
        label=_FIELD.LABEL_OPTIONAL,
        type=_FIELD.TYPE_MESSAGE,
        type_name=f".{_PACKAGE}.VersionDef",
    )

    pool = descriptor_pool.DescriptorPool()
    pool.Add(versions)
    pool.Add(saved)
    return tuple(
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in ("VersionDef", "SavedObject", "SavedMetadata")
    )


VersionDef, SavedObject, SavedMetadata = _build_message_classes()

# ---------------------------------------------------------------------------------------
# JSON encoding
# ---------------------------------------------------------------------------------------

# tf.TensorSpec's name in TensorFlow's type-spec registry, as tf_keras records it.
_TENSOR_SPEC_TYPE_NAME = "tf.TensorSpec"


def _shape_items(shape: Any) -> list[int | None] | None:
    """The dimensions of a shape as a JSON list, or None for an unknown rank."""
    shape = tf.TensorShape(shape)
    return None if shape.rank is None else shape.as_list()


def _tagged(value: Any) -> Any:
    """Rewrite ``value`` into plain JSON types, tagging what JSON cannot express.

    Tuples become ``__tuple__`` records (JSON would turn them into lists), shapes become
    ``TensorShape`` records, tensor specs ``TypeSpec`` records, and mapping keys strings.
    Objects with a Keras config are serialized with ``keras.saving.serialize_keras_object``.
    Anything else unknown raises TypeError.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"class_name": "__tuple__", "items": [_tagged(item) for item in value]}
    if isinstance(value, list):
        return [_tagged(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _tagged(item) for key, item in value.items()}
    if isinstance(value, tf.TensorShape):
        return {"class_name": "TensorShape", "items": _shape_items(value)}
    if isinstance(value, tf.TensorSpec):
        serialized = (value.shape, value.dtype.name, value.name)
        return {
            "class_name": "TypeSpec",
            "type_spec": _TENSOR_SPEC_TYPE_NAME,
            "serialized": _tagged(serialized),
        }
    if isinstance(value, tf.DType):
        return value.name
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, np.ndarray):
        return _tagged(value.tolist())
    if isinstance(value, np.generic):
        return _tagged(value.item())
    if isinstance(value, enum.Enum):
        return _tagged(value.value)
    if isinstance(value, bytes):
        return {"class_name": "__bytes__", "value": value.decode("utf-8")}
    if value is Ellipsis:
        return {"class_name": "__ellipsis__"}
    if isinstance(value, type):
        return value.__name__
    if hasattr(value, "get_config"):
        return _tagged(keras.saving.serialize_keras_object(value))
    raise TypeError(f"Cannot write {type(value).__qualname__} object {value!r} as JSON")


def dumps(value: Any) -> str:
    """Encode ``value`` as deterministic JSON: sorted keys, fixed separators, tagged tuples."""
    return json.dumps(
        _tagged(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True
    )


def _untag(record: dict[str, Any]) -> Any:
    """``json.loads`` object hook: turn tagged records back into Python values."""
    tag = record.get("class_name")
    if tag == "__tuple__" and "items" in record:
        return tuple(record["items"])
    if tag == "TensorShape" and "items" in record:
        items = record["items"]
        return None if items is None else tuple(items)
    if tag == "__ellipsis__":
        return Ellipsis
    if tag == "__bytes__" and "value" in record:
        return record["value"].encode("utf-8")
    return record


def loads(text: str) -> Any:
    """Decode JSON written by :func:`dumps` (or by tf_keras).

    ``__tuple__`` records become tuples, ``TensorShape`` records tuples of dimensions (None
    for an unknown rank). ``TypeSpec`` records stay dicts: reading them needs no TensorFlow.
    """
    return json.loads(text, object_hook=_untag)


# ---------------------------------------------------------------------------------------
# What is recorded for a Keras object
# ---------------------------------------------------------------------------------------


def identifier(layer: Any) -> str:
    """The tf_keras identifier for a Keras 3 object's kind."""
    if isinstance(layer, keras.layers.InputLayer):
        return INPUT_LAYER_IDENTIFIER
    if isinstance(layer, keras.metrics.Metric):
        return METRIC_IDENTIFIER
    if isinstance(layer, keras.Sequential):
        return SEQUENTIAL_IDENTIFIER
    if isinstance(layer, keras.Model):
        # A model built from inputs and outputs is a Functional model (keras.Function).
        return NETWORK_IDENTIFIER if isinstance(layer, keras.Function) else MODEL_IDENTIFIER
    if isinstance(layer, keras.layers.RNN):
        return RNN_LAYER_IDENTIFIER
    if isinstance(layer, keras.layers.Layer):
        return LAYER_IDENTIFIER
    raise TypeError(f"{type(layer).__qualname__} is not a Keras layer, model or metric")


def _error_text(exc: BaseException) -> str:
    """Describe a failure; object addresses are dropped so the bytes stay deterministic."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", f"{type(exc).__name__}: {exc}")


def _checked_json(value: Any) -> Any:
    """Return ``value`` after checking it can be written by :func:`dumps` (raises if not)."""
    dumps(value)
    return value


def _class_record(obj: Any) -> dict[str, Any]:
    """Class name, module, registered name and configs of ``obj``.

    ``keras_config`` (:data:`KERAS_CONFIG_KEY`) is what ``keras.saving.serialize_keras_object``
    produces, so a Keras 3 loader can rebuild the object with
    ``keras.saving.deserialize_keras_object`` from ``{module, class_name, registered_name,
    keras_config}``. ``config`` is the same config in tf_keras' form
    (:mod:`reference_impl.tf_keras_config`), which tf_keras' ``load_model`` rebuilds the
    object from; tf_keras ignores the keys it does not know. Where there is no tf_keras form
    ``config`` is None with a ``tf_keras_config_error`` saying why (tf_keras then revives the
    object from its saved functions). A config that cannot be produced or written as JSON
    is recorded as None with a ``config_error`` saying why; the save goes on.
    """
    cls = type(obj)
    record: dict[str, Any] = {
        "class_name": cls.__name__,
        "module": cls.__module__,
        "registered_name": keras.saving.get_registered_name(cls),
    }
    try:
        serialized = keras.saving.serialize_keras_object(obj)
        config = serialized.get("config") if isinstance(serialized, Mapping) else None
        if not isinstance(config, Mapping):
            raise TypeError(f"serialize_keras_object returned no config dict: {serialized!r}")
        if serialized.get("module"):
            record["module"] = serialized["module"]
        if serialized.get("registered_name"):
            record["registered_name"] = serialized["registered_name"]
        keras_config = _checked_json(dict(config))
    except Exception as exc:  # any user get_config() failure is recorded
        record["config"] = None
        record["config_error"] = _error_text(exc)
        return record
    record[KERAS_CONFIG_KEY] = keras_config
    try:
        record["config"] = _checked_json(tf_keras_config.translate(cls.__name__, keras_config))
    except tf_keras_config.Untranslatable as exc:
        # No config tf_keras would rebuild the same layer from: it revives the saved functions.
        record["config"] = None
        record["tf_keras_config_error"] = _error_text(exc)
    return record


def _expects_training_arg(layer: keras.layers.Layer) -> bool:
    """Whether the layer's ``call`` accepts a ``training`` argument."""
    try:
        parameters = inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return False
    return "training" in parameters


_LITERAL_TYPES = (bool, int, float, str)


def literal_call_arguments(layer: Any) -> dict[str, Any]:
    """The keyword arguments of a user layer's ``call`` that take Python values, with defaults.

    A non-default value (``layer(x, scale=2.0)`` in a model's graph) changes the layer's
    computation, so the saved functions take these arguments as Python constants, traced
    for each value the layer is called with. Keras' own classes are left out (their flags,
    such as ``return_attention_scores``, change the outputs' structure, not a value).
    """
    saved = getattr(layer, "saved_literal_defaults", None)  # a revived layer: as saved
    if saved is not None:
        return dict(saved)
    if type(layer).__module__.startswith(("keras.", "tf_keras.")):
        return {}
    try:
        parameters = list(inspect.signature(layer.call).parameters.values())
    except (TypeError, ValueError):
        return {}
    return {
        p.name: p.default
        for p in parameters[1:]
        if p.name not in ("training", "mask")
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and type(p.default) in _LITERAL_TYPES
    }


def _dtype_policy_name(layer: Any) -> str | None:
    policy = getattr(layer, "dtype_policy", None)
    name = getattr(policy, "name", None)
    if name is not None:
        return str(name)
    dtype = getattr(layer, "dtype", None)
    return None if dtype is None else str(getattr(dtype, "name", dtype))


def _is_shape(value: Any) -> bool:
    """Whether ``value`` is one shape: a tuple or list of int or None dimensions."""
    return isinstance(value, (tuple, list)) and all(
        dim is None or (isinstance(dim, (int, np.integer)) and not isinstance(dim, bool))
        for dim in value
    )


def _as_tensor_shapes(structure: Any) -> Any:
    """Turn shapes inside a (nested) structure into ``tf.TensorShape`` for tf_keras' JSON."""
    if structure is None:
        return None
    if _is_shape(structure):
        return tf.TensorShape([None if dim is None else int(dim) for dim in structure])
    if isinstance(structure, Mapping):
        return {key: _as_tensor_shapes(value) for key, value in structure.items()}
    if isinstance(structure, (tuple, list)):
        return [_as_tensor_shapes(value) for value in structure]
    return structure


def _build_facts(layer: keras.layers.Layer) -> dict[str, Any]:
    """``build_config`` (Keras 3's own) and ``build_input_shape`` (tf_keras' form)."""
    facts: dict[str, Any] = {}
    try:
        build_config = layer.get_build_config() if layer.built else None
    except Exception as exc:  # a user override may fail
        facts["build_config_error"] = _error_text(exc)
        return facts
    if not build_config:
        return facts
    try:
        facts["build_config"] = _checked_json(dict(build_config))
    except Exception as exc:
        facts["build_config_error"] = _error_text(exc)
        return facts
    if build_config.get("input_shape") is not None:
        facts["build_input_shape"] = _as_tensor_shapes(build_config["input_shape"])
    elif build_config.get("shapes_dict") is not None:
        facts["build_input_shape"] = _as_tensor_shapes(build_config["shapes_dict"])
    return facts


def _input_spec_record(spec: Any) -> Any:
    if spec is None:
        return None
    if isinstance(spec, keras.InputSpec):
        return {"class_name": "InputSpec", "config": spec.get_config()}
    if isinstance(spec, Mapping):
        return {key: _input_spec_record(value) for key, value in spec.items()}
    if isinstance(spec, (list, tuple)):
        return [_input_spec_record(value) for value in spec]
    return None


def _model_inputs(model: keras.Model) -> Any:
    """The model's input KerasTensors in their structure, or None when not defined."""
    try:
        return model.input  # Functional: the inputs in the structure they were given.
    except (AttributeError, ValueError):
        pass
    try:
        inputs = model.inputs  # A built Sequential has inputs but no ``input``.
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    return inputs[0] if len(inputs) == 1 else list(inputs)


def _first_call_argument(layer: keras.layers.Layer) -> str:
    """The name of the first parameter of ``layer.call`` ("inputs" when unknown)."""
    try:
        parameters = inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return "inputs"
    return next(iter(parameters), "inputs")


def _save_specs(model: keras.Model) -> Any:
    """The model's input signature as ``tf.TensorSpec`` with a None batch dimension.

    Functional and built Sequential models take it from their inputs (names included).
    Subclassed models take it from the shapes they were built with, in the model's input
    dtype, named after the call argument. Returns None when the inputs are not known.
    """

    def spec(shape: Any, dtype: Any, name: str | None) -> tf.TensorSpec:
        dims = list(shape)
        if dims:
            dims[0] = None
        return tf.TensorSpec(dims, tf.as_dtype(dtype), name=name)

    inputs = _model_inputs(model)
    if inputs is not None:
        return keras.tree.map_structure(lambda x: spec(x.shape, x.dtype, x.name), inputs)
    try:
        build_config = model.get_build_config() if model.built else None
    except Exception:
        return None
    if not build_config:
        return None
    if build_config.get("input_shape") is not None:
        shape = build_config["input_shape"]
        name = _first_call_argument(model)
        if not _is_shape(shape):
            return None
        return spec(shape, model.input_dtype, name)
    return None


def _training_config(model: keras.Model) -> dict[str, Any]:
    """``training_config``: the compile config, when the model is compiled."""
    if not getattr(model, "compiled", False):
        return {}
    try:
        config = model.get_compile_config()
        if config is None:
            return {}
        return {"training_config": _checked_json(dict(config))}
    except Exception as exc:  # custom losses may not serialize
        return {"training_config": None, "training_config_error": _error_text(exc)}


def _metric_metadata(metric: keras.metrics.Metric) -> dict[str, Any]:
    record = {"name": metric.name, "dtype": _dtype_policy_name(metric)}
    record.update(_class_record(metric))
    return record


def _input_layer_metadata(layer: keras.layers.InputLayer) -> dict[str, Any]:
    record = {
        "name": layer.name,
        "dtype": _dtype_policy_name(layer),
        "batch_input_shape": tuple(layer.batch_shape),
        "sparse": bool(getattr(layer, "sparse", False)),
        "ragged": bool(getattr(layer, "ragged", False)),
        "trainable": layer.trainable,
        "expects_training_arg": False,
        "stateful": False,
        "must_restore_from_config": False,
    }
    record.update(_class_record(layer))
    return record


def layer_metadata(layer: Any, *, is_root: bool, include_optimizer: bool = True) -> dict[str, Any]:
    """The JSON-able metadata tf_keras records for a Keras 3 layer, model or metric.

    Everything here can be read back without running user code. Keys for every layer:
    ``name``, ``trainable``, ``expects_training_arg``, ``dtype`` (the dtype policy's name),
    ``batch_input_shape``, ``stateful``, ``must_restore_from_config`` (always False: Keras 3
    layers restore their state from variables), ``class_name``, ``module``,
    ``registered_name``, ``keras_config`` and ``config`` (Keras 3's and tf_keras' forms; see
    :func:`_class_record`), and where set ``build_config``, ``build_input_shape``, ``input_spec``,
    ``activity_regularizer`` and ``call_arguments`` (:func:`literal_call_arguments`). Models
    add ``is_graph_network``, ``save_spec``, ``full_save_spec``, ``keras_version``,
    ``backend``, ``model_config`` and, when compiled (and ``include_optimizer``),
    ``training_config``.

    ``is_root`` is accepted for symmetry with the saver; the metadata of a model is the same
    whether it is the root or nested, as in tf_keras.
    """
    del is_root  # The recorded facts do not depend on the position in the tree.
    if isinstance(layer, keras.metrics.Metric):
        return _metric_metadata(layer)
    if isinstance(layer, keras.layers.InputLayer):
        return _input_layer_metadata(layer)
    if not isinstance(layer, keras.layers.Layer):
        raise TypeError(f"{type(layer).__qualname__} is not a Keras layer, model or metric")

    record: dict[str, Any] = {
        "name": layer.name,
        "trainable": bool(layer.trainable),
        "expects_training_arg": _expects_training_arg(layer),
        "dtype": _dtype_policy_name(layer),
        "batch_input_shape": None,
        "stateful": bool(getattr(layer, "stateful", False)),
        "must_restore_from_config": False,
    }
    record.update(_class_record(layer))
    record.update(_build_facts(layer))
    literals = literal_call_arguments(layer)
    if literals:
        # For a reviver: the values a call without these arguments means.
        record["call_arguments"] = literals
    input_spec = _input_spec_record(layer.input_spec)
    if input_spec is not None:
        record["input_spec"] = input_spec
    if layer.activity_regularizer is not None:
        record["activity_regularizer"] = keras.saving.serialize_keras_object(
            layer.activity_regularizer
        )

    if isinstance(layer, keras.Model):
        inputs = _model_inputs(layer)
        specs = _save_specs(layer)
        if inputs is not None:
            record["batch_input_shape"] = keras.tree.map_structure(lambda x: tuple(x.shape), inputs)
        record["is_graph_network"] = inputs is not None
        # tf_keras' layout: full_save_spec = ([inputs], {}) and save_spec = its first input.
        record["full_save_spec"] = None if specs is None else ([specs], {})
        record["save_spec"] = specs
        record["keras_version"] = keras.__version__
        record["backend"] = keras.backend.backend()
        record["model_config"] = {
            key: record[key]
            for key in ("class_name", "module", "registered_name", "config", KERAS_CONFIG_KEY)
            if key in record
        }
        if include_optimizer:
            record.update(_training_config(layer))
    # Check the whole record encodes now, so a failure names the layer, not the writer.
    try:
        dumps(record)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Metadata of layer '{layer.name}' is not JSON-able: {exc}") from exc
    return record


# ---------------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetadataNode:
    """One record of ``keras_metadata.pb``.

    Attributes:
        node_id: the object's id in the SavedModel object graph (``saved_model.pb``).
        node_path: its path from the root, such as ``root.layer_with_weights-0``.
        identifier: its kind, one of :data:`KERAS_OBJECT_IDENTIFIERS` (others are kept).
        metadata: the decoded JSON (see :func:`loads`).
    """

    node_id: int
    node_path: str
    identifier: str
    metadata: dict


def write_metadata(dirpath: str | os.PathLike[str], nodes: Iterable[MetadataNode]) -> str:
    """Write ``keras_metadata.pb`` into ``dirpath``; return the file's path.

    Nodes are written in node_id order with deterministic JSON and deterministic protobuf
    serialization, so equal metadata always gives equal bytes.
    """
    proto = SavedMetadata()
    for node in sorted(nodes, key=lambda node: node.node_id):
        proto.nodes.add(
            node_id=node.node_id,
            node_path=node.node_path,
            identifier=node.identifier,
            metadata=dumps(node.metadata),
            version=VersionDef(producer=PRODUCER_VERSION, min_consumer=MIN_CONSUMER_VERSION),
        )
    path = os.path.join(os.fspath(dirpath), METADATA_FILENAME)
    with open(path, "wb") as file:
        file.write(proto.SerializeToString(deterministic=True))
    return path


def read_metadata(dirpath: str | os.PathLike[str]) -> list[MetadataNode]:
    """Read ``keras_metadata.pb`` from ``dirpath`` (written here or by tf_keras).

    Raises:
        FileNotFoundError: there is no ``keras_metadata.pb``.
        MetadataError: the file is not a SavedMetadata message, a node's metadata is not a
            JSON object, or a node needs a newer reader (its ``min_consumer``).
    """
    path = os.path.join(os.fspath(dirpath), METADATA_FILENAME)
    with open(path, "rb") as file:
        data = file.read()
    proto = SavedMetadata()
    try:
        proto.ParseFromString(data)
    except message.DecodeError as exc:
        raise MetadataError(path, f"not a SavedMetadata protobuf ({exc})") from exc

    nodes = []
    for node in proto.nodes:
        where = f"node {node.node_id} ('{node.node_path}')"
        if node.version.min_consumer > PRODUCER_VERSION:
            raise MetadataError(
                path,
                f"{where} needs a reader of version {node.version.min_consumer}; "
                f"this one is version {PRODUCER_VERSION}",
            )
        try:
            decoded = loads(node.metadata)
        # json.JSONDecodeError and bad UTF-8 (ValueError), a tagged tuple whose items are not
        # a list (TypeError), nesting deeper than the interpreter's stack (RecursionError).
        except (ValueError, TypeError, RecursionError) as exc:
            raise MetadataError(path, f"{where} has invalid JSON metadata: {exc}") from exc
        if not isinstance(decoded, dict):
            raise MetadataError(
                path, f"{where} metadata is a JSON {type(decoded).__name__}, not an object"
            )
        nodes.append(MetadataNode(node.node_id, node.node_path, node.identifier, decoded))
    return nodes
