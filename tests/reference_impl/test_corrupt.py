"""Bad input: each way a SavedModel path can be wrong gets its own ``ReferenceImplError``.

The corrupted copies are made here; opening (and, once core's ``reference_impl.load``
exists, loading) them happens in a subprocess, so that a crash or a hang inside TensorFlow
fails the one case cleanly instead of taking pytest down. One subprocess runs all cases
and reports each as a JSON line as soon as it is done; if it dies, the case it was on is
recorded as crashed (or hung) and a new subprocess takes the remaining ones.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

import reference_impl
from reference_impl import integrity, metadata
from tests.reference_impl import _infra_models as infra

# Child: for each case directory on stdin's list, open it (and load it when core's load
# exists) and print what was raised.
_RUNNER = """
import json, sys
import reference_impl
from reference_impl import validate

def outcome(action):
    try:
        action()
    except BaseException as exc:
        return {
            "type": type(exc).__name__,
            "mro": [cls.__name__ for cls in type(exc).__mro__],
            "message": str(exc),
            "path": getattr(exc, "path", None),
            "chained": exc.__cause__ is not None or exc.__context__ is not None,
        }
    return None

for line in sys.stdin:
    case, path, safe_mode = json.loads(line)
    print(json.dumps({"case": case, "started": True}), flush=True)
    result = {"case": case, "open": outcome(lambda: validate.open_saved_model(path))}
    if hasattr(reference_impl, "load"):
        result["load"] = outcome(lambda: reference_impl.load(path, safe_mode=safe_mode))
    print(json.dumps(result), flush=True)
