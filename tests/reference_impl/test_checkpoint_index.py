"""check_entries refuses the index entries TensorFlow's checkpoint reader aborts on (found by
LOAD-HOSTILE's index mutations), and lets every other entry through to TensorFlow."""

import pytest
import tensorflow as tf
from tensorflow.core.protobuf import tensor_bundle_pb2

from conformance.savedmodel import bundle
from reference_impl.checkpoint_index import check_entries
from reference_impl.errors import CorruptSavedModelError

KERNEL = b"kernel/.ATTRIBUTES/VARIABLE_VALUE"


def _dims(*sizes):
    def change(entry):
        del entry.shape.dim[:]
        for size in sizes:
            entry.shape.dim.add(size=size)

    return change


def _dtype(n):
    def change(entry):
        entry.dtype = n

    return change


def _slices(*extents):
    """One single-extent slice per ``(start, length)``."""

    def change(entry):
        for start, length in extents:
            entry.slices.add().extent.add(start=start, length=length)

    return change


@pytest.fixture
def index(tmp_path):
    prefix = str(tmp_path / "variables")
    tf.train.Checkpoint(kernel=tf.Variable([[1.0, 2.0]])).write(prefix)
    return tmp_path / "variables.index"


def _rewrite(index, change):
    entries = bundle.read_table(index.read_bytes())
    for i, (key, value) in enumerate(entries):
        if key == KERNEL:
            if isinstance(change, bytes):
                entries[i] = (key, change)
            else:
                entry = tensor_bundle_pb2.BundleEntryProto.FromString(value)
                change(entry)
                entries[i] = (key, entry.SerializeToString())
    index.write_bytes(bundle.write_table(entries))


@pytest.mark.parametrize("change, cause", [
    (b"\xff", "no BundleEntryProto"),
    (_dims(1, -1), "negative dimension"),
    (_dims(2**62, 2), "more elements than int64"),
    (_dims(*[1] * 255), "255 dimensions"),
    (_dtype(0), "dtype 0"),
    (_dtype(999), "dtype 999"),
    (_dtype(101), "dtype 101"),  # DT_FLOAT_REF
    (_slices((0, 1), (0, 1)), "comes twice"),
])
def test_an_entry_tensorflow_aborts_on_is_refused(index, change, cause):
    _rewrite(index, change)
    with pytest.raises(CorruptSavedModelError, match=cause) as raised:
        check_entries(index)
    assert str(index) in str(raised.value) and "kernel/.ATTRIBUTES" in str(raised.value)


@pytest.mark.parametrize("change", [
    None, _dims(*[1] * 254), _dims(2**62, 1), _dims(0), _dtype(3), _dtype(21),
    _slices((0, 1), (1, 1)),
])
def test_other_entries_are_left_to_tensorflow(index, change):
    if change is not None:
        _rewrite(index, change)
    check_entries(index)


def test_a_garbled_header_out_of_place_is_refused(index):
    """Found by LOAD-HOSTILE: entries reversed, then the header's value garbled. The reader
    takes the first entry for the header and parses the real one, last, as a tensor's."""
    entries = bundle.read_table(index.read_bytes())
    entries = [(key, b"\x08\x80" if not key else value) for key, value in reversed(entries)]
    index.write_bytes(bundle.write_table(entries))
    with pytest.raises(CorruptSavedModelError, match="checkpoint entry '': its value is no"):
        check_entries(index)


def test_a_table_it_cannot_read_is_left_to_tensorflow(index):
    index.write_bytes(index.read_bytes()[:-1])
    check_entries(index)
