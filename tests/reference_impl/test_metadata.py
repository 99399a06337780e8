"""``reference_impl.metadata``: the keras_metadata.pb schema, its JSON, and tf_keras interop."""

from __future__ import annotations

import json
import random

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import descriptor_pb2

from reference_impl import metadata
from reference_impl.errors import MetadataError
from tests.reference_impl import _infra_models as infra

COMMON_KEYS = {
    "name",
    "trainable",
    "expects_training_arg",
    "dtype",
    "batch_input_shape",
    "stateful",
    "must_restore_from_config",
    "class_name",
    "module",
    "registered_name",
    "config",
}
MODEL_KEYS = COMMON_KEYS | {
    "is_graph_network",
    "save_spec",
    "full_save_spec",
    "keras_version",
    "backend",
    "model_config",
}


def _fields(message_class) -> list[tuple]:
    proto = descriptor_pb2.DescriptorProto()
    message_class.DESCRIPTOR.CopyToProto(proto)
    fields = [(f.name, f.number, f.label, f.type, f.type_name) for f in proto.field]
    reserved = [(r.start, r.end) for r in proto.reserved_range]
    return [message_class.DESCRIPTOR.full_name, sorted(fields), reserved]


def _nodes() -> list[metadata.MetadataNode]:
    model = infra.functional_model(compiled=True)
    return [
        metadata.MetadataNode(i, path, metadata.identifier(layer), record)
        for i, (path, layer) in enumerate(
            [("root", model), ("root.layer_with_weights-0", model.get_layer("hidden"))]
        )
        for record in [metadata.layer_metadata(layer, is_root=layer is model)]
    ]


# -- schema and tf_keras interop -------------------------------------------------------------


def test_schema_matches_tf_keras():
    from tf_keras.protobuf import saved_metadata_pb2, versions_pb2

    assert _fields(metadata.SavedMetadata) == _fields(saved_metadata_pb2.SavedMetadata)
    assert _fields(metadata.SavedObject) == _fields(saved_metadata_pb2.SavedObject)
    assert _fields(metadata.VersionDef) == _fields(versions_pb2.VersionDef)


def test_proto_round_trip(tmp_path):
    nodes = _nodes()
    path = metadata.write_metadata(tmp_path, nodes)
    assert path.endswith("keras_metadata.pb")
    read = metadata.read_metadata(tmp_path)
    assert [(n.node_id, n.node_path, n.identifier) for n in read] == [
        (0, "root", "_tf_keras_network"),
        (1, "root.layer_with_weights-0", "_tf_keras_layer"),
    ]
    # The decoded JSON equals the record after one encode/decode (tuples stay tuples).
    for original, back in zip(nodes, read, strict=True):
        assert back.metadata == metadata.loads(metadata.dumps(original.metadata))
    assert read[1].metadata["build_input_shape"] == (None, 4)
    assert read[1].metadata["build_config"] == {"input_shape": (None, 4)}


def test_tf_keras_parses_our_file(tmp_path):
    from tf_keras.protobuf import saved_metadata_pb2
    from tf_keras.src.saving.legacy.saved_model import json_utils

    metadata.write_metadata(tmp_path, _nodes())
    proto = saved_metadata_pb2.SavedMetadata()
    proto.ParseFromString((tmp_path / "keras_metadata.pb").read_bytes())
    assert [node.node_id for node in proto.nodes] == [0, 1]
    root = proto.nodes[0]
    assert (root.node_path, root.identifier) == ("root", "_tf_keras_network")
    assert (root.version.producer, root.version.min_consumer) == (2, 1)
    decoded = json_utils.decode(root.metadata)  # tf_keras' own JSON decoder
    assert decoded["name"] == "infra_functional"
    spec = decoded["save_spec"]
    assert isinstance(spec, tf.TensorSpec)
    assert spec.shape.as_list() == [None, 4] and spec.dtype == tf.float32 and spec.name == "x"
    layer = json_utils.decode(proto.nodes[1].metadata)
    assert layer["build_input_shape"] == tf.TensorShape([None, 4])


def test_tf_keras_parses_every_node_of_a_reference_save(tmp_path):
    from tf_keras.protobuf import saved_metadata_pb2
    from tf_keras.src.saving.legacy.saved_model import json_utils

    import reference_impl

    reference_impl.save(infra.functional_model(compiled=True), tmp_path / "m")
    proto = saved_metadata_pb2.SavedMetadata()
    proto.ParseFromString((tmp_path / "m" / "keras_metadata.pb").read_bytes())
    ours = metadata.read_metadata(tmp_path / "m")
    assert [node.node_id for node in proto.nodes] == [node.node_id for node in ours]
    assert [node.node_id for node in ours] == sorted(node.node_id for node in ours)
    for node in proto.nodes:
        assert node.identifier in metadata.KERAS_OBJECT_IDENTIFIERS
        assert isinstance(json_utils.decode(node.metadata), dict)
    names = {json_utils.decode(node.metadata).get("name") for node in proto.nodes}
    assert {"infra_functional", "hidden", "out"} <= names