"""

PER_RUN_TIMEOUT = 180


def _run_cases(cases: dict[str, tuple[Path, bool]]) -> dict[str, dict]:
    """Run the cases in subprocesses; a case that crashed or hung its process says so."""
    results: dict[str, dict] = {}
    pending = list(cases)
    while pending:
        stdin = "".join(
            json.dumps([name, str(cases[name][0]), cases[name][1]]) + "\n" for name in pending
        )
        try:
            completed = subprocess.run(
                infra.python_script(_RUNNER),
                input=stdin,
                cwd=infra.REPO_ROOT,
                env=infra.subprocess_env(),
                capture_output=True,
                text=True,
                timeout=PER_RUN_TIMEOUT,
            )
            stdout, stderr, failure = completed.stdout, completed.stderr, "crashed"
        except subprocess.TimeoutExpired as exc:
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            stderr, failure = "", "hung"
        started, progressed = None, False
        for line in stdout.splitlines():
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            progressed = True
            if record.get("started"):
                started = record["case"]
            else:
                results[record["case"]] = record
                started = None
        if not progressed:  # The runner itself failed (an import error, say): no case to blame.
            raise RuntimeError(f"the case runner {failure} before its first case:\n{stderr}")
        pending = [name for name in pending if name not in results]
        if pending:
            culprit = started or pending[0]
            results[culprit] = {"case": culprit, failure: True, "stderr": stderr[-2000:]}
            pending.remove(culprit)
    return results


def _flip_bit(path: Path, position: float, bit: int = 3) -> None:
    data = bytearray(path.read_bytes())
    index = min(int(len(data) * position), len(data) - 1)
    data[index] ^= 1 << bit
    path.write_bytes(bytes(data))


def _truncate(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def _data_shard(model: Path) -> Path:
    (shard,) = (model / "variables").glob("variables.data-*")
    return shard


def _rewrite_metadata_json(model: Path, text: str, *, refresh_manifest: bool) -> None:
    proto = metadata.SavedMetadata()
    proto.ParseFromString((model / "keras_metadata.pb").read_bytes())
    proto.nodes[0].metadata = text
    (model / "keras_metadata.pb").write_bytes(proto.SerializeToString())
    if refresh_manifest:  # as if a writer had produced the bad JSON itself
        integrity.write_manifest(model)


def _tf_keras_model(path: Path, units: int) -> None:
    import tf_keras

    inputs = tf_keras.Input((4,), name="x")
    hidden = tf_keras.layers.Dense(units, name="hidden")(inputs)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2, name="out")(hidden))
    model.save(path, save_format="tf")


# name -> (which model the case starts from: none, ours or foreign; the expected error type)
CASES: dict[str, tuple[str, str]] = {
    "missing_path": ("none", "SavedModelNotFoundError"),
    "empty_directory": ("none", "NotASavedModelError"),
    "random_file": ("none", "NotASavedModelError"),
    "directory_of_random_files": ("none", "NotASavedModelError"),
    "random_bytes_saved_model_pb": ("none", "CorruptSavedModelError"),
    "empty_saved_model_pb": ("none", "CorruptSavedModelError"),
    "ours_truncated_saved_model_pb": ("ours", "CorruptSavedModelError"),
    "ours_flipped_saved_model_pb_start": ("ours", "CorruptSavedModelError"),
    "ours_flipped_saved_model_pb_middle": ("ours", "CorruptSavedModelError"),
    "ours_flipped_saved_model_pb_end": ("ours", "CorruptSavedModelError"),
    "ours_flipped_variables_data": ("ours", "CorruptSavedModelError"),
    "ours_flipped_keras_metadata": ("ours", "CorruptSavedModelError"),
    "ours_missing_variables": ("ours", "CorruptSavedModelError"),
    "ours_invalid_json_metadata": ("ours", "MetadataError"),
    "foreign_truncated_saved_model_pb": ("foreign", "CorruptSavedModelError"),
    "foreign_flipped_variables_data": ("foreign", "CorruptSavedModelError"),
    "foreign_flipped_variables_index": ("foreign", "CorruptSavedModelError"),
    "foreign_truncated_variables_data": ("foreign", "CorruptSavedModelError"),
    "foreign_missing_variables": ("foreign", "CorruptSavedModelError"),
    "foreign_missing_data_shard": ("foreign", "CorruptSavedModelError"),
    "foreign_variables_of_another_model": ("foreign", "CorruptSavedModelError"),
    "foreign_invalid_json_metadata": ("foreign", "MetadataError"),
    "foreign_garbage_metadata": ("foreign", "MetadataError"),
}

# Cases only core's loader can judge (the files themselves are sound).
# None: the load succeeds (an unknown class is revived from the saved graph functions,
# which safe_mode allows: they are not Python code).
LOAD_CASES: dict[str, str | None] = {
    "unknown_class_safe_mode": None,
}


def _make(case: str, root: Path, ours: Path, foreign: Path, other: Path) -> Path:
    """Build the directory (or file) for ``case`` under ``root``; return its path."""
    target = root / case
    source = {"ours": ours, "foreign": foreign}.get(CASES.get(case, ("",))[0])
    if source is not None:
        shutil.copytree(source, target)
    rng = random.Random(case)
    if case == "missing_path":
        pass
    elif case == "empty_directory":
        target.mkdir()
    elif case == "random_file":
        target.write_bytes(rng.randbytes(4096))
    elif case == "directory_of_random_files":
        target.mkdir()
        (target / "model.bin").write_bytes(rng.randbytes(100))
    elif case == "random_bytes_saved_model_pb":
        target.mkdir()
        (target / "saved_model.pb").write_bytes(rng.randbytes(4096))
    elif case == "empty_saved_model_pb":
        target.mkdir()
        (target / "saved_model.pb").write_bytes(b"")
    elif case.endswith("truncated_saved_model_pb"):
        _truncate(target / "saved_model.pb", 0.5)
    elif case.startswith("ours_flipped_saved_model_pb"):
        position = {"start": 0.0, "middle": 0.5, "end": 1.0}[case.rsplit("_", 1)[1]]
        _flip_bit(target / "saved_model.pb", position)
    elif case.endswith("flipped_variables_data"):
        _flip_bit(_data_shard(target), 0.5)
    elif case == "foreign_flipped_variables_index":
        _flip_bit(target / "variables" / "variables.index", 0.3)
    elif case == "foreign_truncated_variables_data":
        _truncate(_data_shard(target), 0.6)
    elif case == "ours_flipped_keras_metadata":
        _flip_bit(target / "keras_metadata.pb", 0.5)
    elif case.endswith("missing_variables"):
        shutil.rmtree(target / "variables")
    elif case == "foreign_missing_data_shard":
        _data_shard(target).unlink()
    elif case == "foreign_variables_of_another_model":
        shutil.rmtree(target / "variables")
        shutil.copytree(other / "variables", target / "variables")
    elif case.endswith("invalid_json_metadata"):
        _rewrite_metadata_json(target, '{"name": "x", ', refresh_manifest=case.startswith("ours"))
    elif case == "foreign_garbage_metadata":
        (target / "keras_metadata.pb").write_bytes(b"\xff\xfe\xfd garbage that is no proto")
    elif case == "unknown_class_safe_mode":
        shutil.copytree(ours, target)
        proto = metadata.SavedMetadata()
        proto.ParseFromString((target / "keras_metadata.pb").read_bytes())
        for node in proto.nodes:
            record = json.loads(node.metadata)
            if record.get("name") == "hidden":
                record["class_name"] = record["registered_name"] = "NoSuchLayer"
                record["module"] = "no_such_package.layers"
                node.metadata = json.dumps(record)
        (target / "keras_metadata.pb").write_bytes(proto.SerializeToString())
        integrity.write_manifest(target)
    else:
        raise AssertionError(f"unknown case {case}")
    return target


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, worker_id) -> dict[str, dict]:
    return infra.once_per_session(
        tmp_path_factory,
        worker_id,
        "infra_corrupt_outcomes",
        lambda: _make_and_run_cases(tmp_path_factory.mktemp("corrupt")),
    )


def _make_and_run_cases(root: Path) -> dict[str, dict]:
    ours, foreign, other = root / "_ours", root / "_foreign", root / "_other"
    reference_impl.save(infra.functional_model(), ours)
    _tf_keras_model(foreign, units=3)
    _tf_keras_model(other, units=5)
    cases = {case: (_make(case, root, ours, foreign, other), True) for case in CASES}
    cases.update({case: (_make(case, root, ours, foreign, other), True) for case in LOAD_CASES})
    results = _run_cases(cases)
    for case, (path, _safe) in cases.items():
        results[case]["path"] = str(path)
    return results


def _assert_error(error: dict | None, expected: str, path: str) -> None:
    assert error is not None, "no error was raised"
    assert error["type"] == expected, error
    assert "ReferenceImplError" in error["mro"]
    base = "FileNotFoundError" if expected == "SavedModelNotFoundError" else "ValueError"
    assert base in error["mro"]
    # The error names the path at fault: the model directory or a file inside it.
    assert error["path"] is not None and error["path"].startswith(os.path.abspath(path))
    assert error["path"] in error["message"]


@pytest.mark.parametrize("case", list(CASES))
def test_open_reports_the_right_error(outcomes, case):
    result = outcomes[case]
    assert not result.get("crashed") and not result.get("hung"), result
    _assert_error(result["open"], CASES[case][1], result["path"])


@pytest.mark.parametrize("case", list(CASES))
def test_load_reports_the_right_error(outcomes, case):
    result = outcomes[case]
    assert not result.get("crashed") and not result.get("hung"), result
    _assert_error(result["load"], CASES[case][1], result["path"])


@pytest.mark.parametrize("case", list(LOAD_CASES))
def test_load_under_safe_mode(outcomes, case):
    result = outcomes[case]
    assert not result.get("crashed") and not result.get("hung"), result
    assert result["open"] is None, "the files themselves are sound"
    if LOAD_CASES[case] is None:
        assert result["load"] is None, result["load"]
    else:
        _assert_error(result["load"], LOAD_CASES[case], result["path"])


def test_intact_copies_open_cleanly(tmp_path):
    """The same checks pass on untouched directories (no false alarms)."""
    from reference_impl.validate import open_saved_model

    ours, foreign = tmp_path / "ours", tmp_path / "foreign"
    reference_impl.save(infra.functional_model(compiled=True), ours)
    _tf_keras_model(foreign, units=3)
    assert open_saved_model(ours).metadata_nodes
    assert open_saved_model(foreign).metadata_nodes
    plain = tmp_path / "plain"
    import tensorflow as tf

    tf.saved_model.save(tf.Module(), str(plain))
    assert open_saved_model(plain).metadata_nodes is None


def test_open_recovers_a_save_interrupted_between_renames(tmp_path):
    from reference_impl.validate import open_saved_model

    target = tmp_path / "model"
    infra.save_plain(infra.functional_model(), target)
    os.rename(target, tmp_path / f".model.old-{2**22 + 7}-0123abcd")  # dead pid
    assert open_saved_model(target).metadata_nodes is not None
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_metadata_node_outside_the_object_graph(tmp_path):
    from reference_impl.errors import MetadataError
    from reference_impl.validate import open_saved_model

    target = tmp_path / "model"
    infra.save_plain(infra.functional_model(), target)
    node = metadata.MetadataNode(10_000, "root.nowhere", "_tf_keras_layer", {"name": "x"})
    metadata.write_metadata(target, [*metadata.read_metadata(target), node])
    integrity.write_manifest(target)
    with pytest.raises(MetadataError, match="node 10000"):
        open_saved_model(target)


def test_text_saved_model_is_read(tmp_path):
    from google.protobuf import text_format

    from reference_impl.validate import open_saved_model

    target = tmp_path / "model"
    infra.save_plain(infra.functional_model(), target)
    files = open_saved_model(target)
    (target / "saved_model.pbtxt").write_text(text_format.MessageToString(files.saved_model))
    (target / "saved_model.pb").unlink()
    (target / integrity.MANIFEST_FILENAME).unlink()
    assert open_saved_model(target).saved_model == files.saved_model


@pytest.mark.parametrize(
    "text",
    ['{"shape": {"class_name": "__tuple__", "items": null}}', "[" * 100_000 + "]" * 100_000],
    ids=["tuple-of-null", "deep-nesting"],
)
def test_hostile_metadata_json_is_a_metadata_error(tmp_path, text):
    """Found by LOAD-HOSTILE: a tagged tuple whose items are not a list raised a bare
    TypeError, JSON nested past the stack a RecursionError."""
    from reference_impl.errors import MetadataError

    proto = metadata.SavedMetadata()
    proto.nodes.add(node_id=0, node_path="root", identifier="_tf_keras_model", metadata=text)
    (tmp_path / metadata.METADATA_FILENAME).write_bytes(proto.SerializeToString())
    with pytest.raises(MetadataError, match="invalid JSON metadata"):
        metadata.read_metadata(tmp_path)
