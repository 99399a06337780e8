"""The saved tree: the objects and functions a saved Keras object carries under ``keras_api``.

These are tf_keras' attribute sets (``serialized_attributes.py``), written down as data:

* :data:`COMMON_OBJECTS` / :data:`COMMON_FUNCTIONS` are also set directly on the root;
* a layer (and a model) carries :data:`LAYER_OBJECTS` and :data:`LAYER_FUNCTIONS`;
* an RNN layer carries :data:`RNN_OBJECTS` (its state variables as well);
* a metric carries :data:`METRIC_OBJECTS` only.

:func:`build_saved_tree` builds the whole tree; :func:`mirror_node` builds the trackable
object saved for one Keras object. They only read the Keras objects: the saved tree is a
separate tree of ``AutoTrackable`` nodes that refer to the layers' underlying
``tf.Variable`` objects, so the values are saved bitwise and each variable once, and the
model itself is never modified.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import keras
import tensorflow as tf

from reference_impl._compat import AutoTrackable

__all__ = [
    "COMMON_FUNCTIONS",
    "COMMON_OBJECTS",
    "KERAS_API",
    "LAYER_FUNCTIONS",
    "LAYER_OBJECTS",
    "MASK_FUNCTION",
    "METRIC_OBJECTS",
    "RNN_OBJECTS",
    "Node",
    "RegularizationLosses",
    "build_saved_tree",
    "mirror_metric",
    "mirror_node",
    "sublayers",
    "tf_variables",
]


#: The child under which every saved Keras object keeps its attributes.
KERAS_API = "keras_api"

COMMON_OBJECTS = ("variables", "trainable_variables", "regularization_losses")
COMMON_FUNCTIONS = ("__call__", "call_and_return_all_conditional_losses")

LAYER_OBJECTS = (
    *COMMON_OBJECTS,
    "non_trainable_variables",
    "layers",
    "metrics",
    "layer_regularization_losses",
    "layer_metrics",
)
LAYER_FUNCTIONS = (
    *COMMON_FUNCTIONS,
    "call_and_return_conditional_losses",
    "activity_regularizer_fn",
    "_default_save_signature",
)

#: Not in tf_keras' sets: the layer's own mask as a function of its inputs, for a reviver
#: (tf_keras revives a layer without its ``compute_mask``; this reference keeps it).
MASK_FUNCTION = "compute_mask_fn"

RNN_OBJECTS = (*LAYER_OBJECTS, "states")

METRIC_OBJECTS = ("variables",)


# A saved node: TensorFlow's plain trackable object (see reference_impl._compat).
Node = AutoTrackable


def build_saved_tree(
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

    def build(layer: keras.layers.Layer) -> Any:
        if id(layer) not in nodes:
            # children first; a layer that a sub-model shares with the model holding it
            # comes before the sub-model in ``layers``, so it is built when first needed
            children = [build(sub) for sub in sublayers(layer)]
            own_metrics = list(getattr(layer, "_metrics", []))
            nodes[id(layer)] = mirror_node(
                layer,
                layers=children,
                metrics=[metric_node(m) for m in _all_metrics(layer)],
                layer_metrics=[(m.name, metric_node(m)) for m in own_metrics],
                functions=functions.get(id(layer), {}),
                losses=losses,
                is_root=layer is model,
            )
        return nodes[id(layer)]

    for layer in reversed(layers):
        build(layer)
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
        for i, sub in enumerate(sublayers(layer)):
            queue.append((f"{path}.{KERAS_API}.layers.{i}", sub))
        for i, metric in enumerate(_all_metrics(layer)):
            metric_path = f"{path}.{KERAS_API}.metrics.{i}"
            if id(metric_nodes[id(metric)]) not in paths:
                paths[id(metric_nodes[id(metric)])] = (metric_path, metric)
    return root, paths


def sublayers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The layer's direct sublayers, as tf_keras lists them in ``keras_api.layers``.

    For a model that is ``model.layers`` (the list users see: a Sequential model's input
    layer is not in it, a Functional model's input layers are); for any other layer, its
    directly tracked layers.
    """
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _all_metrics(layer: keras.layers.Layer) -> list[keras.metrics.Metric]:
    """The layer's metrics (its own and its sublayers'), as Keras lists them."""
    try:
        return [m for m in layer.metrics if isinstance(m, keras.metrics.Metric)]
    except Exception:  # a model that was never compiled may not list them
        return []


