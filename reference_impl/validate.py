"""Open a SavedModel directory and check that its files are whole and consistent.

:func:`open_saved_model` is the loader's first step. It turns every way a path can be wrong
into one :class:`~reference_impl.errors.ReferenceImplError` subclass naming the path and the
cause, before TensorFlow gets a chance to fail deep inside its own loader:

==========================================  =====================================
what is wrong                               error
==========================================  =====================================
nothing at the path                         SavedModelNotFoundError
a file, or a directory without saved_model  NotASavedModelError
saved_model.pb truncated or altered         CorruptSavedModelError
variables missing, truncated, altered, or   CorruptSavedModelError
from another model
keras_metadata.pb unparsable or not JSON    MetadataError
==========================================  =====================================

What is checked, and what cannot be:

* Where the directory has a checksum manifest (every save made by ``reference_impl`` writes
  one, see :mod:`reference_impl.integrity`), every file it lists must be present with the
  recorded SHA-256. This detects any altered or truncated byte in those files.
* ``saved_model.pb`` must parse as a ``SavedModel`` message with a meta graph whose object
  graph, function library and signatures refer to each other consistently. Protobuf has no
  checksum of its own, and TensorFlow's ``fingerprint.pb`` checksum cannot be recomputed
  with public APIs, so without a manifest (directories written by tf_keras or
  ``tf.saved_model.save``) an altered byte that leaves a valid message with consistent
  references (a changed constant inside a function body, say) is not detected.
* The checkpoint in ``variables/`` must be complete: the index parses, every data shard it
  names is present, ``fingerprint.pb``'s ``checkpoint_hash`` (when present) matches the
  index, and every tensor reads back. TensorFlow's checkpoint reader verifies a CRC32C of
  each tensor as it reads it, so reading all of them detects altered or truncated data.
  Reading costs a pass over the variable data, the price of loading the model anyway.
  Before TensorFlow reads the index, an entry whose shape or dtype would make its reader
  abort the process is refused (:mod:`reference_impl.checkpoint_index`).
* The checkpoint's object graph must match the SavedModel's: every variable the SavedModel
  declares is in the checkpoint with the same dtype and shape (variables copied from
  another model fail here).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tensorflow as tf
from google.protobuf import message, text_format
from tensorflow.core.protobuf import saved_model_pb2, trackable_object_graph_pb2

from reference_impl import atomic, checkpoint_index, integrity
from reference_impl.errors import (
    CorruptSavedModelError,
    MetadataError,
    NotASavedModelError,
    SavedModelNotFoundError,
)
from reference_impl.metadata import METADATA_FILENAME, MetadataNode, read_metadata

__all__ = ["SavedModelFiles", "open_saved_model"]

_log = logging.getLogger(__name__)

SAVED_MODEL_FILENAME_PB = "saved_model.pb"
SAVED_MODEL_FILENAME_PBTXT = "saved_model.pbtxt"
VARIABLES_DIRECTORY = "variables"
VARIABLES_PREFIX = "variables"
FINGERPRINT_FILENAME = "fingerprint.pb"
# The checkpoint key under which TensorFlow stores the checkpoint's object graph.
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
VARIABLE_VALUE_ATTRIBUTE = "VARIABLE_VALUE"

_SHARD = re.compile(r"\.data-(?P<index>[0-9]{5})-of-(?P<count>[0-9]{5})$")

_T = TypeVar("_T")


@dataclass(frozen=True)
class SavedModelFiles:
    """A SavedModel directory whose files passed :func:`open_saved_model`'s checks.

    Attributes:
        path: the directory.
        saved_model: the parsed ``saved_model.pb`` (a ``SavedModel`` protobuf message).
        metadata_nodes: the records of ``keras_metadata.pb``, or None when the directory has
            no Keras metadata (a SavedModel written by plain ``tf.saved_model.save``).
    """

    path: str
    saved_model: saved_model_pb2.SavedModel
    metadata_nodes: list[MetadataNode] | None

    @property
    def variables_prefix(self) -> str:
        """The checkpoint prefix of the variables, as ``tf.train.load_checkpoint`` takes it."""
        return os.path.join(self.path, VARIABLES_DIRECTORY, VARIABLES_PREFIX)


def open_saved_model(
    path: str | os.PathLike[str], *, check_variables: bool = True
) -> SavedModelFiles:
    """Check the SavedModel at ``path`` and return its parsed files.

    First runs :func:`reference_impl.atomic.recover`, so that a save interrupted between
    its two renames leaves the previous model loadable.

    Args:
        path: the SavedModel directory.
        check_variables: read every tensor of the checkpoint to verify its CRC32C (see the
            module docstring) when no checksum manifest covers the files already.

    Returns:
        A :class:`SavedModelFiles`.

    Raises:
        SavedModelNotFoundError, NotASavedModelError, CorruptSavedModelError, MetadataError:
            as listed in the module docstring; each names the path and the cause.
    """
    path = os.path.abspath(os.fspath(path))
    _recover_quietly(path)
    if not os.path.lexists(path):
        raise SavedModelNotFoundError(path, "no such file or directory")
    if not os.path.isdir(path):
        raise NotASavedModelError(path, "is a file; a SavedModel is a directory")

    verified = integrity.verify_manifest(path)
    saved_model = _read_saved_model(path)
    _check_object_graph(path, saved_model)
    _check_variables(
        path,
        saved_model,
        read_tensors=check_variables and not _variables_verified(path, verified),
    )
    return SavedModelFiles(path, saved_model, _read_keras_metadata(path, saved_model))


def _recover_quietly(path: str) -> None:
    """Run crash recovery; a read-only location must not stop a load."""
    try:
        atomic.recover(path)
    except OSError as exc:
        _log.warning("Could not check %s for an interrupted save: %s", path, exc)


def _corrupt(path: str, what: str, action: Callable[[], _T]) -> _T:
    """Run ``action``; report any failure as a corrupt file at ``path``."""
    try:
        return action()
    except Exception as exc:  # TF raises many types for bad files
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorruptSavedModelError(path, f"{what}: {type(exc).__name__}: {detail}") from exc


# ---------------------------------------------------------------------------------------
# saved_model.pb
# ---------------------------------------------------------------------------------------


def _read_saved_model(path: str) -> saved_model_pb2.SavedModel:
    pb_path = os.path.join(path, SAVED_MODEL_FILENAME_PB)
    pbtxt_path = os.path.join(path, SAVED_MODEL_FILENAME_PBTXT)
    saved_model = saved_model_pb2.SavedModel()
    if os.path.isfile(pb_path):
        with open(pb_path, "rb") as file:
            data = file.read()
        try:
            saved_model.ParseFromString(data)
        except (message.DecodeError, RuntimeError, ValueError) as exc:
            raise CorruptSavedModelError(
                pb_path, f"not a SavedModel protobuf (truncated or altered): {exc}"
            ) from exc
        where = pb_path
    elif os.path.isfile(pbtxt_path):
        try:
            with open(pbtxt_path, encoding="utf-8") as file:
                text_format.Parse(file.read(), saved_model)
        except (text_format.ParseError, UnicodeDecodeError) as exc:
            raise CorruptSavedModelError(pbtxt_path, f"not a SavedModel text proto: {exc}") from exc
        where = pbtxt_path
    else:
        entries = sorted(os.listdir(path))
        listing = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise NotASavedModelError(
            path,
            f"no {SAVED_MODEL_FILENAME_PB} in the directory"
            + (f" (it holds: {listing})" if entries else " (it is empty)"),
        )
    if not saved_model.meta_graphs:
        raise CorruptSavedModelError(where, "the SavedModel holds no meta graph")
    return saved_model


def _check_object_graph(path: str, saved_model: saved_model_pb2.SavedModel) -> None:
    """Check that the object graph, functions and signatures refer to things that exist."""
    where = os.path.join(path, SAVED_MODEL_FILENAME_PB)
    meta_graph = saved_model.meta_graphs[0]
    graph = meta_graph.object_graph_def
    if not graph.nodes:
        raise CorruptSavedModelError(where, "the object graph is empty")
    node_count = len(graph.nodes)
    library = {function.signature.name for function in meta_graph.graph_def.library.function}

    for node_id, node in enumerate(graph.nodes):
        for child in node.children:
            if not 0 <= child.node_id < node_count:
                raise CorruptSavedModelError(
                    where,
                    f"object {node_id} has a child '{child.local_name}' with id "
                    f"{child.node_id}, outside the {node_count} objects",
                )
        kind = node.WhichOneof("kind")
        names: list[str] = []
        if kind == "function":
            names = list(node.function.concrete_functions)
        elif kind == "bare_concrete_function":
            names = [node.bare_concrete_function.concrete_function_name]
        for name in names:
            if name not in graph.concrete_functions:
                raise CorruptSavedModelError(
                    where, f"object {node_id} names an unknown concrete function '{name}'"
                )
    for name in graph.concrete_functions:
        if name not in library:
            raise CorruptSavedModelError(
                where, f"concrete function '{name}' is missing from the function library"
            )
    graph_nodes = {node.name for node in meta_graph.graph_def.node}
    for key, signature in meta_graph.signature_def.items():
        for tensor in [*signature.inputs.values(), *signature.outputs.values()]:
            node_name = tensor.name.split(":", 1)[0]
            if tensor.name and node_name not in graph_nodes:
                raise CorruptSavedModelError(
                    where, f"signature '{key}' refers to a missing tensor '{tensor.name}'"
                )


# ---------------------------------------------------------------------------------------
# variables/
# ---------------------------------------------------------------------------------------


def _variable_nodes(saved_model: saved_model_pb2.SavedModel) -> dict[int, object]:
    graph = saved_model.meta_graphs[0].object_graph_def
    return {
        node_id: node.variable
        for node_id, node in enumerate(graph.nodes)
        if node.WhichOneof("kind") == "variable"
    }


def _check_variables(
    path: str, saved_model: saved_model_pb2.SavedModel, *, read_tensors: bool
) -> None:
    variables_dir = os.path.join(path, VARIABLES_DIRECTORY)
    prefix = os.path.join(variables_dir, VARIABLES_PREFIX)
    index_path = prefix + ".index"
    variables = _variable_nodes(saved_model)
    if not os.path.isfile(index_path):
        if variables:
            raise CorruptSavedModelError(
                index_path,
                f"missing, but the SavedModel declares {len(variables)} variable(s)",
            )
        return  # A SavedModel without variables needs no checkpoint.

    _check_shards(prefix)
    _check_index_hash(path, index_path)
    checkpoint_index.check_entries(index_path)  # what TensorFlow's reader would abort on
    reader = _corrupt(
        index_path, "unreadable checkpoint index", lambda: tf.train.load_checkpoint(prefix)
    )
    shapes = _corrupt(index_path, "unreadable checkpoint index", reader.get_variable_to_shape_map)
    dtypes = _corrupt(index_path, "unreadable checkpoint index", reader.get_variable_to_dtype_map)
    if read_tensors:
        for key in sorted(shapes):
            _corrupt(
                prefix + ".data",
                f"variable '{key}' does not read back",
                lambda key=key: reader.get_tensor(key),
            )
    _check_checkpoint_matches(index_path, reader, shapes, dtypes, variables)


def _variables_verified(path: str, verified: frozenset[str]) -> bool:
    """Whether the manifest check covered every file of ``variables/`` (then reading each
    tensor for its CRC would check the same bytes again)."""
    variables_dir = os.path.join(path, VARIABLES_DIRECTORY)
    if not os.path.isdir(variables_dir):
        return False
    names = [f"{VARIABLES_DIRECTORY}/{name}" for name in os.listdir(variables_dir)]
    return bool(names) and all(name in verified for name in names)


def _check_shards(prefix: str) -> None:
    """Every data shard ``variables.data-IIIII-of-NNNNN`` for I < N must be present."""
    directory, base = os.path.split(prefix)
    found: dict[int, set[int]] = {}
    for name in os.listdir(directory):
        if name.startswith(base):
            match = _SHARD.search(name[len(base) :])
            if match:
                found.setdefault(int(match["count"]), set()).add(int(match["index"]))
    if not found:
        raise CorruptSavedModelError(
            directory, f"no data shard {base}.data-*-of-* beside the index"
        )
    for count, indices in found.items():
        missing = sorted(set(range(count)) - indices)
        if missing:
            names = ", ".join(f"{base}.data-{i:05d}-of-{count:05d}" for i in missing)
            raise CorruptSavedModelError(directory, f"missing data shard(s): {names}")


def _fingerprint64(data: bytes) -> int:
    """TensorFlow's Fingerprint64 (farmhash) of ``data``, via the public ``tf.fingerprint``."""
    digest = tf.fingerprint(tf.constant([data])).numpy()[0]
    return int.from_bytes(bytes(digest), "little")


