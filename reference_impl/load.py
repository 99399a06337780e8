"""``load``: turn a Keras SavedModel back into a Keras 3 model.

Two ways, tried in this order:

1. **From the config.** When every class the metadata names is known (built into Keras,
   registered with ``keras.saving.register_keras_serializable``, or given in
   ``custom_objects``), the model is rebuilt with ``keras.saving.deserialize_keras_object``
   from the root's config, built, and its variables are assigned from the checkpoint, in
   order, bitwise. No saved function is loaded and no saved code runs; ``safe_mode`` is
   passed on, so Keras refuses Lambda bytecode and the like.
2. **Revived** (:mod:`reference_impl.revive`). Otherwise (a class is unknown, or the config
   does not give back the saved model) the SavedModel is loaded with
   ``tf.saved_model.load`` and wrapped in a Keras layer or model that calls the saved
   functions, with a warning that names the unknown class (a Sequential becomes a
   ``keras.Sequential`` of revived layers, which ``add()`` and ``pop()`` can change).
   Whatever ``safe_mode`` says: ``safe_mode`` forbids deserializing Python code (Lambda
   bytecode, pickles), and the saved graph functions are not Python code but data the
   TensorFlow runtime executes, as ``tf.saved_model.load`` does; reviving deserializes no
   config. A config that does not rebuild the model (every class
   known) is revived too, with a warning saying why.

A config written by tf_keras or ``tf.keras`` (Keras 2) is first translated to Keras 3
(:mod:`reference_impl.legacy_config`), and the rebuilt model's variables are matched to the
checkpoint through the object graph, layer by layer and by variable name: tf_keras lists a
layer's trainable variables before its non-trainable ones, Keras 3 in creation order, so
the positions of the two ``variables`` lists differ.

A SavedModel without ``keras_metadata.pb`` but with ``keras_api`` objects is revived with a
warning whatever ``safe_mode`` says, as the format's specification asks (there is no config
to rebuild from); one without either is not a Keras SavedModel.

With ``compile=True`` a model saved with its training config is compiled again, and the
optimizer's variables are restored when they were saved.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from reference_impl import atomic, legacy_config, revive, validate
from reference_impl._compat import FUNCTIONAL_MODULE, find_class
from reference_impl.attributes import KERAS_API
from reference_impl.errors import (
    CorruptSavedModelError,
    NotASavedModelError,
    UnsafeDeserializationError,
    UnsupportedSavedModelError,
)
from reference_impl.metadata import KERAS_CONFIG_KEY, METRIC_IDENTIFIER, MetadataNode

__all__ = ["load"]

_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VARIABLE_VALUE = "VARIABLE_VALUE"
# Where tf_keras' metadata has no "module", a built-in class lives in one of these.
_BUILTIN_MODULES = (
    "keras.layers",
    "keras.models",
    FUNCTIONAL_MODULE,
    "keras.metrics",
    "keras",
)


def load(
    filepath: str | os.PathLike[str],
    compile: bool = True,
    safe_mode: bool = True,
    custom_objects: Mapping[str, Any] | None = None,
) -> keras.layers.Layer:
    """Load the Keras SavedModel at ``filepath`` as a Keras 3 model (or layer).

    Args:
        filepath: the SavedModel directory.
        compile: compile the model from its saved training config, if there is one, and
            restore the optimizer's variables where they were saved.
        safe_mode: refuse to deserialize Python code from configs (Lambda bytecode);
            unknown classes are still revived from the saved graph functions.
        custom_objects: classes and functions by name, for the config's custom classes.

    Raises:
        SavedModelNotFoundError, NotASavedModelError, CorruptSavedModelError, MetadataError:
            the files are missing or damaged (see :mod:`reference_impl.validate`).
        UnsafeDeserializationError: the config holds code and ``safe_mode`` is on.
        UnsupportedSavedModelError: a valid file whose config does not rebuild the model
            and whose saved functions do not revive it either.

    A config that does not rebuild the saved model (a tf_keras class or argument without a
    Keras 3 equivalent, variables that do not match) is not an error: the model is revived
    from its saved functions, with a warning that says why.
    """
    path = os.path.abspath(os.fspath(filepath))
    atomic.recover(path)
    files = validate.open_saved_model(path)
    custom_objects = dict(custom_objects or {})

    if files.metadata_nodes is None:
        return _revive_without_metadata(files, compile)

    nodes = files.metadata_nodes
    root = _root_node(path, nodes)
    unknown = _unknown_classes(nodes, custom_objects)
    if unknown:
        names = ", ".join(sorted({_class_label(node.metadata) for node in unknown}))
        # Reviving deserializes no Python code: the saved graph functions are data that
        # the TensorFlow runtime executes (as tf.saved_model.load does), so safe_mode allows
        # it. Only a config is never deserialized here, Lambda bytecode included.
        why = f"class {names} is not built in, registered or in custom_objects"
    else:
        try:
            model = _from_config(files, root, nodes, custom_objects, safe_mode)
        except _NotRebuilt as error:
            # A valid file whose config Keras 3 cannot rebuild (a class or argument with no
            # Keras 3 equivalent) is revived, under safe_mode too: reviving runs no Python code.
            why = f"the model cannot be rebuilt from its config: {error}"
        else:
            if compile:
                _compile_and_restore_optimizer(files, model, root, custom_objects)
            return model

    warnings.warn(f"Reviving the model at '{path}' from its saved functions: {why}.", stacklevel=2)
    try:
        model = revive.revive(files.path, root, nodes)
    except Exception as error:  # the saved functions do not make a Keras layer either
        raise UnsupportedSavedModelError(
            path, f"{why}; and it cannot be revived from its saved functions: {error}"
        ) from error
    if compile:
        _compile_and_restore_optimizer(files, model, root, custom_objects)
    return model


# -- metadata ----------------------------------------------------------------------------


def _root_node(path: str, nodes: list[MetadataNode]) -> MetadataNode:
    for node in nodes:
        if node.node_id == 0:
            return node
    raise CorruptSavedModelError(
        os.path.join(path, "keras_metadata.pb"), "no record for the root object (node 0)"
    )


def _class_label(record: Mapping[str, Any]) -> str:
    return f"'{record.get('registered_name') or record.get('class_name')}'"


def _class_module(record: Mapping[str, Any], custom_objects: dict[str, Any]) -> str | None:
    """The module Keras finds the record's class in, or None when the class is unknown.

    Keras' own lookup is used: registered and custom objects first, then Keras' public API
    (only ``keras`` packages are ever imported). tf_keras' metadata names no module; its
    built-in classes are looked for in Keras 3's corresponding modules.
    """
    name = record.get("class_name")
    if not isinstance(name, str):
        return None
    registered = record.get("registered_name") or name
    module = record.get("module")
    if not isinstance(registered, str) or module and not isinstance(module, str):
        return None  # a name that is no string names no class (Keras' lookup would raise)
    modules = [module] if module else list(_BUILTIN_MODULES)
    for module in modules:
        try:
            find_class(name, registered, module, custom_objects)
        except (TypeError, ValueError):
            continue
        return module
    return None


def _unknown_classes(
    nodes: list[MetadataNode], custom_objects: dict[str, Any]
) -> list[MetadataNode]:
    """The nodes whose class Keras cannot find.

    Metrics do not count: the model does not need them to be rebuilt, and compiling from the
    training config creates the compiled metrics again.
    """
    known_paths = {
        node.node_path for node in nodes if _class_module(node.metadata, custom_objects)
    }
    return [
        node
        for node in nodes
        if node.identifier != METRIC_IDENTIFIER
        and _class_module(node.metadata, custom_objects) is None
        and not _built_by_parent(node, known_paths)
    ]


# Sublayers a known layer makes itself from its own config (tf_keras' ConvLSTM1D config holds
# no cell: the layer builds its ConvLSTMCell, whose class Keras 3 does not export).
_BUILT_BY_PARENT = ("cell", "forward_layer", "backward_layer")


def _built_by_parent(node: MetadataNode, known_paths: set[str]) -> bool:
    parent, _, attribute = node.node_path.rpartition(".")
    return attribute in _BUILT_BY_PARENT and parent in known_paths


# -- from the config ---------------------------------------------------------------------


class _NotRebuilt(Exception):
    """The config did not give back the saved model; the message says why."""


def _from_config(
    files: validate.SavedModelFiles,
    root: MetadataNode,
    nodes: list[MetadataNode],
    custom_objects: dict[str, Any],
    safe_mode: bool,
) -> keras.layers.Layer:
    """Rebuild the root from its config and assign its variables.

    Raises:
        UnsafeDeserializationError: Keras refused code in the config under ``safe_mode``.
        _NotRebuilt: the config is missing, does not translate, deserialize or build, or
            builds a model whose variables do not match the saved ones.
    """
    record = dict(root.metadata)
    if KERAS_CONFIG_KEY in record:  # written here: "config" is tf_keras' form of it
        record["config"] = record[KERAS_CONFIG_KEY]
    if not isinstance(record.get("config"), Mapping):
        raise _NotRebuilt(f"the root has no config ({record.get('config_error', 'none saved')})")
    serialized = {
        key: record[key]
        for key in ("class_name", "registered_name", "config")
        if record.get(key) is not None
    }
    legacy = legacy_config.is_legacy(record)
    if legacy:
        try:
            serialized = legacy_config.translate(
                serialized, assets=os.path.join(files.path, "assets")
            )
        except legacy_config.Untranslatable as error:
            raise _NotRebuilt(
                f"its tf_keras config does not translate to Keras 3 ({error})"
            ) from error
    serialized["module"] = _class_module(record, custom_objects)
    try:
        model = keras.saving.deserialize_keras_object(
            serialized, custom_objects=custom_objects, safe_mode=safe_mode
        )
    except Exception as error:  # any failure of user or Keras code
        if "safe_mode" in str(error):
            raise UnsafeDeserializationError(
                os.path.join(files.path, "keras_metadata.pb"), error
            ) from error
        raise _NotRebuilt(
            f"its config does not deserialize ({type(error).__name__}: {error})"
        ) from error
    if not model.built and record.get("build_config"):
        try:
            model.build_from_config(record["build_config"])
        except Exception as error:
            raise _NotRebuilt(f"it does not build ({type(error).__name__}: {error})") from error
    _refreeze(model, nodes)
    if legacy:
        _assign_by_object_graph(files, model, root, nodes)
        return model
    saved = _saved_values(files, ("root", KERAS_API, "variables"))
    if saved is None:
        saved = _saved_values(files, ("root", "variables"))
    if saved is None:
        raise _NotRebuilt("the saved root lists no variables")
    if not _assign(model.variables, saved):
        raise _NotRebuilt(
            f"the model built from its config has {len(model.variables)} variables that do "
            f"not match the {len(saved)} saved ones in shape and dtype"
        )
    return model


# Keras 3 names a few variables differently from tf_keras (Keras 3 name -> tf_keras name).
_VARIABLE_ALIASES = {"kernel": ("depthwise_kernel",)}


def _assign_by_object_graph(
    files: validate.SavedModelFiles,
    model: keras.layers.Layer,
    root: MetadataNode,
    nodes: list[MetadataNode],
) -> None:
    """Assign each rebuilt layer's variables from the saved layer of the same name.

    The saved layer is found in the object graph (the metadata's node paths), its variables
    through its ``keras_api.variables`` list, each matched by name (then by shape and
    dtype), never by its position in the model's ``variables``. Keras 3's seed generator
    states have no tf_keras counterpart and keep their values.

    Raises:
        _NotRebuilt: a layer or variable has no saved counterpart, or one is left over.
    """
    by_parent: dict[str, dict[str, MetadataNode]] = {}
    for node in nodes:
        parent = node.node_path.rsplit(".", 1)[0] if "." in node.node_path else None
        name = node.metadata.get("name")
        if parent is not None and isinstance(name, str):
            by_parent.setdefault(parent, {}).setdefault(name, node)
    pairs: list[tuple[Any, np.ndarray]] = []
    _match_layer(files, model, root, by_parent, pairs)
    for variable, value in pairs:
        variable.assign(value)


def _is_container(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.Sequential) or (
        isinstance(layer, keras.Model) and getattr(layer, "_is_graph_network", False)
    ) or type(layer).__name__ == "Functional"


def _match_layer(
    files: validate.SavedModelFiles,
    layer: keras.layers.Layer,
    node: MetadataNode,
    by_parent: dict[str, dict[str, MetadataNode]],
    pairs: list,
) -> None:
    if _is_container(layer):
        children = by_parent.get(node.node_path, {})
        for sublayer in layer.layers:
            if not sublayer.variables:
                continue
            if sublayer.name not in children:
                raise _NotRebuilt(
                    f"layer '{sublayer.name}' has variables but no saved layer of that name "
                    f"under '{node.node_path}'"
                )
            _match_layer(files, sublayer, children[sublayer.name], by_parent, pairs)
        return
    saved = _saved_named_values(files, node.node_id)
    if saved is None:
        raise _NotRebuilt(f"the saved layer '{node.node_path}' lists no variables")
    unused = list(range(len(saved)))
    for variable in layer.variables:
        if "seed_generator" in variable.path:
            continue
        index = _find_saved(variable, saved, unused)
        if index is None:
            raise _NotRebuilt(
                f"variable '{variable.path}' {tuple(variable.shape)} {variable.dtype} has no "
                f"saved counterpart in '{node.node_path}' "
                f"({[(n, v.shape, str(v.dtype)) for n, v in saved]})"
            )
        unused.remove(index)
        pairs.append((variable, saved[index][1]))
    if unused:
        raise _NotRebuilt(
            f"saved variables {[saved[i][0] for i in unused]} of '{node.node_path}' have no "
            f"counterpart in the rebuilt layer '{layer.name}'"
        )


def _find_saved(variable: Any, saved: list, unused: list[int]) -> int | None:
    """The first unused saved variable of the same name (or alias), else the only one of the
    same shape and dtype."""

    def fits(i: int) -> bool:
        value = saved[i][1]
        return tuple(variable.shape) == value.shape and tf.as_dtype(
            variable.dtype
        ) == tf.as_dtype(value.dtype)

    names = (variable.name, *_VARIABLE_ALIASES.get(variable.name, ()))
    for name in names:
        for i in unused:
            if saved[i][0] == name and fits(i):
                return i
    candidates = [i for i in unused if fits(i)]
    return candidates[0] if len(candidates) == 1 else None


def _refreeze(model: keras.layers.Layer, nodes: list[MetadataNode]) -> None:
    """Set ``trainable=False`` again, once built, on every layer its config made frozen.

    Keras 3.15 applies a constructor's ``trainable=False`` to the layer's own variables only:
    the sub-layers of a TimeDistributed, Bidirectional, MultiHeadAttention or ConvLSTM stay
    trainable (keras-team/keras#19398 fixed it for own variables). Setting it once built
    reaches them, as it did on the saved model. Some constructors (SpatialDropout1D/2D/3D)
    take no ``trainable`` at all and rebuild trainable: each layer's saved flag (its
    metadata node's ``trainable``) is set on them too.
    """
    frozen = {
        node.metadata["name"]
        for node in nodes
        if node.metadata.get("trainable") is False and isinstance(node.metadata.get("name"), str)
    }
    for layer in [model, *model._flatten_layers(include_self=False)]:
        if layer.trainable and layer.name in frozen:
            layer.trainable = False
        if not layer.trainable:
            for sub in layer._flatten_layers(include_self=False):
                if sub.trainable:  # Keras' setter does nothing when the value is unchanged
                    sub.trainable = False


def _compile_and_restore_optimizer(
    files: validate.SavedModelFiles,
    model: keras.layers.Layer,
    root: MetadataNode,
    custom_objects: dict[str, Any],
) -> None:
    """Compile from ``training_config``; restore the optimizer's variables where saved."""
    config = root.metadata.get("training_config")
    if not isinstance(config, Mapping) or not isinstance(model, keras.Model):
        return
    try:
        with keras.saving.custom_object_scope(custom_objects):
            model.compile_from_config(dict(config))
    except Exception as error:  # the model is still usable uncompiled
        warnings.warn(
            f"The model at '{files.path}' was loaded uncompiled: its training config could "
            f"not be compiled ({type(error).__name__}: {error}).",
            stacklevel=3,
        )
        return
    saved = _saved_values(files, ("root", "optimizer", "variables"))
    if saved is None:
        return
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    if not _assign(optimizer.variables, saved):
        warnings.warn(
            f"The optimizer variables saved at '{files.path}' do not match the optimizer "
            "built from the training config; it starts from scratch.",
            stacklevel=3,
        )


# -- the checkpoint ----------------------------------------------------------------------


def _node_at(files: validate.SavedModelFiles, path: tuple[str, ...]) -> int | None:
    """The object-graph node id at ``path`` (``("root", "keras_api", ...)``), or None."""
    graph = files.saved_model.meta_graphs[0].object_graph_def
    node_id = 0
    for name in path[1:]:
        children = {child.local_name: child.node_id for child in graph.nodes[node_id].children}
        if name not in children:
            return None
        node_id = children[name]
    return node_id


def _saved_values(
    files: validate.SavedModelFiles, list_path: tuple[str, ...]
) -> list[np.ndarray] | None:
    """The checkpoint values of the variables listed at ``list_path``, in list order."""
    list_id = _node_at(files, list_path)
    if list_id is None:
        return None
    variable_ids = _listed(files, list_id, complete=True)
    if variable_ids is None:
        return None
    return _checkpoint_values(files, variable_ids)


def _saved_named_values(
    files: validate.SavedModelFiles, node_id: int
) -> list[tuple[str, np.ndarray]] | None:
    """``(name, value)`` of the variables the saved layer at ``node_id`` lists in
    ``keras_api.variables``; the name is the variable's last path segment (``kernel``)."""
    graph = files.saved_model.meta_graphs[0].object_graph_def
    children = {child.local_name: child.node_id for child in graph.nodes[node_id].children}
    if KERAS_API not in children:
        return None
    api = {c.local_name: c.node_id for c in graph.nodes[children[KERAS_API]].children}
    if "variables" not in api:
        return None
    variable_ids = _listed(files, api["variables"], complete=False)
    values = _checkpoint_values(files, variable_ids)
    if values is None:
        return None
    names = [graph.nodes[i].variable.name.split(":")[0].rsplit("/", 1)[-1] for i in variable_ids]
    return list(zip(names, values, strict=True))


def _listed(files: validate.SavedModelFiles, list_id: int, *, complete: bool) -> list[int] | None:
    """The node ids a saved list holds at ``"0"``, ``"1"``...; None when ``complete`` and the
    list has other children (it is not a plain list)."""
    graph = files.saved_model.meta_graphs[0].object_graph_def
    listed = {child.local_name: child.node_id for child in graph.nodes[list_id].children}
    ids = [listed[str(i)] for i in range(len(listed)) if str(i) in listed]
    if complete and len(ids) != len(listed):
        return None
    return ids


def _checkpoint_values(
    files: validate.SavedModelFiles, variable_ids: list[int]
) -> list[np.ndarray] | None:
    """The checkpointed value of each variable node, in order; None if one has no value."""
    if not variable_ids:
        return []
    reader = _checkpoint(files)
    object_graph = trackable_object_graph_pb2.TrackableObjectGraph()
    object_graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
    values = []
    for node_id in variable_ids:
        keys = [
            attribute.checkpoint_key
            for attribute in object_graph.nodes[node_id].attributes
            if attribute.name == _VARIABLE_VALUE
        ]
        if not keys:
            return None
        values.append(np.asarray(reader.get_tensor(keys[0])))
    return values


def _checkpoint(files: validate.SavedModelFiles) -> Any:
    return tf.train.load_checkpoint(files.variables_prefix)


def _assign(variables: list[Any], values: list[np.ndarray]) -> bool:
    """Assign ``values`` to ``variables`` in order if every shape and dtype matches."""
    if len(variables) != len(values):
        return False
    for variable, value in zip(variables, values, strict=True):
        value = np.asarray(value)
        if tuple(variable.shape) != value.shape:
            return False
        if tf.as_dtype(variable.dtype) != tf.as_dtype(value.dtype):
            return False
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)
    return True


# -- no metadata -------------------------------------------------------------------------


def _revive_without_metadata(files: validate.SavedModelFiles, compile: bool) -> Any:
    """A SavedModel without ``keras_metadata.pb``: revive it if it has ``keras_api``."""
    del compile  # Without metadata there is no training config.
    if _node_at(files, ("root", KERAS_API)) is None:
        raise NotASavedModelError(
            files.path,
            "no keras_metadata.pb and no keras_api objects: a plain TensorFlow SavedModel, "
            "not a Keras one (load it with tf.saved_model.load)",
        )
    warnings.warn(
        f"The SavedModel at '{files.path}' has no keras_metadata.pb; it is revived from its "
        "keras_api functions, without its config.",
        stacklevel=3,
    )
    try:
        return revive.revive(files.path, None)
    except Exception as error:  # TensorFlow's own errors about the graph name no path
        raise UnsupportedSavedModelError(
            files.path,
            f"no keras_metadata.pb, and it cannot be revived from its saved functions: {error}",
        ) from error
