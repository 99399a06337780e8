"""``conformance.savedmodel.functions``: which saved functions a signature reaches, read from
``saved_model.pb``, on hand-made SavedModels with a ``keras_api``-like tree."""

import pytest

from conformance.savedmodel import functions

tf = pytest.importorskip("tensorflow")

SPEC = tf.TensorSpec([None, 2], tf.float32, name="x")


def _save(path, serve_with):
    """A root whose ``keras_api`` holds one layer; the signature is ``serve_with(layer_fn)``."""

    def the_layer_call(x):
        return x * 2.0

    layer_fn = tf.function(the_layer_call, input_signature=[SPEC])
    layer = tf.Module()
    layer.keras_api = tf.Module()
    layer.keras_api.__call__ = layer_fn
    root = tf.Module()
    root.keras_api = tf.Module()
    root.keras_api.layers = [layer]
    serving = tf.function(serve_with(layer_fn), input_signature=[SPEC])
    tf.saved_model.save(root, str(path), signatures={"serving_default": serving})


WHERE = "root.keras_api.layers.0.keras_api.__call__"


def _is_layer_function(name):
    # save traces the function again under its own context: the number is not known here
    return name.startswith("__inference_the_layer_call_")


def test_a_flat_signature_reaches_no_layer_function(tmp_path):
    _save(tmp_path / "flat", lambda layer_fn: lambda x: {"y": x * 2.0 + 1.0})
    assert functions.layer_functions_called_by_signature(tmp_path / "flat") == []


def test_a_direct_call_is_found(tmp_path):
    _save(tmp_path / "nested", lambda layer_fn: lambda x: {"y": layer_fn(x) + 1.0})
    found = functions.layer_functions_called_by_signature(tmp_path / "nested")
    assert [where for where, _ in found] == [WHERE]
    assert all(_is_layer_function(name) for _, name in found)


def test_a_call_inside_a_loop_body_is_found(tmp_path):
    def serve_with(layer_fn):
        def serve(x):
            _, y = tf.while_loop(lambda i, y: i < 2, lambda i, y: (i + 1, layer_fn(y)), (0, x))
            return {"y": y}

        return serve

    _save(tmp_path / "loop", serve_with)
    found = functions.layer_functions_called_by_signature(tmp_path / "loop")
    assert [where for where, _ in found] == [WHERE]
    assert all(_is_layer_function(name) for _, name in found)


def test_layer_call_functions_lists_only_keras_api_call_functions(tmp_path):
    _save(tmp_path / "m", lambda layer_fn: lambda x: {"y": x})
    meta_graph = functions.read_meta_graph(tmp_path / "m")
    listed = functions.layer_call_functions(meta_graph)
    assert list(listed.values()) == [WHERE] and all(map(_is_layer_function, listed))
    wrappers = functions.signature_functions(meta_graph)
    assert wrappers and not wrappers & set(listed)
    assert wrappers <= functions.reachable_functions(meta_graph, wrappers)
