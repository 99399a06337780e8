"""The built-in adapters: they resolve, claim what they say, and keras_export saves and loads."""

import os

import numpy as np
import pytest

from conformance.api import BUILTIN, check_implementation, resolve_implementation
from conformance.contract import CLAUSE_IDS
from conformance.expectations import EXPECTATIONS_DIR, expectations_path, read_xfails
from conformance.savedmodel.files import tree_digest


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_resolves(name):
    impl = resolve_implementation(name)
    assert impl.name == name
    check_implementation(impl, name)


def test_keras_export_claims_all_but_the_reasoned_clauses():
    impl = resolve_implementation("keras_export")
    assert impl.framework == "keras"
    assert set(impl.not_claimed) <= set(CLAUSE_IDS)
    assert impl.claims == frozenset(CLAUSE_IDS) - set(impl.not_claimed)
    assert all(len(reason) > 20 for reason in impl.not_claimed.values())
    # What an inference export promises stays claimed.
    assert {"SIG-SERVING", "SIG-STABLE", "SAVE-NO-MUTATION", "LOAD-CORRUPT"} <= impl.claims


@pytest.mark.parametrize("path", sorted(EXPECTATIONS_DIR.glob("*.txt")), ids=lambda p: p.name)
def test_expectations_files_parse_and_belong_to_a_builtin(path):
    name = path.stem
    assert name in BUILTIN, f"{path.name}: no built-in implementation {name!r}"
    xfails = read_xfails(str(path))
    assert xfails.entries, f"{path.name} has no entries"
    impl = resolve_implementation(name)
    for key in xfails.entries:
        clause_id = key if key in CLAUSE_IDS else None
        if clause_id is not None and impl.claims is not None:
            assert clause_id in impl.claims, f"{path.name}: {key} is not claimed by {name}"
    assert expectations_path(name) == str(path)
    clauses = EXPECTATIONS_DIR.parent / "clauses"
    for key in xfails.entries:
        if "::" not in key:
            continue
        # Relative to the package, so that they match whatever pytest's rootdir is.
        file_part, _, test = key.partition("::")
        assert not file_part.startswith("conformance/"), f"{path.name}: {key} has a prefix"
        source = (clauses / file_part).read_text()
        assert f"def {test.split('[')[0]}(" in source, f"{path.name}: no test {key}"


def test_expectations_path_keeps_real_files(tmp_path):
    real = tmp_path / "tf_keras"
    real.write_text("SIG-SERVING  # a reason\n")
    assert expectations_path(str(real)) == str(real)
    assert expectations_path("no_such_builtin_xyz") == "no_such_builtin_xyz"


@pytest.fixture(scope="module")
def tiny_model():
    from conformance.environment import quiet_tensorflow

    quiet_tensorflow()
    import keras

    x = keras.Input((4,), name="features")
    model = keras.Model(x, keras.layers.Dense(3, name="scores")(x))
    model.set_weights([np.full((4, 3), 0.25, "float32"), np.arange(3, dtype="float32")])
    return model


def test_keras_export_saves_and_loads(tiny_model, tmp_path):
    import tensorflow as tf

    impl = resolve_implementation("keras_export")
    path = str(tmp_path / "model")
    impl.save(tiny_model, path)
    loaded = tf.saved_model.load(path)
    assert sorted(loaded.signatures.keys()) == ["serve", "serving_default"]
    assert not hasattr(loaded, "keras_api")
    layer = impl.load(path)
    x = np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4)
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(tiny_model(x)), rtol=1e-6)


def test_keras_export_overwrite_false_keeps_the_files(tiny_model, tmp_path):
    impl = resolve_implementation("keras_export")
    path = str(tmp_path / "model")
    impl.save(tiny_model, path)
    before = tree_digest(path)
    with pytest.raises(FileExistsError, match="overwrite=False"):
        impl.save(tiny_model, path, overwrite=False)
    assert tree_digest(path) == before
    stale = os.path.join(path, "stale.txt")
    open(stale, "w").close()
    impl.save(tiny_model, path, overwrite=True)
    assert not os.path.exists(stale), "overwrite=True left a file of the old save"


def test_keras_export_writes_given_signatures(tiny_model, tmp_path):
    import tensorflow as tf

    impl = resolve_implementation("keras_export")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def predict(features):
        return {"scores": tiny_model(features, training=False)}

    path = str(tmp_path / "signed")
    impl.save(tiny_model, path, signatures={"predict_scores": predict})
    loaded = tf.saved_model.load(path)
    # Keras' ExportArchive always aliases its first endpoint as serving_default.
    assert sorted(loaded.signatures.keys()) == ["predict_scores", "serving_default"]
    out = loaded.signatures["predict_scores"](features=tf.ones((1, 4)))
    assert list(out) == ["scores"]


def test_keras_export_load_of_a_missing_path_names_it(tmp_path):
    impl = resolve_implementation("keras_export")
    missing = str(tmp_path / "nowhere")
    with pytest.raises(Exception, match="nowhere"):
        impl.load(missing)


def test_keras_export_warns_that_the_optimizer_is_not_saved(tmp_path):
    import keras

    impl = resolve_implementation("keras_export")
    x = keras.Input((2,))
    model = keras.Model(x, keras.layers.Dense(1)(x))
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)
    with pytest.warns(UserWarning, match="optimizer is not saved"):
        impl.save(model, str(tmp_path / "m"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        impl.save(model, str(tmp_path / "m2"), include_optimizer=False)


@pytest.mark.parametrize("name", sorted(p.stem for p in EXPECTATIONS_DIR.glob("*.txt")))
def test_every_expectations_entry_matches_a_collected_test(name, tmp_path):
    """The plugin refuses an entry that matches nothing (a usage error): collecting the suite
    with each built-in's expectations, from an unrelated directory, proves they all match."""
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "--pyargs", "conformance", "-p", "no:xdist",
            "-p", "no:cacheprovider", f"--conformance-impl={name}",
            f"--conformance-xfails={name}", "--collect-only", "-q",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "clauses/test_" in proc.stdout


@pytest.mark.parametrize(
    "key",
    [
        "test_losses.py::test_regularization_losses",
        "conformance/test_losses.py::test_regularization_losses",
        "conformance/clauses/test_losses.py::test_regularization_losses",
    ],
)
def test_entries_by_the_old_and_new_clause_paths_match(key):
    from conformance.expectations import same_test

    nodeid = "conformance/clauses/test_losses.py::test_regularization_losses"
    for root in ("", "site-packages/"):
        assert same_test(key, root + nodeid)
    assert not same_test(key, "conformance/clauses/test_losses.py::test_activity_and_call_losses")
