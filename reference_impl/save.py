"""``save``: write a Keras 3 model in the Keras SavedModel format.

The steps, in order, each in its own module (none calls back into an earlier one):

1. List the layers: the root, then every sublayer breadth-first, each once (a shared layer
   is one saved object), in the order ``keras_api.layers`` lists them
   (:func:`reference_impl.attributes.sublayers`). Their metadata is read now, while every
   layer is exactly as the user left it (:mod:`reference_impl.metadata`).
2. Trace the call functions (:mod:`reference_impl.tracing`), for the input signatures of
   :mod:`reference_impl.signatures`: the root for its input signature, which reaches every
   layer it calls with the shapes it calls them with; then any built layer not reached that
   way, for the signature it was built for. Layers that are not built (or a root whose
   inputs are unknown) get no functions and one warning each; a root *model* that was
   never built is refused before anything is written, as tf_keras refuses it. The serving
   function is traced last, with every layer's own call: one flat function, as tf_keras'
   default signature, not calls into the layers' saved functions.
3. Build the saved tree (:mod:`reference_impl.attributes`): one ``AutoTrackable`` node per
   layer and metric, with its ``keras_api``; the optimizer's variables under
   ``optimizer`` when ``include_optimizer``. Beside ``keras_api``, each node gets the edges
   tf_keras' loader follows to restore a layer it rebuilt from its config (``kernel``,
   ``cell``, ``layer-N``: :func:`add_tf_keras_dependencies`).
4. Write ``saved_model.pb`` and the checkpoint with ``tf.saved_model.save`` into a temporary
   directory (:mod:`reference_impl.atomic`), read back the object graph to learn each
   node's id, write ``keras_metadata.pb`` (:mod:`reference_impl.metadata`), and move the
   directory into place.

The model is only read: every temporary change made while tracing is undone before
``save`` returns, whether it succeeds or not.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable
from typing import Any

import keras
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from reference_impl import atomic, metadata, tf_keras_config
from reference_impl.attributes import KERAS_API, build_saved_tree, sublayers
from reference_impl.errors import ModelInputsUnknownError

# Importable from here as before (the suite's own tests build serving functions with them).
from reference_impl.signatures import output_names
from reference_impl.signatures import root_signature as input_signature
from reference_impl.tracing import (
    call_collections,
    children_call_traced_functions,
    in_save_context,
    trace_layers,
)

__all__ = ["save", "input_signature", "output_names", "object_graph_node_ids"]

SERVING_KEY = "serving_default"


def save(
    model: keras.layers.Layer,
    filepath: str | os.PathLike[str],
    overwrite: bool = True,
    include_optimizer: bool = True,
    signatures: Any = None,
) -> None:
    """Save ``model`` (a Keras 3 model or layer) as a Keras SavedModel at ``filepath``.

    Args:
        model: the model to save; it is not modified.
        filepath: the SavedModel directory to write.
        overwrite: if False and ``filepath`` exists, ask on an interactive terminal and
            raise ``FileExistsError`` otherwise.
        include_optimizer: save the optimizer's variables and the training config.
        signatures: passed to ``tf.saved_model.save`` as given; by default the model's
            ``_default_save_signature`` is saved as ``serving_default``.

    Raises:
        ModelInputsUnknownError: ``model`` is a model that was never built (its inputs are
            unknown); nothing is written at ``filepath``.
        FileExistsError: ``overwrite`` is False, ``filepath`` exists and there is no
            terminal to ask on.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"save() expects a Keras model or layer, got {type(model).__name__}")
    if not atomic.should_write(filepath, overwrite):
        return
    # As tf_keras' save (raise_model_input_error): refused before anything is written.
    _require_known_inputs(model, filepath)

    layers = _layers_breadth_first(model)
    # Metadata is read before tracing, while every layer is exactly as the user left it.
    layer_records = {
        id(layer): metadata.layer_metadata(
            layer, is_root=layer is model, include_optimizer=include_optimizer
        )
        for layer in layers
    }
    collections = call_collections(model, layers)
    options = tf.saved_model.SaveOptions()
    # The children stay swapped while writing too (why: see reference_impl.tracing).
    with children_call_traced_functions(collections.values(), model):
        with in_save_context(options):
            functions = trace_layers(model, layers, collections)
        root, paths = build_saved_tree(model, layers, functions, include_optimizer)
        add_tf_keras_dependencies(root, model)
        if signatures is None and "_default_save_signature" in functions.get(id(model), {}):
            signatures = {SERVING_KEY: functions[id(model)]["_default_save_signature"]}
        with atomic.atomic_directory(filepath) as directory:
            tf.saved_model.save(root, os.fspath(directory), signatures=signatures, options=options)
            _write_metadata(directory, paths, layer_records)


