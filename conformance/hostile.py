"""Hostile saved models: structure-aware mutations as plain data, and a guarded loader.

A mutation is a :class:`Mutation` record (what to change, where, by index): Hypothesis draws
lists of them (``mutation_lists``), so a failing list shrinks to a minimal one, and
``apply`` makes the mutated copy of a saved model directory. Indices are taken modulo what
the file holds, so any record applies to any model. Hostile payloads (Lambda bytecode,
pickles, module tricks) try to create a sentinel file: it must never appear.

``Worker`` loads files one at a time in a long-lived child process (TensorFlow imported
once) under a memory limit and a wall timeout, and is replaced after a crash, hang or
memory kill. ``OUTCOMES`` are the classes a load ends in; only ``PASSING`` ones pass.
"""

from __future__ import annotations

import base64
import json
import marshal
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass

from hypothesis import strategies as st

from conformance.savedmodel import bundle

OUTCOMES = (
    "model",  # loaded
    "clean-error",  # an exception of the implementation's error family naming the path
    "other-exception",  # not of the family, or not naming the path
    "crash",  # the process died of a signal or exited
    "hang",  # past the wall timeout
    "out-of-memory",  # MemoryError under the limit, or killed for memory
    "sentinel",  # a payload's code ran: the sentinel file appeared
)
PASSING = ("model", "clean-error")
SENTINEL_TOKEN = "{SENTINEL}"

SAVED_MODEL = "saved_model.pb"
METADATA = "keras_metadata.pb"
INDEX = "variables/variables.index"
DATA = "variables/variables.data-00000-of-00001"
MANIFEST = "checksums.sha256"
FILES = (SAVED_MODEL, METADATA, INDEX, DATA, "fingerprint.pb")


@dataclass(frozen=True)
class Mutation:
    """One change: ``op`` on ``file``, with small integer/choice ``args`` (indices are taken
    modulo what the file holds when applied)."""

    op: str
    file: str
    args: tuple = ()

    def __repr__(self):
        args = "".join(f", {a!r}" for a in self.args)
        return f"{self.op}({self.file!r}{args})"


# -- values the mutations put in -------------------------------------------------------------

INTS = (-1, 0, 1, 2, 7, 2**31 - 1, 2**31, 2**32 + 1, 2**63 - 1, -(2**63), 10**6)
STRINGS = (
    "", "x" * 10000, "../../../../etc/passwd", "/dev/zero", "\x00", "\udcff".encode(
        "utf-8", "surrogatepass"
    ).decode("latin-1"), "os.system", "__import__", "builtins>eval",
)


# Encoded payloads (bytecode, pickles) are built with the sentinel's real path: a text
# substitution cannot reach inside base64.


def _sentinel_code(sentinel):
    """Bytecode of a function that creates the sentinel (marshalled, as Lambda saves it)."""
    source = f"lambda *a, **k: (open({sentinel!r}, 'w').close(), a[0] if a else None)[1]"
    return compile(source, "<hostile>", "eval").co_consts[0]


class _Opener:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (open, (self.sentinel, "w"))


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _lambda_keras2(sentinel):
    code = _b64(marshal.dumps(_sentinel_code(sentinel)))
    return {
        "class_name": "Lambda",
        "config": {
            "name": "lambda", "trainable": True, "dtype": "float32",
            "function": [code, None, None], "function_type": "lambda",
            "module": "__main__", "output_shape": None, "output_shape_type": "raw",
            "arguments": {},
        },
    }


def _lambda_keras3(sentinel):
    code = _b64(marshal.dumps(_sentinel_code(sentinel)))
    return {
        "module": "keras.layers", "class_name": "Lambda", "registered_name": None,
        "config": {
            "name": "lambda", "trainable": True, "dtype": "float32",
            "function": {"class_name": "__lambda__", "config": {
                "code": code, "defaults": None, "closure": None}},
            "arguments": {},
        },
    }


