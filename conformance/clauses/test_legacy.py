"""LOAD-LEGACY: the implementation's loader reads what the format's real writers wrote.

The legacy corpus (``conformance/corpus/legacy``, read by :mod:`conformance.corpus.legacy`)
holds Keras SavedModels written by ``tf.keras`` of TensorFlow 2.12-2.15 and tf_keras
2.16-2.21, with what each writer saw. ``CONFORMANCE_LEGACY_CORPUS`` points the clause at
another corpus directory of the same layout. One test per file, so a failure names the writer
and the case; the ``nightly`` profile loads every file, the others a fixed subset.
"""

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from conformance.corpus import legacy
from conformance.expected import originals
from conformance.expected.tolerances import assert_close
from conformance.plugin.drawing import current_profile_name

CORPUS_ENV = "CONFORMANCE_LEGACY_CORPUS"
# Outside nightly: every real-world case of these writers, and these spec cases of the newest.
SUBSET_WRITERS = ("tf-2.12", "tf-2.15", "tf-2.21")
SUBSET_SPECS = ("spec-02", "spec-17")
SUBSET_SPEC_WRITER = "tf-2.21"


def corpus_root():
    return Path(os.environ.get(CORPUS_ENV) or legacy.LEGACY_DIR)


def _params():
    root = corpus_root()
    params = []
    for writer, case in legacy.cases(root):
        marks = []
        if not _in_subset(writer, case) and current_profile_name() != "nightly":
            marks.append(
                pytest.mark.skip(
                    reason="LOAD-LEGACY loads every corpus file only under the nightly profile; "
                    f"ci/dev load the real cases of {', '.join(SUBSET_WRITERS)} and "
                    f"{', '.join(SUBSET_SPECS)} of {SUBSET_SPEC_WRITER}"
                )
            )
        params.append(pytest.param(writer, case, id=f"{writer}/{case}", marks=marks))
    if not params:
        params.append(
            pytest.param(
                None,
                None,
                id="no-corpus",
                marks=pytest.mark.skip(reason=f"no legacy corpus at {root} (index.json)"),
            )
        )
    return params


def _in_subset(writer, case):
    if case.startswith("spec-"):
        return writer == SUBSET_SPEC_WRITER and case in SUBSET_SPECS
    return writer in SUBSET_WRITERS


