"""``save``: write a Keras 3 model in the Keras SavedModel format.

The steps, in order:

1. List the layers: the root, then every sublayer breadth-first, each once (a shared layer
   is one saved object).
2. Trace the call functions (:mod:`reference_impl.tracing`): the root for its input
   signature, which reaches every layer it calls with the shapes it calls them with; then
   any built layer not reached that way, from the shapes it was built with. Layers that are
   not built (or a root whose inputs are unknown) get no functions and one warning each.
3. Build the saved tree (:mod:`reference_impl.attributes`): one ``AutoTrackable`` node per
   layer and metric, with its ``keras_api``; the optimizer's variables under
   ``optimizer`` when ``include_optimizer``.
4. Write ``saved_model.pb`` and the checkpoint with ``tf.saved_model.save`` into a temporary
   directory (:mod:`reference_impl.atomic`), read back the object graph to learn each
   node's id, write ``keras_metadata.pb`` (:mod:`reference_impl.metadata`), and move the
   directory into place.

The model is only read: every temporary change made while tracing is undone before
``save`` returns, whether it succeeds or not.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections import deque
from collections.abc import Iterable
from typing import Any

import keras
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from reference_impl import atomic, metadata
from reference_impl.attributes import (
    KERAS_API,
    Node,
    RegularizationLosses,
    mirror_metric,
    mirror_node,
    tf_variables,
)
from reference_impl.revive import RevivedLayer
from reference_impl.tracing import (
    LayerCallFunctions,
    call_argument_names,
    call_traced,
    children_call_traced_functions,
    in_save_context,
    relaxed_spec,
    with_parameters,
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
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"save() expects a Keras model or layer, got {type(model).__name__}")
    if not atomic.should_write(filepath, overwrite):
        return

    layers = _layers_breadth_first(model)
    # Metadata is read before tracing, while every layer is exactly as the user left it.
    layer_records = {
        id(layer): metadata.layer_metadata(
            layer, is_root=layer is model, include_optimizer=include_optimizer
        )
        for layer in layers
    }
    collections = _call_collections(model, layers)
    options = tf.saved_model.SaveOptions()
    # The children stay swapped while writing too: should TensorFlow trace anything again,
    # it still goes through the traced functions (see reference_impl.tracing).
    with children_call_traced_functions(collections.values(), model):
        with in_save_context(options):
            functions = _trace_layers(model, layers, collections)
        root, paths = _build_saved_tree(model, layers, functions, include_optimizer)
        if signatures is None and "_default_save_signature" in functions.get(id(model), {}):
            signatures = {SERVING_KEY: functions[id(model)]["_default_save_signature"]}
        with atomic.atomic_directory(filepath) as directory:
            tf.saved_model.save(root, os.fspath(directory), signatures=signatures, options=options)
            _write_metadata(directory, paths, layer_records)


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


# -- step 1: the layers ----------------------------------------------------------------------


def _sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layer's direct sublayers, as tf_keras lists them in ``keras_api.layers``.

    For a model that is ``model.layers`` (the list users see: a Sequential model's input
    layer is not in it, a Functional model's input layers are); for any other layer, its
    directly tracked layers.
    """
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _layers_breadth_first(model: keras.layers.Layer) -> list[keras.layers.Layer]:
    order: list[keras.layers.Layer] = []
    seen: set[int] = set()
    queue = deque([model])
    while queue:
        layer = queue.popleft()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        order.append(layer)
        queue.extend(_sublayers(layer))
    return order


# -- step 2: tracing -------------------------------------------------------------------------


def _has_call_functions(layer: keras.layers.Layer) -> bool:
    """Input layers have nothing to call, nor revived layers saved without functions."""
    if isinstance(layer, RevivedLayer):
        return bool(layer.saved_input_signatures)
    return not isinstance(layer, keras.layers.InputLayer)


def _warn_skipped(layer: keras.layers.Layer, reason: str) -> None:
    warnings.warn(
        f"Skipping full serialization of Keras layer '{layer.name}' "
        f"({type(layer).__name__}): {reason}. It is saved without call functions.",
        stacklevel=3,
    )


def _call_collections(
    model: keras.layers.Layer, layers: list[keras.layers.Layer]
) -> dict[int, LayerCallFunctions]:
    """A :class:`LayerCallFunctions` per built layer, by ``id(layer)``; warn for the others."""
    collections: dict[int, LayerCallFunctions] = {}
    for layer in layers:
        if not _has_call_functions(layer):
            continue
        if not layer.built:
            _warn_skipped(layer, "it is not built")
            continue
        collections[id(layer)] = LayerCallFunctions(layer)
    return collections