# JSON values a metadata mutation puts at a site. ``{"__deep__": n}`` is spliced in as text
# (a nesting Python's json module cannot even build as an object).
JSON_VALUES = (
    None, True, -1, 0, 2**64, 10**400, 1e308, "", "x" * 100000, [], {}, [1, 2, 3],
    {"__deep__": 100000},
    {"class_name": "NoSuchLayer", "config": {}},
    {"module": "os", "class_name": "system", "config": {"command": "touch " + SENTINEL_TOKEN}},
    {"module": "builtins", "class_name": "eval", "registered_name": "builtins>eval",
     "config": {}},
    {"module": "subprocess", "class_name": "Popen", "registered_name": "subprocess>Popen",
     "config": {"args": ["touch", SENTINEL_TOKEN]}},
    {"class_name": "__main__.Evil", "registered_name": "../../Evil", "config": {}},
    "LAMBDA-KERAS2",
    "LAMBDA-KERAS3",
    {"class_name": "__lambda__", "config": {"code": "PICKLE", "defaults": None}},
    "PICKLE",
    {"vocabulary": "../../../" + SENTINEL_TOKEN, "filepath": "../../assets/../../x"},
)


def _pickled(sentinel):
    return _b64(pickle.dumps(_Opener(sentinel)))


def _payload(value, sentinel):
    """``value`` from ``JSON_VALUES`` with its encoded payload built for ``sentinel``."""
    if value == "PICKLE":
        return _pickled(sentinel)
    if value == "LAMBDA-KERAS2":
        return _lambda_keras2(sentinel)
    if value == "LAMBDA-KERAS3":
        return _lambda_keras3(sentinel)
    if isinstance(value, dict) and value.get("config", {}).get("code") == "PICKLE":
        return {**value, "config": {**value["config"], "code": _pickled(sentinel)}}
    return value


# -- the strategy ---------------------------------------------------------------------------

_fraction = st.integers(0, 99)
_site = st.integers(0, 2**16)


def _mutation():
    any_file = st.sampled_from(FILES)
    return st.one_of(
        st.builds(Mutation, st.just("proto"), st.just(SAVED_MODEL), st.tuples(
            st.sampled_from(("set", "delete", "duplicate")), _site, st.integers(0, 40)
        )),
        st.builds(Mutation, st.just("proto"), st.just(METADATA), st.tuples(
            st.sampled_from(("set", "delete", "duplicate")), _site, st.integers(0, 40)
        )),
        st.builds(Mutation, st.just("json"), st.just(METADATA), st.tuples(
            st.integers(0, 64), _site, st.integers(0, len(JSON_VALUES) - 1)
        )),
        # Two draws of the index's (one an entry's field, one the header or the entries):
        # TensorFlow's checkpoint reader is where the crashes were.
        st.builds(Mutation, st.just("index"), st.just(INDEX), st.tuples(
            st.sampled_from(INDEX_CHANGES[:7]), _site, st.integers(0, 40)
        )),
        st.builds(Mutation, st.just("index"), st.just(INDEX), st.tuples(
            st.sampled_from(INDEX_CHANGES[7:]), _site, st.integers(0, 40)
        )),
        st.builds(Mutation, st.just("truncate"), any_file, st.tuples(_fraction)),
        st.builds(Mutation, st.just("flip"), any_file, st.tuples(_fraction, st.integers(0, 7))),
        st.builds(Mutation, st.just("remove"), any_file),
        st.builds(Mutation, st.just("empty"), any_file),
        st.builds(Mutation, st.just("symlink"), any_file, st.tuples(
            st.sampled_from(("outside-copy", "/dev/zero", "dangling", "directory"))
        )),
        st.builds(Mutation, st.just("symlink"), st.just("variables"), st.tuples(
            st.sampled_from(("outside-copy", "dangling"))
        )),
        st.just(Mutation("keep", MANIFEST)),
        st.builds(Mutation, st.just("extra"), st.sampled_from((
            "saved_model.pbtxt", "variables/variables.data-00001-of-00002",
            "assets/evil.py", "keras_metadata.pb.tmp", "variables/checkpoint",
        ))),
    )


def mutation_lists():
    """Strategy: one to three mutations, applied in order."""
    return st.lists(_mutation(), min_size=1, max_size=3)


# -- applying mutations ----------------------------------------------------------------------