def test_we_parse_a_file_tf_keras_writes(tmp_path):
    import tf_keras

    inputs = tf_keras.Input((3,), name="x")
    hidden = tf_keras.layers.Dense(4, activity_regularizer="l2", name="d")(inputs)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, name="out")(hidden))
    model.compile("adam", "mse")
    model.save(tmp_path / "tfk", save_format="tf")

    nodes = metadata.read_metadata(tmp_path / "tfk")
    by_path = {node.node_path: node for node in nodes}
    root = by_path["root"]
    assert root.identifier == "_tf_keras_network"
    assert root.metadata["class_name"] == "Functional"
    assert root.metadata["is_graph_network"] is True
    assert {node.identifier for node in nodes} >= {"_tf_keras_input_layer", "_tf_keras_layer"}
    dense = next(node for node in nodes if node.metadata.get("name") == "d")
    assert dense.metadata["build_input_shape"] == (None, 3)
    assert dense.metadata["activity_regularizer"]["class_name"] == "L2"
    assert root.metadata["training_config"]["loss"] == "mse"


# -- determinism -----------------------------------------------------------------------------


def test_bytes_do_not_depend_on_node_order_or_dict_order(tmp_path):
    nodes = _nodes()
    metadata.write_metadata(tmp_path, nodes)
    first = (tmp_path / "keras_metadata.pb").read_bytes()

    shuffled = list(nodes)
    random.Random(1).shuffle(shuffled)
    reordered = [
        metadata.MetadataNode(
            n.node_id, n.node_path, n.identifier, dict(reversed(list(n.metadata.items())))
        )
        for n in reversed(shuffled)
    ]
    metadata.write_metadata(tmp_path, reordered)
    assert (tmp_path / "keras_metadata.pb").read_bytes() == first


def test_json_is_canonical():
    text = metadata.dumps({"b": (1, None), "a": np.float32(0.5), "c": tf.TensorShape([None, 2])})
    assert text == (
        '{"a":0.5,"b":{"class_name":"__tuple__","items":[1,null]},'
        '"c":{"class_name":"TensorShape","items":[null,2]}}'
    )
    assert metadata.loads(text) == {"a": 0.5, "b": (1, None), "c": (None, 2)}


def test_json_encodes_tf_and_numpy_values():
    value = {
        "dtype": tf.float16,
        "np": np.arange(3, dtype="int64"),
        "spec": tf.TensorSpec([None, 3], tf.int32, name="t"),
        "unknown_rank": tf.TensorShape(None),
        1: b"raw",
    }
    decoded = metadata.loads(metadata.dumps(value))
    assert decoded["dtype"] == "float16"
    assert decoded["np"] == [0, 1, 2]
    assert decoded["spec"]["type_spec"] == "tf.TensorSpec"
    assert decoded["spec"]["serialized"] == ((None, 3), "int32", "t")
    assert decoded["unknown_rank"] is None
    assert decoded["1"] == b"raw"
    with pytest.raises(TypeError):
        metadata.dumps({"x": object()})


# -- layer_metadata --------------------------------------------------------------------------


def _checked(layer, **kwargs) -> dict:
    record = metadata.layer_metadata(layer, is_root=True, **kwargs)
    assert json.loads(metadata.dumps(record)) is not None  # JSON, as written
    return record


def test_dense_layer_metadata():
    layer = keras.layers.Dense(3, activity_regularizer="l2", name="d")
    layer.build((None, 5))
    record = _checked(layer)
    assert COMMON_KEYS <= record.keys()
    assert metadata.identifier(layer) == "_tf_keras_layer"
    assert record["class_name"] == "Dense" and record["registered_name"] == "Dense"
    assert record["config"]["units"] == 3
    assert record["dtype"] == "float32"
    assert record["build_input_shape"] == tf.TensorShape([None, 5])
    assert record["input_spec"]["class_name"] == "InputSpec"
    assert record["activity_regularizer"]["class_name"] == "L2"
    assert record["stateful"] is False and record["trainable"] is True