def _trace_layers(
    model: keras.layers.Layer,
    layers: list[keras.layers.Layer],
    collections: dict[int, LayerCallFunctions],
) -> dict[int, dict[str, Any]]:
    """Trace the call functions; return them by ``id(layer)``.

    Layers that cannot be traced are removed from ``collections`` (with a warning).
    """
    root_signature = input_signature(model) if id(model) in collections else None
    if root_signature is not None:
        collections[id(model)].trace_all_modes(root_signature)
    for layer in layers:
        collection = collections.get(id(layer))
        if collection is None:
            continue
        if isinstance(layer, RevivedLayer):
            # A revived layer is not called by its parent: it gets what it was saved with.
            for signature in layer.saved_input_signatures:
                collection.trace_all_modes(signature)
            continue
        if collection.signatures:
            continue
        signature = _built_signature(layer)
        if signature is None:
            what = "its inputs are not defined" if layer is model else "no input shape known"
            _warn_skipped(layer, what)
            del collections[id(layer)]
            continue
        try:
            collection.trace_all_modes(signature)
        except Exception as error:  # noqa: BLE001 - a layer we cannot call alone
            _warn_skipped(layer, f"calling it on {signature} failed ({type(error).__name__})")
            del collections[id(layer)]
    functions = {key: collection.endpoints() for key, collection in collections.items()}
    # Like tf_keras, only a model (not a bare layer) gets a default serving signature.
    if id(model) in functions and root_signature is not None and isinstance(model, keras.Model):
        functions[id(model)]["_default_save_signature"] = _default_save_signature(
            model, root_signature, functions[id(model)]["__call__"], collections[id(model)]
        )
    return functions


def _built_signature(layer: keras.layers.Layer, named: bool = False) -> tuple | None:
    """The signature (specs per tensor argument) a layer was built for, or None.

    A layer whose functions take one argument: :func:`_built_input_signature`. One that
    takes several (a subclassed model's ``call(a, b)``): the ``input_spec`` it declares, a
    list with an ``InputSpec`` (shape and dtype) per argument, else the shapes it was built
    with if Keras recorded one per argument. ``named`` names each spec after its ``call``
    argument, as a serving signature needs.
    """
    names = call_argument_names(layer)
    if len(names) == 1:
        name = _first_call_argument(layer) if named else None
        spec = _built_input_signature(layer, name=name)
        return None if spec is None else (spec,)
    argument_names = _call_argument_names_unbound(layer) if named else [None] * len(names)
    declared = _declared_input_structure(getattr(layer, "input_spec", None))
    if isinstance(declared, (list, tuple)) and len(declared) == len(names):
        leaves = list(declared)
    else:
        # Keras 3 records the build shape of the first argument only, as a rule.
        shapes = list((getattr(layer, "_build_shapes_dict", None) or {}).values())
        if len(shapes) != len(names) or not all(_is_shape(shape) for shape in shapes):
            return None
        dtype = tf.as_dtype(layer.input_dtype)
        leaves = [_Leaf(list(shape), dtype) for shape in shapes]
    return tuple(
        _named_specs(leaf, name) for leaf, name in zip(leaves, argument_names, strict=True)
    )


def _built_input_signature(layer: keras.layers.Layer, name: str | None = None) -> Any:
    """Input specs for a layer that is not Functional, batch dimension None.

    Where the layer declares ``input_spec`` (a ``keras.InputSpec`` or a list, tuple or dict
    of them) with a ``shape`` and a ``dtype`` for every input, those are used: Keras 3
    records the shapes a layer was built with but not the dtypes it was called with.
    Otherwise the shapes it was built with are used, with the layer's input dtype; only
    layers built from one call argument qualify, and that argument may be a nested list or
    dict of tensors. Leaves are named after ``name``: ``name`` itself, a dict key, or
    ``name_<i>`` in a list.
    """
    declared = _declared_input_structure(getattr(layer, "input_spec", None))
    shapes = getattr(layer, "_build_shapes_dict", None)
    built = None
    if shapes and len(shapes) == 1:
        try:
            built = _shape_structure(next(iter(shapes.values())), tf.as_dtype(layer.input_dtype))
        except ValueError:
            built = None
    if declared is not None:
        if built is not None:
            flat_declared, flat_built = tf.nest.flatten(declared), tf.nest.flatten(built)
            if len(flat_declared) == len(flat_built):
                # The structure the layer is called with (a single tensor for a one-element
                # input_spec list, say), with the declared shapes and dtypes.
                declared = tf.nest.pack_sequence_as(built, flat_declared)
        return _named_specs(declared, name)
    return None if built is None else _named_specs(built, name)