def apply(mutations, source, target, sentinel, outside):
    """Copy ``source`` to ``target`` and apply ``mutations``; return what each one did.

    ``outside`` is a scratch directory outside ``target`` that symlinks may point into.
    """
    shutil.copytree(source, target, symlinks=True)
    # Without the reference's checksum manifest, as tf_keras writes: the mutations reach the
    # parsers. A ``keep`` of the manifest leaves it (then stale) for its own reader.
    manifest = os.path.join(target, MANIFEST)
    if os.path.exists(manifest) and Mutation("keep", MANIFEST) not in mutations:
        os.remove(manifest)
    done = []
    for mutation in mutations:
        if mutation.op == "keep":
            done.append(f"kept {mutation.file}")
            continue
        try:
            done.append(_apply_one(mutation, target, sentinel, outside))
        except (_NotApplicable, OSError) as exc:
            done.append(f"{mutation!r}: nothing to do ({exc})")
    return done


class _NotApplicable(Exception):
    pass


def _apply_one(m, root, sentinel, outside):
    path = os.path.join(root, m.file)
    if m.op == "extra":
        if os.path.lexists(path):
            raise _NotApplicable(f"{m.file} exists")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"\n\x04evil" + sentinel.encode())
        return f"added {m.file}"
    if not os.path.lexists(path):
        raise _NotApplicable(f"no {m.file}")
    if m.op == "symlink":
        return _symlink(path, m.args[0], outside)
    if os.path.islink(path) or os.path.isdir(path):
        raise _NotApplicable(f"{m.file} is a link or a directory")
    with open(path, "rb") as f:
        data = f.read()
    if m.op == "remove":
        os.remove(path)
        return f"removed {m.file}"
    if m.op == "empty":
        data, what = b"", f"emptied {m.file}"
    elif m.op == "truncate":
        keep = len(data) * m.args[0] // 100
        data, what = data[:keep], f"truncated {m.file} to {keep} of {len(data)} bytes"
    elif m.op == "flip":
        if not data:
            raise _NotApplicable("empty file")
        at = len(data) * m.args[0] // 100
        data = data[:at] + bytes([data[at] ^ (1 << m.args[1])]) + data[at + 1:]
        what = f"flipped bit {m.args[1]} of byte {at} of {m.file}"
    elif m.op == "proto":
        data, what = _mutate_proto(m.file, data, *m.args)
    elif m.op == "json":
        data, what = _mutate_json(data, *m.args, sentinel=sentinel)
    elif m.op == "index":
        data, what = _mutate_index(data, root, *m.args)
    else:
        raise ValueError(m.op)
    with open(path, "wb") as f:
        f.write(data.replace(SENTINEL_TOKEN.encode(), sentinel.encode()))
    return what


def _symlink(path, where, outside):
    if where == "outside-copy":
        link_to = os.path.join(outside, os.path.basename(path) + "-copy")
        # Never follow a link here: an earlier mutation may point this one at /dev/zero.
        if os.path.lexists(link_to):
            pass
        elif os.path.islink(path):
            os.symlink(os.readlink(path), link_to)
        elif os.path.isdir(path):
            shutil.copytree(path, link_to, symlinks=True)
        else:
            shutil.copyfile(path, link_to)
    elif where == "/dev/zero":
        link_to = "/dev/zero"
    elif where == "dangling":
        link_to = os.path.join(outside, "nothing-here")
    else:
        link_to = outside
    (shutil.rmtree if os.path.isdir(path) and not os.path.islink(path) else os.remove)(path)
    os.symlink(link_to, path)
    return f"replaced {os.path.basename(path)} by a symlink to {link_to}"


def _message_class(file):
    if file == SAVED_MODEL:
        from tensorflow.core.protobuf import saved_model_pb2

        return saved_model_pb2.SavedModel
    from reference_impl.metadata import SavedMetadata

    return SavedMetadata


def _repeated(field):
    flag = getattr(field, "is_repeated", None)  # protobuf 6 dropped ``label``
    return flag if flag is not None else field.label == field.LABEL_REPEATED


def _sites(message, prefix=""):
    """Every (message, field, index, name) in ``message``, depth first."""
    for field, value in message.ListFields():
        name = f"{prefix}{field.name}"
        if _repeated(field):
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                continue  # maps: reached through their values' own messages is enough
            for i, item in enumerate(value):
                yield message, field, i, f"{name}[{i}]"
                if field.message_type is not None:
                    yield from _sites(item, f"{name}[{i}].")
        else:
            yield message, field, None, name
            if field.message_type is not None:
                yield from _sites(value, f"{name}.")