def add_tf_keras_dependencies(root: Any, model: keras.layers.Layer) -> None:
    """Step 3b: the edges tf_keras' loader restores a layer rebuilt from its config through.

    tf_keras' ``load_model`` rebuilds a layer from its config, then gives it the saved
    values by following, from the layer's saved node, the names the rebuilt layer tracks
    its weights and sublayers under: ``kernel``, ``cell``, a model's ``layer-N`` and
    ``layer_with_weights-N``. tf_keras' own saver writes those edges beside ``keras_api``;
    here they point at the same saved objects as ``keras_api``, so nothing is saved twice.
    """
    seen: set[int] = set()
    queue = deque([(root, model)])
    while queue:
        node, layer = queue.popleft()
        if id(node) in seen:
            continue
        seen.add(id(node))
        children = list(zip(sublayers(layer), node.keras_api.layers))
        for name, value in _tf_keras_edges(layer, children):
            if not hasattr(node, name):  # never replace a format attribute
                setattr(node, name, value)
        queue.extend((child_node, child) for child, child_node in children)


def _tf_keras_edges(
    layer: keras.layers.Layer, children: list[tuple[keras.layers.Layer, Any]]
) -> list[tuple[str, Any]]:
    """``(name, saved object)`` for the layer's own variables and its sublayers."""
    class_name = type(layer).__name__
    own = [*layer._trainable_variables, *layer._non_trainable_variables]
    names = [tf_keras_config.variable_name(class_name, v.name) for v in own]
    edges = [
        (name, getattr(v, "value", v))
        for name, v in zip(names, own, strict=True)
        if names.count(name) == 1 and name != KERAS_API
    ]
    if isinstance(layer, keras.Model):
        with_weights = 0
        for index, (child, child_node) in enumerate(children):
            if child.weights:
                edges.append((f"layer_with_weights-{with_weights}", child_node))
                with_weights += 1
            edges.append((f"layer-{index}", child_node))
        return edges
    attributes = {id(value): key for key, value in vars(layer).items() if not key.startswith("__")}
    for child, child_node in children:
        key = attributes.get(id(child))
        if key is not None and key != KERAS_API:
            edges.append((key, child_node))
    return edges


def _require_known_inputs(model: keras.layers.Layer, filepath: str | os.PathLike[str]) -> None:
    """Raise :class:`ModelInputsUnknownError` for a root model that was never built.

    Only the root: unbuilt sub-layers (and nested models) are saved without functions, with
    a warning each, as tf_keras skips them. A bare layer is not a model tf_keras could save;
    an unbuilt one is saved without functions, with a warning.
    """
    if isinstance(model, keras.Model) and not model.built:
        raise ModelInputsUnknownError(
            filepath,
            f"model '{model.name}' ({type(model).__name__}) has no known inputs: it was never "
            "built or called. Give it an Input, call `build(input_shape)` or call it on data "
            "first. Nothing was written.",
        )


def _layers_breadth_first(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    """Step 1: the root, then every sublayer breadth-first, each once."""
    order: list[keras.layers.Layer] = []
    seen: set[int] = set()
    queue = deque([model])
    while queue:
        layer = queue.popleft()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        order.append(layer)
        queue.extend(sublayers(layer))
    return order


def _write_metadata(
    directory: os.PathLike[str], paths: dict[int, tuple[str, Any]], layer_records: dict[int, dict]
) -> None:
    """Write ``keras_metadata.pb``, with node ids read back from ``saved_model.pb``."""
    node_ids = object_graph_node_ids(directory, [p for p, _ in paths.values()])
    nodes = []
    for path, keras_object in paths.values():
        record = layer_records.get(id(keras_object))
        if record is None:
            record = metadata.layer_metadata(keras_object, is_root=False)
        nodes.append(
            metadata.MetadataNode(
                node_id=node_ids[path],
                node_path=path,
                identifier=metadata.identifier(keras_object),
                metadata=record,
            )
        )
    metadata.write_metadata(directory, nodes)


def object_graph_node_ids(
    directory: str | os.PathLike[str], paths: Iterable[str]
) -> dict[str, int]:
    """Map ``root.keras_api.layers.0``-style paths to node ids in ``saved_model.pb``.

    Each path is followed from node 0 (the root), one child name at a time.
    """
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(os.fspath(directory), "saved_model.pb"), "rb") as file:
        proto.ParseFromString(file.read())
    graph = proto.meta_graphs[0].object_graph_def
    ids = {}
    for path in paths:
        node_id = 0
        for name in path.split(".")[1:]:
            children = {child.local_name: child.node_id for child in graph.nodes[node_id].children}
            node_id = children[name]
        ids[path] = node_id
    return ids