def mirror_node(
    layer: keras.layers.Layer,
    *,
    layers: list[Any],
    metrics: list[Any],
    layer_metrics: list[tuple[str, Any]],
    functions: dict[str, Callable],
    losses: RegularizationLosses,
    is_root: bool,
) -> Any:
    """The saved object for ``layer``: a node whose ``keras_api`` holds the attribute sets.

    Args:
        layer: the Keras layer or model (only read).
        layers: the mirror nodes of its direct sublayers.
        metrics: mirror nodes of its metrics (its own and its sublayers').
        layer_metrics: (name, mirror node) of its own metrics.
        functions: the traced call functions by attribute name (empty when skipped).
        losses: the shared per-variable regularization loss functions.
        is_root: whether this is the saved model itself.
    """
    api = Node()
    api.variables = tf_variables(layer.variables)
    api.trainable_variables = tf_variables(layer.trainable_variables)
    api.non_trainable_variables = tf_variables(layer.non_trainable_variables)
    api.layers = list(layers)
    api.metrics = list(metrics)
    # Keras computes weight regularization losses from the trainable weights, in order.
    api.regularization_losses = losses.for_variables(layer.trainable_weights)
    api.layer_regularization_losses = losses.for_variables(_own_trainable_variables(layer))
    # A dict by metric name, as tf_keras writes it.
    api.layer_metrics = {metric_name: node for metric_name, node in layer_metrics}
    if isinstance(layer, keras.layers.RNN):
        # tf_keras' RNN attributes add the state variables of a stateful RNN.
        states = [s for s in tf.nest.flatten(layer.states) if isinstance(s, keras.Variable)]
        api.states = tf_variables(states)
    for name in LAYER_FUNCTIONS:
        if name in functions:
            setattr(api, name, functions[name])
    if MASK_FUNCTION in functions:
        setattr(api, MASK_FUNCTION, functions[MASK_FUNCTION])

    node = Node()
    node.keras_api = api
    # The layer's lookup tables, under the layer's own attribute names (as tf_keras saves
    # its lookup layers): the saved functions capture them, and a table initialized from a
    # vocabulary file carries that file as a SavedModel asset (copied into ``assets/``).
    for name, resource in _own_resources(layer):
        setattr(node, name, resource)
    if is_root:
        # tf_keras puts the common endpoints on the root itself too (the same objects).
        for name in COMMON_OBJECTS:
            setattr(node, name, getattr(api, name))
        for name in COMMON_FUNCTIONS:
            if name in functions:
                setattr(node, name, functions[name])
    return node


def _own_resources(layer: keras.layers.Layer) -> list[tuple[str, Any]]:
    """(attribute name, resource) for the TensorFlow resources other than variables that
    ``layer`` holds directly (StringLookup's and IntegerLookup's ``lookup_table``)."""
    return [
        (name, value)
        for name, value in sorted(vars(layer).items())
        if isinstance(value, tf.saved_model.experimental.TrackableResource)
        and not isinstance(value, tf.Variable)
    ]


def mirror_metric(metric: keras.metrics.Metric) -> Any:
    """The saved object for a metric: ``keras_api.variables`` only."""
    api = Node()
    api.variables = tf_variables(metric.variables)
    node = Node()
    node.keras_api = api
    return node


class RegularizationLosses:
    """One zero-argument ``tf.function`` per regularized variable, shared across layers.

    The function computes the variable's regularizer on the variable, exactly what Keras
    adds to ``layer.losses``. A variable regularized once gets one function object, so it is
    saved once even though it appears in the lists of the layer and of all its parents.
    """

    def __init__(self) -> None:
        self._functions: dict[int, tf.types.experimental.GenericFunction] = {}

    def for_variables(self, variables: Iterable[Any]) -> list:
        functions = []
        for variable in variables:
            if getattr(variable, "regularizer", None) is None:
                continue
            key = id(variable)
            if key not in self._functions:
                self._functions[key] = self._make(variable, len(self._functions))
            functions.append(self._functions[key])
        return functions

    @staticmethod
    def _make(variable: Any, index: int) -> tf.types.experimental.GenericFunction:
        regularizer = variable.regularizer

        def loss_fn():
            # The variable is read even where the regularizer ignores it (zero factors): a
            # loader tells which variable a loss belongs to by what its function captures.
            with tf.control_dependencies([tf.identity(variable.value)]):
                return tf.identity(regularizer(variable))

        loss_fn.__name__ = f"loss_fn_{index}"
        return tf.function(loss_fn, input_signature=[])


def tf_variables(variables: Iterable[Any]) -> list[tf.Variable]:
    """The ``tf.Variable`` behind each Keras variable (the same object, not a copy)."""
    return [getattr(v, "value", v) for v in variables]


def _own_trainable_variables(layer: keras.layers.Layer) -> list:
    """The trainable variables the layer created itself (not its sublayers')."""
    return [v for v in layer._trainable_variables if v.trainable] if layer.trainable else []
