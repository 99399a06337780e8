"""The legacy corpus (conformance/corpus/legacy/): what is committed is what the index says,
every record agrees with its arrays, the command refuses bad arguments in words, and the
writer's record-writing function records what the model does (on this TensorFlow, in-process).
"""

import json
import re

import numpy as np
import pytest

from conformance.__main__ import main as conformance_main
from conformance.corpus import SPECS_FILE, legacy
from conformance.corpus import legacy_writer as writer
from conformance.tools import legacy_corpus as command

SPECS = json.loads(SPECS_FILE.read_text())
CASE_NAMES = set(SPECS) | set(writer.REAL_CASES)
INDEX = legacy.index()
CASES = legacy.cases()


def test_the_corpus_is_committed_for_the_priority_writers():
    assert {"tf-2.15", "tf-2.21"} <= set(legacy.writers()), legacy.writers()
    assert INDEX["format"] == legacy.FORMAT


def test_writers_are_known_versions_and_every_case_is_written_or_skipped_with_a_reason():
    for name, entry in INDEX["writers"].items():
        assert name.removeprefix("tf-") in command.KNOWN, name
        written, skipped = set(entry["cases"]), set(entry["skipped"])
        assert not written & skipped, (name, written & skipped)
        assert (written | skipped) <= CASE_NAMES, (name, (written | skipped) - CASE_NAMES)
        assert all(reason.strip() for reason in entry["skipped"].values()), name
        for key in ("package", "tensorflow", "keras", "python", "numpy"):
            assert entry[key], (name, key)
        expected = "tf.keras" if entry["tensorflow"] < "2.16" else "tf_keras"
        assert entry["package"] == expected, name


def test_each_writer_holds_its_share_of_the_cases():
    assert INDEX["subset"] == command.SUBSET
    for name, entry in INDEX["writers"].items():
        share = set(command.default_cases(name.removeprefix("tf-")))
        assert set(entry["cases"]) | set(entry["skipped"]) == share, name
        assert set(writer.REAL_CASES) <= share


def test_every_writer_directory_is_indexed():
    on_disk = {(w.name, c.name) for w in legacy.LEGACY_DIR.iterdir() if w.is_dir()
               for c in w.iterdir() if c.is_dir()}
    assert on_disk == set(CASES)


@pytest.mark.parametrize("writer_name, case", CASES)
def test_case_matches_its_sha256_and_its_record(writer_name, case):
    entry = INDEX["writers"][writer_name]
    case_dir = legacy.LEGACY_DIR / writer_name / case
    assert legacy.directory_sha256(case_dir) == entry["cases"][case]["sha256"]
    loaded = legacy.load_case(writer_name, case)
    record = loaded.record
    assert record["case"] == case and record["kind"] == entry["cases"][case]["kind"]
    assert {k: record["writer"][k] for k in ("package", "tensorflow", "keras")} == {
        k: entry[k] for k in ("package", "tensorflow", "keras")
    }
    assert (loaded.path / "saved_model.pb").is_file()
    assert (loaded.path / "keras_metadata.pb").is_file()
    assert (loaded.path / "variables" / "variables.index").is_file()
    assert len(loaded.inputs) == len(record["inputs"]) >= 1
    assert len(loaded.outputs_inference) == record["outputs"] >= 1
    assert len(loaded.losses) == record["losses"]
    assert len(loaded.variables) == len(record["variables"])
    if record["deterministic_in_training"]:
        assert len(loaded.outputs_training) == record["outputs"]
    else:
        assert loaded.outputs_training is None
    if record["kind"] == "spec":
        assert record["spec"] == SPECS[case]
        assert record["compiled"] == (SPECS[case].get("training") is not None)
    else:
        assert record["spec"] is None
    assert all(np.isfinite(o).all() for o in loaded.outputs_inference if o.dtype.kind == "f")
    structured = loaded.structured(loaded.outputs_inference)
    if record["output_structure"] == "dict":
        assert sorted(structured) == record["output_keys"]


def test_spec_weights_are_equal_across_writers():
    # The strategies set every weight from the spec's seed: each writer's untrained spec
    # models hold the same numbers (what makes one loader check fit every version).
    by_case = {}
    for writer_name, case in CASES:
        if not case.startswith("spec-") or SPECS[case].get("training"):
            continue
        loaded = legacy.load_case(writer_name, case)
        kernels = [v for n, v in zip(loaded.variable_names, loaded.variables, strict=True)
                   if n.endswith("kernel:0")]
        by_case.setdefault(case, []).append((writer_name, kernels))
    compared = 0
    for case, seen in by_case.items():
        first_writer, first = seen[0]
        for other_writer, other in seen[1:]:
            assert len(first) == len(other), (case, first_writer, other_writer)
            for a, b in zip(first, other, strict=True):
                np.testing.assert_array_equal(a, b, err_msg=f"{case} {other_writer}")
            compared += 1
    assert compared >= 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--versions", "2.11"], r"unknown TensorFlow version\(s\) 2\.11; known: 2\.12, "),
        (["--versions", ","], r"name at least one of 2\.12"),
        (["--versions", "2.21", "--only", "spec-99"], r"unknown case\(s\) spec-99; known: "),
    ],
)
def test_bad_arguments_are_usage_errors_in_words(argv, message, capsys, tmp_path):
    assert conformance_main(["legacy-corpus", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not any(tmp_path.iterdir())  # nothing made, no environment created


def test_requirements_name_tf_keras_from_2_16_on():
    assert command.requirements("2.15")[0] == "tensorflow==2.15.1"
    assert not any(r.startswith("tf-keras") for r in command.requirements("2.12"))
    for version in ("2.16", "2.21"):
        assert any(r.startswith("tf-keras==") for r in command.requirements(version))
    assert command.parse_versions("2.21,2.12,2.21") == ["2.21", "2.12"]


def test_write_case_records_what_the_model_does(tmp_path):
    """The writer's record on this TensorFlow (tf_keras), read back by the reader."""
    K, package = writer.keras_module()
    built = writer.real_custom_layer(K)
    model, inputs = built["model"], built["inputs"]
    writer.write_case(K, package, str(tmp_path / "tf-here" / "custom-layer"),
                      case="custom-layer", kind="real", **built)
    loaded = legacy.load_case("tf-here", "custom-layer", root=tmp_path)
    np.testing.assert_array_equal(loaded.inputs[0], inputs)
    np.testing.assert_allclose(loaded.outputs_inference[0],
                               model(inputs, training=False).numpy(), rtol=1e-6)
    training = model(inputs, training=True).numpy()
    np.testing.assert_allclose(loaded.outputs_training[0], training, rtol=1e-6)
    assert not np.allclose(loaded.outputs_training[0], loaded.outputs_inference[0])
    assert loaded.record["losses"] == 1 and loaded.losses[0] > 0
    assert loaded.variable_names == [v.name for v in model.variables]
    for value, var in zip(loaded.variables, model.variables, strict=True):
        np.testing.assert_array_equal(value, var.numpy())
    assert loaded.custom_classes == [{"name": "LegacyNoisyScale", "registered": False}]
    assert loaded.record["writer"]["package"] == package
    # The file is a real Keras SavedModel: this TensorFlow's own reader gives the outputs.
    reloaded = K.models.load_model(str(loaded.path), compile=False)
    np.testing.assert_allclose(reloaded(inputs, training=False).numpy(),
                               loaded.outputs_inference[0], rtol=1e-5)
