"""Check the checkpoint index's entries for what TensorFlow's reader aborts the process on.

``tf.train.load_checkpoint`` parses each entry and builds its shape without checking either,
and makes a tensor of the entry's dtype when reading it: a value that is no
``BundleEntryProto``, a negative dimension, an element count past int64, more dimensions
than a tensor can have, a dtype with no tensors (0, an unknown number, a reference type),
or one slice of a key listed twice end the process with a CHECK failure instead of an
exception.
:func:`check_entries` reads the index (a LevelDB-format table of ``BundleEntryProto``
values) in Python first and refuses those entries with an error naming the file. A table
it cannot make sense of is left to TensorFlow's reader, which reports it.
"""

from __future__ import annotations

import os
import struct

from google.protobuf import message
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import tensor_bundle_pb2

from reference_impl.errors import CorruptSavedModelError

__all__ = ["check_entries"]

_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_MAX_DIMS = 254  # TensorShape's limit
_DTYPES = frozenset(n for n in types_pb2.DataType.values() if 0 < n < 100)  # no _REF types


class _Unreadable(Exception):
    pass


def check_entries(index_path: str | os.PathLike[str]) -> None:
    """Raise :class:`CorruptSavedModelError` naming ``index_path`` for an entry whose shape
    or dtype TensorFlow's checkpoint reader would abort on."""
    with open(index_path, "rb") as file:
        data = file.read()
    try:
        entries = _entries(data)
    except _Unreadable:
        return
    slices: set[tuple[bytes, tuple[tuple[int, int], ...]]] = set()
    for i, (key, value) in enumerate(entries):
        if i == 0 and not key:
            continue  # the BundleHeaderProto
        # The reader takes the first entry in file order for the header and parses every
        # other one as a tensor's, an empty key out of place included.
        name = key.decode("utf-8", "replace")
        entry = tensor_bundle_pb2.BundleEntryProto()
        try:
            entry.ParseFromString(value)
        except message.DecodeError:
            problem = "its value is no BundleEntryProto"
        else:
            problem = _problem(entry)
        for piece in entry.slices:
            # The reader CHECKs that no slice of a key comes twice (in one entry or in two
            # entries of the same key).
            extents = tuple(
                (e.start, e.length if e.HasField("length") else -1) for e in piece.extent
            )
            if (key, extents) in slices:
                problem = problem or f"its slice {list(extents)} comes twice"
            slices.add((key, extents))
        if problem:
            raise CorruptSavedModelError(index_path, f"checkpoint entry '{name}': {problem}")


def _problem(entry: tensor_bundle_pb2.BundleEntryProto) -> str | None:
    dims = [d.size for d in entry.shape.dim]
    if len(dims) > _MAX_DIMS:
        return f"{len(dims)} dimensions, more than a tensor's {_MAX_DIMS}"
    if any(d < 0 for d in dims):
        return f"a negative dimension in its shape {dims}"
    elements = 1
    for d in dims:
        elements *= d
    if elements >= 2**63:
        return f"its shape {dims} has more elements than int64 counts"
    if entry.dtype not in _DTYPES:
        return f"dtype {entry.dtype} is no tensor dtype"
    return None


def _varint(data: bytes, at: int) -> tuple[int, int]:
    n = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        n |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return n, at
    raise _Unreadable


def _block(data: bytes, handle: bytes, at: int) -> tuple[bytes, int]:
    offset, at = _varint(handle, at)
    size, at = _varint(handle, at)
    if offset + size + 5 > len(data) or data[offset + size] != 0:  # 0: not compressed
        raise _Unreadable
    return data[offset : offset + size], at


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise _Unreadable
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * restarts
    entries: list[tuple[bytes, bytes]] = []
    at, last = 0, b""
    while 0 <= at < end:
        shared, at = _varint(block, at)
        unshared, at = _varint(block, at)
        size, at = _varint(block, at)
        if shared > len(last) or at + unshared + size > end:
            raise _Unreadable
        last = last[:shared] + block[at : at + unshared]
        entries.append((last, block[at + unshared : at + unshared + size]))
        at += unshared + size
    return entries


def _entries(data: bytes) -> list[tuple[bytes, bytes]]:
    if len(data) < _FOOTER_SIZE or struct.unpack_from("<Q", data, len(data) - 8)[0] != _MAGIC:
        raise _Unreadable
    footer = data[-_FOOTER_SIZE:]
    _, at = _block(data, footer, 0)  # the metaindex, unused
    index, _ = _block(data, footer, at)
    entries = []
    for _, handle in _block_entries(index):
        block, _ = _block(data, handle, 0)
        entries.extend(_block_entries(block))
    return entries