def test_functional_model_metadata():
    model = infra.functional_model()
    record = _checked(model)
    assert MODEL_KEYS <= record.keys()
    assert metadata.identifier(model) == "_tf_keras_network"
    assert record["is_graph_network"] is True
    assert record["save_spec"] == tf.TensorSpec([None, 4], tf.float32, name="x")
    assert record["full_save_spec"] == ([record["save_spec"]], {})
    assert record["batch_input_shape"] == (None, 4)
    assert record["keras_version"] == keras.__version__
    assert record["backend"] == "tensorflow"
    assert record["model_config"]["class_name"] == "Functional"
    assert "training_config" not in record  # not compiled


def test_sequential_model_metadata():
    model = infra.sequential_model()
    record = _checked(model)
    assert metadata.identifier(model) == "_tf_keras_sequential"
    assert record["is_graph_network"] is True
    assert record["save_spec"].shape.as_list() == [None, 4]
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    record = _checked(unbuilt)
    assert record["is_graph_network"] is False and record["save_spec"] is None


def test_subclassed_model_metadata():
    model = infra.subclassed_model()
    record = _checked(model)
    assert MODEL_KEYS <= record.keys()
    assert metadata.identifier(model) == "_tf_keras_model"
    assert record["is_graph_network"] is False
    assert record["expects_training_arg"] is True
    assert record["save_spec"] == tf.TensorSpec([None, 4], tf.float32, name="inputs")
    assert record["build_input_shape"] == tf.TensorShape([1, 4])


def test_compiled_model_metadata_has_training_config():
    model = infra.functional_model(compiled=True)
    config = _checked(model)["training_config"]
    assert config["loss"] == "mse"
    assert config["metrics"] == ["mae"]
    assert config["optimizer"]["class_name"] == "Adam"
    assert "training_config" not in _checked(model, include_optimizer=False)


def test_config_failure_is_recorded_not_raised():
    class NoConfig(keras.layers.Layer):
        def __init__(self, thing, **kwargs):
            super().__init__(**kwargs)
            self.thing = thing

        def get_config(self):
            raise NotImplementedError("no config for you")

    record = _checked(NoConfig(object(), name="nc"))
    assert record["config"] is None
    assert "NotImplementedError" in record["config_error"]
    assert " at 0x" not in record["config_error"]


def test_identifiers_of_other_kinds():
    assert metadata.identifier(keras.layers.InputLayer((3,))) == "_tf_keras_input_layer"
    assert metadata.identifier(keras.layers.LSTM(2)) == "_tf_keras_rnn_layer"
    assert metadata.identifier(keras.metrics.Mean()) == "_tf_keras_metric"
    with pytest.raises(TypeError):
        metadata.identifier(object())


def test_metric_and_input_layer_metadata():
    metric = _checked(keras.metrics.MeanAbsoluteError(name="mae"))
    assert metric["class_name"] == "MeanAbsoluteError" and metric["name"] == "mae"
    assert metric["config"]["name"] == "mae"
    record = _checked(keras.layers.InputLayer(shape=(3,), name="in"))
    assert record["batch_input_shape"] == (None, 3)
    assert record["class_name"] == "InputLayer"


# -- read errors -----------------------------------------------------------------------------


def _write_raw(tmp_path, nodes: list[tuple[int, str, str]], min_consumer: int = 1) -> None:
    proto = metadata.SavedMetadata()
    for node_id, path, text in nodes:
        proto.nodes.add(
            node_id=node_id,
            node_path=path,
            identifier="_tf_keras_layer",
            metadata=text,
            version=metadata.VersionDef(producer=2, min_consumer=min_consumer),
        )
    (tmp_path / "keras_metadata.pb").write_bytes(proto.SerializeToString())


def test_invalid_json_names_path_and_node(tmp_path):
    _write_raw(tmp_path, [(0, "root", "{}"), (3, "root.layer-0", '{"name": "d",')])
    with pytest.raises(MetadataError) as error:
        metadata.read_metadata(tmp_path)
    assert error.value.path == str(tmp_path / "keras_metadata.pb")
    assert "node 3" in str(error.value) and "root.layer-0" in str(error.value)
    assert isinstance(error.value, ValueError)


def test_json_that_is_not_an_object(tmp_path):
    _write_raw(tmp_path, [(0, "root", "[1, 2]")])
    with pytest.raises(MetadataError, match="not an object"):
        metadata.read_metadata(tmp_path)


def test_unparsable_proto(tmp_path):
    (tmp_path / "keras_metadata.pb").write_bytes(b"\xff\xff\xff\xff garbage")
    with pytest.raises(MetadataError, match="not a SavedMetadata"):
        metadata.read_metadata(tmp_path)


def test_newer_format_is_refused(tmp_path):
    _write_raw(tmp_path, [(0, "root", "{}")], min_consumer=7)
    with pytest.raises(MetadataError, match="version 7"):
        metadata.read_metadata(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        metadata.read_metadata(tmp_path)