def _mutate_proto(file, data, how, site, value):
    proto = _message_class(file)()
    try:
        proto.ParseFromString(data)
    except Exception as exc:
        raise _NotApplicable(f"{file} does not parse") from exc
    sites = list(_sites(proto))
    if not sites:
        raise _NotApplicable("no fields")
    parent, field, index, name = sites[site % len(sites)]
    container = getattr(parent, field.name)
    if how == "delete" or field.message_type is not None and index is None:
        if index is None:
            parent.ClearField(field.name)
        else:
            del container[index]
        what = f"deleted {name}"
    elif how == "duplicate" and index is not None or field.message_type is not None:
        if field.message_type is not None:
            container.add().CopyFrom(container[index])
        else:
            container.append(container[index])
        what = f"duplicated {name}"
    else:
        new = _scalar(field, value)
        if index is None:
            setattr(parent, field.name, new)
        else:
            container[index] = new
        what = f"set {name} = {new!r:.60}"
    return proto.SerializeToString(), f"{file}: {what}"


def _scalar(field, value):
    t = field.type
    if t in (field.TYPE_STRING,):
        return STRINGS[value % len(STRINGS)]
    if t == field.TYPE_BYTES:
        return STRINGS[value % len(STRINGS)].encode("utf-8", "surrogatepass")
    if t == field.TYPE_BOOL:
        return bool(value % 2)
    if t in (field.TYPE_FLOAT, field.TYPE_DOUBLE):
        return (float("nan"), float("inf"), -1.0, 1e38)[value % 4]
    number = INTS[value % len(INTS)]
    if t in (field.TYPE_UINT32, field.TYPE_FIXED32):
        return number % 2**32
    if t in (field.TYPE_UINT64, field.TYPE_FIXED64):
        return number % 2**64
    if t in (field.TYPE_INT32, field.TYPE_SINT32, field.TYPE_SFIXED32, field.TYPE_ENUM):
        return (number + 2**31) % 2**32 - 2**31
    return (number + 2**63) % 2**64 - 2**63


