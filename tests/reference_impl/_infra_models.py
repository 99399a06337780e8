"""Small models and subprocess helpers for the infrastructure tests (atomic, metadata,
validate, determinism).

Weights come from seeded initializers and every layer has a fixed name, so two processes
building the same model get the same variables and the same saved names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from reference_impl import atomic, metadata

REPO_ROOT = Path(__file__).resolve().parents[2]

# Imported by every subprocess script before TensorFlow.
_PRELUDE = """\
from conformance.environment import quiet_tensorflow
tf = quiet_tensorflow()
"""


def _dense(units: int, name: str, seed: int, activation: str | None = None):
    return keras.layers.Dense(
        units,
        activation=activation,
        name=name,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        bias_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=seed + 1),
    )


def functional_model(compiled: bool = False) -> keras.Model:
    """``x`` (4) -> Dense 3 relu ``hidden`` -> Dense 2 ``out``: a tiny Functional model."""
    inputs = keras.Input((4,), name="x")
    hidden = _dense(3, "hidden", seed=1, activation="relu")(inputs)
    outputs = _dense(2, "out", seed=3)(hidden)
    model = keras.Model(inputs, outputs, name="infra_functional")
    if compiled:
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    return model


def sequential_model() -> keras.Sequential:
    return keras.Sequential(
        [keras.Input((4,), name="x"), _dense(3, "s_hidden", 5, "tanh"), _dense(1, "s_out", 7)],
        name="infra_sequential",
    )


class InfraSubclassed(keras.Model):
    """A subclassed model with a ``training`` argument (dropout)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = _dense(3, "sub_dense", 9)
        self.drop = keras.layers.Dropout(0.5, name="sub_drop")

    def call(self, inputs, training=None):
        return self.drop(self.dense(inputs), training=training)


def subclassed_model() -> InfraSubclassed:
    model = InfraSubclassed(name="infra_subclassed")
    model(np.zeros((1, 4), "float32"))
    return model


def wide_model(width: int = 512, depth: int = 6) -> keras.Model:
    """A model with a few MB of variables, so writing it takes a noticeable while."""
    inputs = keras.Input((width,), name="x")
    hidden = inputs
    for i in range(depth):
        hidden = _dense(width, f"wide_{i}", seed=20 + 2 * i, activation="relu")(hidden)
    return keras.Model(inputs, _dense(2, "wide_out", 99)(hidden), name="infra_wide")


def sample_input(batch: int = 2, width: int = 4) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((batch, width)).astype("float32")


def save_plain(model: keras.Model, path: str | os.PathLike[str]) -> None:
    """Save without core's ``reference_impl.save``: ``tf.saved_model.save`` of the model's
    serving function, through :func:`atomic.atomic_directory`, plus a one-node
    ``keras_metadata.pb`` for the root. Enough for tests of the files, not of Keras revival.
    """
    spec = [tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name="x")]
    serve = tf.function(lambda x: {"out": model(x, training=False)}, input_signature=spec)
    module = tf.Module()
    module.model_variables = list(model.weights)
    module.serve = serve
    with atomic.atomic_directory(path) as directory:
        tf.saved_model.save(module, os.fspath(directory), signatures={"serving_default": serve})
        record = metadata.layer_metadata(model, is_root=True)
        node = metadata.MetadataNode(0, "root", metadata.identifier(model), record)
        metadata.write_metadata(directory, [node])


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def python_script(body: str) -> list[str]:
    """The command running ``body`` after the quiet TensorFlow prelude."""
    return [sys.executable, "-c", _PRELUDE + textwrap.dedent(body)]


def run_script(body: str, timeout: float, **env: str) -> subprocess.CompletedProcess:
    """Run a script in a fresh interpreter; a hang is killed after ``timeout`` seconds."""
    return subprocess.run(
        python_script(body),
        cwd=REPO_ROOT,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def once_per_session(tmp_path_factory, worker_id: str, name: str, compute):
    """Run ``compute()`` (returning JSON-able data) once per test session, xdist or not.

    Under pytest-xdist every worker would run a module fixture of its own; the slow
    subprocess fixtures here compute once, under a file lock in the session's shared
    temporary directory, and the other workers read the stored result.
    """
    if worker_id == "master":  # not under xdist
        return compute()
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent
    stored = shared / f"{name}.json"
    with FileLock(str(shared / f"{name}.lock")):
        if stored.is_file():
            return json.loads(stored.read_text())
        result = compute()
        stored.write_text(json.dumps(result))
        return result


def last_json_line(stdout: str):
    """Parse the last line of a script's stdout that is a JSON document."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    raise AssertionError(f"no JSON line in output:\n{stdout}")