class _Records(logging.Handler):
    """Log records during the load: tf_keras reports what it revives through logging."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _revived_classes(model):
    if originals.is_standin(model):  # a model in another process: what its worker saw
        return model.revived_classes()
    layers = [model]
    try:
        layers += list(model._flatten_layers(include_self=False))
    except Exception:  # not a Keras layer: nothing more to look at
        pass
    # tf_keras names a revived class after the saved one, on a Revived* base.
    return sorted(
        {
            type(layer).__name__
            for layer in layers
            if any("Revived" in cls.__name__ for cls in type(layer).__mro__)
        }
    )


def _register_catalog_classes():
    """The corpus specs' registered custom classes, registered as their user's code would:
    with Keras and with tf_keras (whichever the implementation loads with)."""
    import importlib

    from strategies.catalog import custom

    for module in ("keras", "tf_keras"):
        try:
            custom.custom_objects(importlib.import_module(module))
        except ImportError:
            continue


def _coarsest_compute_dtype(model):
    """float16 / bfloat16 where a layer computes in it (a mixed-precision model's float32
    output carries float16 error), else None."""
    if originals.is_standin(model):  # a model in another process: its worker's report
        computes = model.compute_dtypes()
        return next((d for d in ("bfloat16", "float16") if d in computes), None)
    try:
        layers = [model, *model._flatten_layers(include_self=False)]
    except Exception:  # not a Keras layer
        layers = [model]
    computes = {
        str(getattr(getattr(layer, "dtype_policy", None), "compute_dtype", "") or "")
        for layer in layers
    }
    return next((d for d in ("bfloat16", "float16") if d in computes), None)


def _load(implementation, path):
    handler = _Records()
    logger = logging.getLogger()
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = implementation.load(str(path))
    finally:
        logger.removeHandler(handler)
    return model, [str(w.message) for w in caught] + handler.messages


@pytest.mark.clause("LOAD-LEGACY")
@pytest.mark.parametrize(("writer", "case_name"), _params())
def test_legacy_file_loads(implementation, clause, writer, case_name):
    case = legacy.load_case(writer, case_name, corpus_root())
    outcome = {"writer": writer, "case": case_name, "how": "failed"}
    clause.record_legacy(outcome)
    if case.kind == "spec":
        _register_catalog_classes()
    about = {"legacy_file": f"{writer}/{case_name}", "description": case.record["description"]}
    with clause.example(case.record.get("spec") or about, file=f"{writer}/{case_name}"):
        outcome["how"] = _check_file(implementation, case)


def _check_file(implementation, case):
    """Load one legacy file and check it against its record; how it loaded."""
    versions = case.writer_versions
    who = f"{case.writer}/{case.case} ({versions.get('package')} {versions.get('keras')})"
    try:
        model, messages = _load(implementation, case.path)
    except NotImplementedError:
        pytest.skip(f"{implementation.name} has no loader (load raised NotImplementedError)")
    except Exception as exc:
        raise AssertionError(
            f"{who}: a valid SavedModel failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    revived = _revived_classes(model)
    warned = any("reviv" in m.lower() for m in messages)
    assert callable(model), f"{who}: load returned a {type(model).__name__}, not a model"
    missing = [name for name in ("variables", "losses") if not hasattr(model, name)]
    assert not missing, (
        f"{who}: load returned a {type(model).__name__} without {' or '.join(missing)}: not a "
        "Keras model (a plain tf.saved_model.load object?)"
    )
    if revived:
        assert warned, f"{who}: revived ({', '.join(revived)}) without a warning saying so"

    _check_variables(who, model, case)  # first: a training-mode call moves BN statistics
    coarse = _coarsest_compute_dtype(model)
    inputs = case.call_inputs()
    got = originals.outputs(model, inputs, training=False)
    want = case.outputs_inference
    assert len(got) == len(want), f"{who}: {len(got)} outputs, the writer saw {len(want)}"
    for index, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_close(g, w, f"{who}: output {index} (training=False)", dtype=coarse)
    got_losses = [np.asarray(loss) for loss in model.losses]
    if case.losses:
        assert_close(
            np.sum([np.sum(x) for x in got_losses]),
            np.sum([np.sum(x) for x in case.losses]),
            f"{who}: total of the losses after a call ({len(got_losses)} losses, the writer "
            f"saw {len(case.losses)})",
            dtype=coarse,
        )
    if case.deterministic_in_training:
        got = originals.outputs(model, inputs, training=True)
        for index, (g, w) in enumerate(zip(got, case.outputs_training, strict=True)):
            assert_close(g, w, f"{who}: output {index} (training=True)", dtype=coarse)
    return "revived" if revived or warned else "config"


def _check_variables(who, model, case):
    """Every recorded variable value is one of the loaded model's (names differ: tf_keras'
    ``dense/kernel:0`` is Keras 3's ``dense/kernel``; Keras 3's seed states have none)."""
    loaded = [np.asarray(v) for v in model.variables if "seed_generator" not in _path(v)]
    unused = list(range(len(loaded)))
    for name, value in zip(case.variable_names, case.variables, strict=True):
        match = next(
            (
                i
                for i in unused
                if loaded[i].shape == value.shape
                and loaded[i].dtype == value.dtype
                and np.array_equal(loaded[i], value)
            ),
            None,
        )
        assert match is not None, (
            f"{who}: the writer's variable {name} {value.shape} {value.dtype} is not among the "
            "loaded model's variables (missing, or loaded with other values)"
        )
        unused.remove(match)


def _path(variable):
    return str(getattr(variable, "path", None) or getattr(variable, "name", ""))