def _json_sites(value, path=()):
    yield path
    if isinstance(value, dict):
        for key in value:
            yield from _json_sites(value[key], (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_sites(item, (*path, i))


def _at(value, path):
    for key in path:
        value = value[key]
    return value


def _mutate_json(data, node, site, value, sentinel):
    proto = _message_class(METADATA)()
    try:
        proto.ParseFromString(data)
    except Exception as exc:
        raise _NotApplicable("keras_metadata.pb does not parse") from exc
    if not proto.nodes:
        raise _NotApplicable("no nodes")
    entry = proto.nodes[node % len(proto.nodes)]
    try:
        decoded = json.loads(entry.metadata)
    except (ValueError, RecursionError) as exc:
        raise _NotApplicable("the node's JSON does not parse") from exc
    paths = list(_json_sites(decoded))
    where = paths[site % len(paths)]
    new = _payload(JSON_VALUES[value], sentinel)
    deep = isinstance(new, dict) and "__deep__" in new
    old_value = _at(decoded, where)
    if isinstance(new, dict) and "class_name" in new and isinstance(old_value, dict):
        # A class put over a layer keeps the layer's place: its name and graph links, so
        # that a loader reaches the class itself.
        config = dict(new.get("config", {}))
        if isinstance(old_value.get("config"), dict) and "name" in old_value["config"]:
            config["name"] = old_value["config"]["name"]
        new = {**old_value, **new, "config": config}
    placeholder = "__HOSTILE_DEEP__"
    if not where:
        decoded = placeholder if deep else new
    else:
        holder = decoded
        for key in where[:-1]:
            holder = holder[key]
        holder[where[-1]] = placeholder if deep else new
    text = json.dumps(decoded, allow_nan=True)
    if deep:
        n = new["__deep__"]
        text = text.replace(json.dumps(placeholder), "[" * n + "]" * n)
    entry.metadata = text.replace(SENTINEL_TOKEN, sentinel)
    shown = f"{new!r:.60}" if not deep else f"{new['__deep__']} nested lists"
    return proto.SerializeToString(), (
        f"node {entry.node_id} ('{entry.node_path}') JSON at {list(where)} = {shown}"
    )


# -- the checkpoint index: its entries changed, written back as a valid table -----------------

# How an index mutation changes the TensorBundle's entries (conformance.savedmodel.bundle):
# one field of one entry (the first seven), the header, or the entries themselves.
INDEX_CHANGES = (
    "dtype", "shape", "offset", "size", "shard_id", "crc32c", "slices",
    "header", "delete", "duplicate", "swap", "key", "garbage", "reorder",
)
# DataType numbers: invalid, the common ones, resource, variant, a _REF type, unknown, -1.
DTYPES = (0, 1, 2, 3, 4, 7, 9, 10, 14, 19, 20, 21, 23, 29, 101, 120, 999, -1)
SHAPES = (
    ("dim", -1), ("dim", -2), ("dim", 0), ("dim", 2), ("dim", 2**31), ("dim", 2**62),
    ("dim", 2**63 - 1), ("add", 1), ("add", 2**40), ("drop", None), ("unknown_rank", None),
    ("overflow", 2**32), ("rank", 255),  # elements past int64; past TensorShape's 254 dims
)
HEADER = (
    ("num_shards", 0), ("num_shards", 2), ("num_shards", -1), ("num_shards", 2**31 - 1),
    ("endianness", 1), ("endianness", 2), ("endianness", -1), ("producer", 2**31 - 1),
    ("min_consumer", 2**31 - 1), ("min_consumer", 2), ("bad_consumers", 1), ("clear", None),
)
SHARD_IDS = (1, 2, -1, 2**31 - 1)
# Slice extents (start, length) that make an entry a partitioned variable's.
SLICES = (((0, 1),), ((0, -1),), ((-1, 2),), ((2**62, 2**62),), ((0, 1), (0, 1), (0, 1)))
# Values that are no BundleEntryProto: empty, a truncated varint, a 2 GiB length.
GARBAGE = (b"", b"\xff", b"\x08\x80", b"\x22\xff\xff\xff\xff\x07", b"\x0a\x04evil" * 1000)
KEYS = (b"\xff\xfe", b"\x00", b"k" * 65536, b"../../variables/x", b"_CHECKPOINTABLE_OBJECT_GRAPH")


def _bundle_messages():
    from tensorflow.core.protobuf import tensor_bundle_pb2

    return tensor_bundle_pb2.BundleEntryProto, tensor_bundle_pb2.BundleHeaderProto


def _parsed(entries, parser, header):
    """The positions and messages of the header's entry or the tensors' that parse."""
    found = []
    for i, (key, value) in enumerate(entries):
        if (key == bundle.HEADER_KEY) != header:
            continue
        try:
            found.append((i, parser.FromString(value)))
        except Exception:  # an earlier mutation's garbage: not an entry to change
            continue
    return found


def _mutate_index(data, root, change, site, value):
    try:
        entries = bundle.read_table(data)
    except bundle.TableError as exc:
        raise _NotApplicable(f"the index is no table: {exc}") from exc
    if not entries:
        raise _NotApplicable("an empty index")
    entry_class, header_class = _bundle_messages()
    data_path = os.path.join(root, DATA)
    data_size = os.path.getsize(data_path) if os.path.isfile(data_path) else 0
    if change in ("delete", "duplicate", "swap", "key", "garbage", "reorder"):
        what = _change_entries(entries, site % len(entries), change, value)
    else:
        header = change == "header"
        parsed = _parsed(entries, header_class if header else entry_class, header)
        if not parsed:
            raise _NotApplicable(f"no entry to change the {change} of")
        at, entry = parsed[site % len(parsed)]
        key = entries[at][0]
        what = _change_entry(entry, change, value, data_size)
        entries[at] = (key, entry.SerializeToString())
        what = f"{what} of {key.decode('latin-1')[:60]!r}"
    data = bundle.write_table(entries)
    return data, f"variables.index: {what}{_rehash_fingerprint(root, data)}"


def _change_entries(entries, at, change, value):
    key = entries[at][0].decode("latin-1")[:60]
    if change == "delete":
        del entries[at]
        return f"deleted entry {key!r}"
    if change == "duplicate":
        entries.insert(at + 1, entries[at])
        return f"duplicated entry {key!r}"
    if change == "swap":
        if len(entries) < 2:
            raise _NotApplicable("one entry: nothing to swap it with")
        other = (at + 1 + value % (len(entries) - 1)) % len(entries)
        (k1, v1), (k2, v2) = entries[at], entries[other]
        entries[at], entries[other] = (k1, v2), (k2, v1)
        return f"swapped the values of {key!r} and {k2.decode('latin-1')[:60]!r}"
    if change == "key":
        new = KEYS[value % len(KEYS)]
        entries[at] = (new, entries[at][1])
        return f"renamed entry {key!r} to {new[:20]!r}"
    if change == "garbage":
        new = GARBAGE[value % len(GARBAGE)]
        entries[at] = (entries[at][0], new)
        return f"replaced the value of {key!r} by {new[:12]!r} ({len(new)} bytes)"
    entries.reverse()  # keys out of order: the header last
    return "reversed the entries' order"


def _change_entry(entry, change, value, data_size):
    if change == "header":
        field, new = HEADER[value % len(HEADER)]
        if field == "clear":
            entry.Clear()
        elif field in ("producer", "min_consumer"):
            setattr(entry.version, field, new)
        elif field == "bad_consumers":
            entry.version.bad_consumers.append(entry.version.producer)
        else:
            setattr(entry, field, new)
        return f"set header {field} = {new}"
    if change == "dtype":
        entry.dtype = DTYPES[value % len(DTYPES)]
        return f"set dtype = {entry.dtype}"
    if change == "shape":
        how, n = SHAPES[value % len(SHAPES)]
        dims = entry.shape.dim
        if how == "unknown_rank":
            entry.shape.unknown_rank = True
        elif how in ("overflow", "rank"):
            for _ in range(2 if how == "overflow" else n):
                dims.add(size=n if how == "overflow" else 1)
        elif how == "drop" and dims:
            del dims[len(dims) - 1]
        elif how == "add" or not dims:
            dims.add(size=n if n is not None else 1)
        else:
            dims[len(dims) - 1].size = n
        return f"shape {how} {n}: now {[d.size for d in dims][:8]}, rank {len(dims)}"
    if change == "offset":
        choices = (data_size, data_size - entry.size + 1, data_size + 1, 2**31, 2**63 - 1,
                   -1, entry.offset + 1)
        entry.offset = choices[value % len(choices)]
        return f"set offset = {entry.offset} (data file {data_size} bytes)"
    if change == "size":
        choices = (0, max(entry.size - 1, 0), entry.size + 1, data_size + 1, 2**31,
                   2**63 - 1, -1)
        entry.size = choices[value % len(choices)]
        return f"set size = {entry.size} (data file {data_size} bytes)"
    if change == "shard_id":
        entry.shard_id = SHARD_IDS[value % len(SHARD_IDS)]
        return f"set shard_id = {entry.shard_id}"
    if change == "crc32c":
        entry.crc32c ^= (1, 0x80000000, entry.crc32c)[value % 3]
        return f"set crc32c = {entry.crc32c}"
    if change == "slices":
        extents = SLICES[value % len(SLICES)]
        times = 1 + value // len(SLICES) % 2  # the same slice twice: a CHECK of the reader
        for _ in range(times):
            piece = entry.slices.add()
            for start, length in extents:
                piece.extent.add(start=start, length=length)
        return f"added the slice {list(extents)} {'twice' if times == 2 else 'once'}"
    raise ValueError(change)


def _rehash_fingerprint(root, index):
    """Record the new index's hash in ``fingerprint.pb``, where it holds one, so that a
    loader checking it reaches the entries (a stale hash is what ``flip`` tries)."""
    path = os.path.join(root, "fingerprint.pb")
    if not os.path.isfile(path) or os.path.islink(path):
        return ""
    from tensorflow.core.protobuf import fingerprint_pb2

    fingerprint = fingerprint_pb2.FingerprintDef()
    try:
        with open(path, "rb") as f:
            fingerprint.ParseFromString(f.read())
    except Exception:
        return ""
    if not fingerprint.checkpoint_hash:
        return ""
    import tensorflow as tf

    digest = tf.fingerprint(tf.constant([index])).numpy()[0]
    fingerprint.checkpoint_hash = int.from_bytes(bytes(digest), "little")
    with open(path, "wb") as f:
        f.write(fingerprint.SerializeToString())
    return " (fingerprint.pb's checkpoint_hash updated)"


# -- the guarded loader ----------------------------------------------------------------------

_WORKER = r"""
import json, os, resource, sys, traceback
from conformance.environment import quiet_tensorflow
quiet_tensorflow()
from conformance.api import resolve_implementation
impl = resolve_implementation(sys.argv[1])
family = tuple(getattr(impl, "load_errors", None) or (Exception,))
memory = int(sys.argv[2])
limited = False
out = os.fdopen(int(sys.argv[3]), "w")  # stdout is left to TensorFlow's chatter
out.write("ready\n")
out.flush()
for line in sys.stdin:
    job = json.loads(line)
    if not limited and not job.get("warm"):
        with open("/proc/self/status") as f:
            size = [int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:")][0]
        resource.setrlimit(resource.RLIMIT_AS, (size + memory, size + memory))
        limited = True
    path = job["path"]
    try:
        impl.load(path)
        result = {"outcome": "model"}
    except NotImplementedError:
        result = {"outcome": "no-loader"}
    except MemoryError:
        result = {"outcome": "out-of-memory"}
    except BaseException as exc:
        text = str(exc)
        named = path in text or os.path.basename(path) in text
        clean = isinstance(exc, family) and named
        result = {
            "outcome": "clean-error" if clean else "other-exception",
            "type": f"{type(exc).__module__}.{type(exc).__name__}",
            "message": text[:400],
            "named": named,
            "where": "".join(traceback.format_tb(exc.__traceback__)[-3:])[-1200:],
        }
    out.write(json.dumps(result) + "\n")
    out.flush()
    if result["outcome"] == "out-of-memory":
        sys.exit(3)
"""


class Worker:
    """A child process loading one path at a time with ``impl_spec``'s loader.

    ``load(path)`` returns a dict with ``outcome`` (one of ``OUTCOMES`` or ``no-loader``)
    and details. The child is started again after a crash, hang or memory kill.
    """

    def __init__(self, impl_spec, *, timeout=20.0, memory=3 * 2**30, warm_path=None, env=None):
        self.impl_spec = impl_spec
        self.timeout = timeout
        self.memory = memory
        self.warm_path = warm_path
        self.env = env
        self.proc = None
        self.results = None
        self.restarts = 0

    def _start(self):
        if self.results is not None:  # a dead child's pipe
            self.results.close()
        read, write = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER, self.impl_spec, str(self.memory), str(write)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(write,),
            text=True,
            env=self.env,
            start_new_session=True,
        )
        os.close(write)
        self.results = os.fdopen(read, "r")
        ready, _, _ = select.select([self.results], [], [], 600)
        if not ready or self.results.readline() != "ready\n":
            self._kill()
            raise RuntimeError(f"the loading process for {self.impl_spec!r} did not start")
        if self.warm_path:  # TensorFlow's first load is slow: not counted against the limit
            self._ask({"path": self.warm_path, "warm": True}, timeout=600)

    def _ask(self, job, timeout):
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.results], [], [], timeout)
        if not ready:
            self._kill()
            return {"outcome": "hang", "message": f"no answer within {timeout:.0f} s"}
        line = self.results.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            if code == -signal.SIGKILL:
                return {"outcome": "out-of-memory", "message": "killed (SIGKILL)"}
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
            return {"outcome": "crash", "message": f"the loading process died: {how}"}
        result = json.loads(line)
        if result["outcome"] == "out-of-memory":
            self.proc.wait()
            self.proc = None
        return result

    def load(self, path):
        if self.proc is None:
            self._start()
            self.restarts += 1
        try:
            return self._ask({"path": path}, self.timeout)
        except (BrokenPipeError, OSError) as exc:
            self._kill()
            return {"outcome": "crash", "message": f"the loading process died: {exc}"}

    def _kill(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
            self.proc = None
        if self.results is not None:
            self.results.close()
            self.results = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load_hostile(worker, mutations, source, scratch, sentinel):
    """Apply ``mutations`` to a copy of ``source`` under ``scratch`` and load it with
    ``worker``: ``(path, what was done, result)``; a sentinel that appears makes the
    outcome ``sentinel`` whatever the load returned."""
    index = len(os.listdir(scratch))
    target = os.path.join(scratch, f"m{index:06d}")
    outside = os.path.join(scratch, f"o{index:06d}")
    os.makedirs(outside)
    done = apply(mutations, source, target, sentinel, outside)
    result = worker.load(target)
    if os.path.exists(sentinel):
        os.remove(sentinel)
        result = dict(result, outcome="sentinel", message="a payload's code ran: "
                      f"the sentinel {sentinel} was created ({result.get('outcome')})")
    return target, done, result