def _shape_structure(structure: Any, dtype: tf.DType) -> Any:
    """A nest of build shapes as a nest of unnamed ``(shape, dtype)`` leaves."""
    if _is_shape(structure):
        return _Leaf(list(structure), dtype)
    if isinstance(structure, dict):
        return {key: _shape_structure(value, dtype) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)) and structure:
        return type(structure)(_shape_structure(value, dtype) for value in structure)
    raise ValueError(f"not a shape structure: {structure!r}")


def _declared_input_structure(input_spec: Any) -> Any:
    """``input_spec`` as a nest of ``(shape, dtype)`` leaves, or None.

    None unless every ``InputSpec`` in it declares both a shape and a dtype.
    """
    if input_spec is None:
        return None
    if isinstance(input_spec, keras.InputSpec):
        if input_spec.shape is None or input_spec.dtype is None:
            return None
        return _Leaf(list(input_spec.shape), tf.as_dtype(input_spec.dtype))
    if isinstance(input_spec, dict) and input_spec:
        items = {key: _declared_input_structure(value) for key, value in input_spec.items()}
        return None if any(v is None for v in items.values()) else items
    if isinstance(input_spec, (list, tuple)) and input_spec:
        values = [_declared_input_structure(value) for value in input_spec]
        if any(v is None for v in values):
            return None
        # Keras tracks lists set on a layer as its own list type; a plain list is saved.
        return tuple(values) if isinstance(input_spec, tuple) else list(values)
    return None


class _Leaf:
    """One input's shape and dtype, before it is named."""

    def __init__(self, shape: list, dtype: tf.DType) -> None:
        self.shape, self.dtype = shape, dtype


def _named_specs(structure: Any, leaf_name: str | None) -> Any:
    """``tf.TensorSpec`` leaves with a None batch dimension, named as documented above."""
    if isinstance(structure, _Leaf):
        dims = list(structure.shape)
        if dims:
            dims[0] = None
        return tf.TensorSpec(dims, structure.dtype, name=leaf_name)
    if isinstance(structure, dict):
        return {key: _named_specs(value, str(key)) for key, value in structure.items()}
    names = [None if leaf_name is None else f"{leaf_name}_{i}" for i in range(len(structure))]
    return type(structure)(_named_specs(v, n) for v, n in zip(structure, names, strict=True))


def _is_shape(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in value
    )


def _functional_of(model: keras.layers.Layer) -> Any:
    """The Functional graph of a Functional model or a built Sequential, else None."""
    from keras.src.models.functional import Functional

    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    if isinstance(model, Functional):
        return model
    return None


def input_signature(model: keras.layers.Layer) -> Any:
    """The model's input structure as named ``tf.TensorSpec`` with a None batch dimension.

    Functional models (and built Sequential ones) name each input after its Input layer.
    Other models and layers use the shape they were built with, named after the first
    argument of ``call``. Returns None when the inputs are not known.
    """
    functional = _functional_of(model)
    if functional is not None:
        return (
            tf.nest.map_structure(
                lambda x: tf.TensorSpec(relaxed_spec(x).shape, x.dtype, name=x.name),
                functional._inputs_struct,
            ),
        )
    if isinstance(model, RevivedLayer):
        # Saved again as it was saved: the same input names and structure.
        if model.saved_serving_signature is not None:
            return model.saved_serving_signature
        signatures = model.saved_input_signatures
        return signatures[0] if signatures else None
    return _built_signature(model, named=True)


def _call_argument_names_unbound(layer: keras.layers.Layer) -> list[str]:
    """The names ``call`` gives its tensor arguments (the first one not renamed ``inputs``)."""
    # The unbound method: the instance's `call` may be swapped while saving.
    parameters = list(inspect.signature(type(layer).call).parameters)[1:]  # after `self`
    count = len(call_argument_names(layer))
    return parameters[:count] if len(parameters) >= count else ["inputs"] * count


def _first_call_argument(layer: keras.layers.Layer) -> str:
    return _call_argument_names_unbound(layer)[0]