def _check_index_hash(path: str, index_path: str) -> None:
    """Compare the index file with ``fingerprint.pb``'s ``checkpoint_hash``, when there."""
    if not os.path.isfile(os.path.join(path, FINGERPRINT_FILENAME)):
        return
    fingerprint = _corrupt(
        os.path.join(path, FINGERPRINT_FILENAME),
        "unreadable fingerprint",
        lambda: tf.saved_model.experimental.read_fingerprint(path),
    )
    expected = fingerprint.checkpoint_hash
    if not expected:
        return  # Written without a checkpoint hash.
    with open(index_path, "rb") as file:
        actual = _fingerprint64(file.read())
    if actual != expected:
        raise CorruptSavedModelError(
            index_path,
            f"its hash {actual} differs from the checkpoint_hash {expected} recorded in "
            f"{FINGERPRINT_FILENAME} (altered or replaced)",
        )


def _check_checkpoint_matches(index_path, reader, shapes, dtypes, variables) -> None:
    """Each SavedModel variable must be in the checkpoint, with the same dtype and shape.

    The checkpoint's object graph numbers its objects like the SavedModel's object graph,
    so object ``i`` of one is object ``i`` of the other.
    """
    if not variables:
        return
    if OBJECT_GRAPH_KEY not in shapes:
        raise CorruptSavedModelError(index_path, "the checkpoint has no object graph")
    object_graph = trackable_object_graph_pb2.TrackableObjectGraph()
    _corrupt(
        index_path,
        "unreadable checkpoint object graph",
        lambda: object_graph.ParseFromString(reader.get_tensor(OBJECT_GRAPH_KEY)),
    )
    for node_id, variable in sorted(variables.items()):
        label = f"variable '{variable.name}' (object {node_id})"
        if node_id >= len(object_graph.nodes):
            raise CorruptSavedModelError(index_path, f"{label} is not in the checkpoint")
        keys = [
            attribute.checkpoint_key
            for attribute in object_graph.nodes[node_id].attributes
            if attribute.name == VARIABLE_VALUE_ATTRIBUTE
        ]
        if not keys or keys[0] not in shapes:
            raise CorruptSavedModelError(index_path, f"{label} has no value in the checkpoint")
        key = keys[0]
        saved_shape = tf.TensorShape(variable.shape)
        saved_dtype = tf.dtypes.as_dtype(variable.dtype)
        if dtypes[key] != saved_dtype or not saved_shape.is_compatible_with(shapes[key]):
            raise CorruptSavedModelError(
                index_path,
                f"{label} is {saved_dtype.name}{saved_shape.as_list()} in the SavedModel but "
                f"{dtypes[key].name}{list(shapes[key])} in the checkpoint "
                "(variables from another model?)",
            )


# ---------------------------------------------------------------------------------------
# keras_metadata.pb
# ---------------------------------------------------------------------------------------


def _read_keras_metadata(path: str, saved_model) -> list[MetadataNode] | None:
    metadata_path = os.path.join(path, METADATA_FILENAME)
    if not os.path.isfile(metadata_path):
        return None
    nodes = read_metadata(path)
    node_count = len(saved_model.meta_graphs[0].object_graph_def.nodes)
    for node in nodes:
        if not 0 <= node.node_id < node_count:
            raise MetadataError(
                metadata_path,
                f"node {node.node_id} ('{node.node_path}') is outside the "
                f"{node_count} objects of the SavedModel",
            )
    return nodes