def output_names(model: keras.layers.Layer, outputs: Any) -> list[str] | None:
    """The serving output keys for a flat list of outputs, or None for dict outputs.

    Functional models use their output layers' names; subclassed models ``output_1..n``.
    """
    if isinstance(outputs, dict):
        return None
    flat = tf.nest.flatten(outputs)
    if isinstance(model, RevivedLayer) and model.saved_output_names is not None:
        if len(model.saved_output_names) == len(flat):
            return list(model.saved_output_names)
    functional = _functional_of(model)
    if functional is not None and not isinstance(functional._outputs_struct, dict):
        names = list(functional.output_names)
        if len(names) == len(flat) and len(set(names)) == len(names):
            return names
    return [f"output_{i}" for i in range(1, len(flat) + 1)]


def _default_save_signature(
    model: keras.layers.Layer,
    signature: Any,
    call_fn: Any,
    collection: LayerCallFunctions,
) -> Any:
    """The ``serving_default`` function: inference-mode call, outputs keyed by name.

    ``signature`` holds named specs: those names are the serving inputs' names.
    """
    training = (False,) if collection.takes_training else ()
    argument_names = collection.argument_names

    def serve(*arguments):
        outputs = call_traced(call_fn, arguments, argument_names, *training)
        names = output_names(model, outputs)
        if names is None:
            return dict(outputs)
        return dict(zip(names, tf.nest.flatten(outputs), strict=True))

    function = tf.function(
        with_parameters(serve, argument_names, "_default_save_signature"),
        input_signature=list(signature),
        autograph=False,
    )
    function.get_concrete_function()
    return function


# -- step 3: the saved tree ------------------------------------------------------------------


def _build_saved_tree(
    model: keras.layers.Layer,
    layers: list[keras.layers.Layer],
    functions: dict[int, dict[str, Any]],
    include_optimizer: bool,
) -> tuple[Any, dict[int, tuple[str, Any]]]:
    """Build the saved nodes; return the root and, per saved node, (path, Keras object).

    Nodes are built children first (a parent lists its children's nodes). Paths are
    assigned breadth-first from the root, through ``keras_api.layers`` and
    ``keras_api.metrics``, so each object gets the shortest, first-found path.
    """
    losses = RegularizationLosses()
    nodes: dict[int, Any] = {}
    metric_nodes: dict[int, Any] = {}

    def metric_node(metric: keras.metrics.Metric) -> Any:
        if id(metric) not in metric_nodes:
            metric_nodes[id(metric)] = mirror_metric(metric)
        return metric_nodes[id(metric)]

    for layer in reversed(layers):
        own_metrics = list(getattr(layer, "_metrics", []))
        nodes[id(layer)] = mirror_node(
            layer,
            layers=[nodes[id(sub)] for sub in _sublayers(layer)],
            metrics=[metric_node(m) for m in _all_metrics(layer)],
            layer_metrics=[(m.name, metric_node(m)) for m in own_metrics],
            functions=functions.get(id(layer), {}),
            losses=losses,
            is_root=layer is model,
        )
    root = nodes[id(model)]
    if include_optimizer and getattr(model, "optimizer", None) is not None:
        optimizer = Node()
        optimizer.variables = tf_variables(model.optimizer.variables)
        root.optimizer = optimizer

    paths: dict[int, tuple[str, Any]] = {}
    queue = deque([("root", model)])
    while queue:
        path, layer = queue.popleft()
        node = nodes[id(layer)]
        if id(node) in paths:
            continue
        paths[id(node)] = (path, layer)
        for i, sub in enumerate(_sublayers(layer)):
            queue.append((f"{path}.{KERAS_API}.layers.{i}", sub))
        for i, metric in enumerate(_all_metrics(layer)):
            metric_path = f"{path}.{KERAS_API}.metrics.{i}"
            if id(metric_nodes[id(metric)]) not in paths:
                paths[id(metric_nodes[id(metric)])] = (metric_path, metric)
    return root, paths


def _all_metrics(layer: keras.layers.Layer) -> list[keras.metrics.Metric]:
    """The layer's metrics (its own and its sublayers'), as Keras lists them."""
    try:
        return [m for m in layer.metrics if isinstance(m, keras.metrics.Metric)]
    except Exception:  # noqa: BLE001 - a model that was never compiled may not list them
        return []


# -- step 4: node ids --------------------------------------------------------------------


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
