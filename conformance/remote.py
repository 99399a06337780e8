"""An implementation in another interpreter: the suite's side of docs/out-of-process.md.

``--conformance-impl=python:/path/to/venv/bin/python:TARGET`` runs ``conformance/worker.py``
with that interpreter; TARGET is a worker built-in (``reference``, ``tf_keras``,
``legacy_keras``) or ``package.module:Attr`` importable there. The suite talks to it in JSON
lines (one long-lived worker per test process, a fresh one after a crash, a hang or garbage)
through ``ProcessImplementation``, an ``Implementation`` whose models live in the worker:

- ``save_spec(spec, path)`` has the worker build ``spec`` and save it; it returns a
  ``RemoteModel``, the stand-in original the clauses compare with. Calling it runs the
  worker's model (its variables restored after each call); its variables, losses and layer
  tree are what the worker reported.
- ``save(model, path)`` saves a ``RemoteModel`` (an original, or a loaded model) in the
  worker; a live model of this process is sent as its Keras config and weights when it has
  one (uncompiled Sequential or functional models), else refused.
- ``load(path)`` has the worker load with its implementation and returns a ``RemoteModel``.
- ``save_unchanged(spec, data, path)``: SAVE-NO-MUTATION checked in the worker.
"""

import atexit
import builtins
import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from conformance.api import Implementation, ImplementationError

PREFIX = "python:"
TIMEOUT_ENV_VAR = "CONFORMANCE_WORKER_TIMEOUT"
DEFAULT_TIMEOUT = 300.0
START_TIMEOUT = 120.0
WORKER = Path(__file__).with_name("worker.py")
PROTOCOL = 1
_PROJECT_ROOT = Path(__file__).resolve().parent.parent

# What the protocol cannot carry (yet): each clause listed here is not claimed by an
# out-of-process implementation, with the reason, whatever the worker claims.
NOT_CLAIMED = {
    "SAVE-ATOMIC": "kills and fails the file operations of a save running in the suite's own "
    "subprocesses; the worker's save is not instrumented",
    "SAVE-CONCURRENT": "saves from three threads of one process; the worker answers one request "
    "at a time",
    "LOAD-HOSTILE": "loads each mutated copy in a child process with a memory limit and "
    "classifies its exception by the implementation's error family, which the protocol does "
    "not carry",
    "SAVE-ASSETS": "builds lookup layers on vocabulary files of the suite's process and deletes "
    "them between save and serving: a Keras config sent to the worker carries the vocabulary, "
    "not the files, and the worker's own build writes them elsewhere",
}


class WorkerError(RuntimeError):
    """The worker crashed, hung, or answered something that is not the protocol."""


class TransferError(RuntimeError):
    """A model of the suite's own process (a clause's fixed model) that cannot be sent to the
    worker: a limit of running the implementation elsewhere, not a failure of its save."""

    suite_limit = True  # the failure report does not say the implementation raised it


class RemoteError(Exception):
    """An exception the implementation raised in the worker (``remote_type``, ``phase``,
    ``remote_traceback``); its class is named after the remote one."""

    remote_type = "Exception"
    phase = "worker"
    remote_traceback = ""


_ERROR_CLASSES = {}


def remote_error(error):
    """The exception to raise for a reply's ``error``: a ``RemoteError`` subclass named after
    the remote type, a subclass of the builtin of that name too when there is one (so that a
    remote ``NotImplementedError`` or ``FileExistsError`` means what it means here)."""
    name = str(error.get("type") or "Exception")
    builtin = getattr(builtins, name, None) if error.get("module") == "builtins" else None
    if not (isinstance(builtin, type) and issubclass(builtin, Exception)):
        builtin = None
    if name not in _ERROR_CLASSES:
        bases = (RemoteError, builtin) if builtin not in (None, Exception) else (RemoteError,)
        try:
            _ERROR_CLASSES[name] = type(name, bases, {"__module__": __name__})
        except TypeError:  # a builtin whose layout does not mix in
            _ERROR_CLASSES[name] = type(name, (RemoteError,), {"__module__": __name__})
    exc = _ERROR_CLASSES[name](str(error.get("message", "")))
    exc.remote_type = name
    exc.phase = str(error.get("phase", "worker"))
    exc.remote_traceback = str(error.get("traceback", ""))
    return exc


def parse(spec):
    """``python:PYTHON:TARGET`` -> (python, target), with a clear error for anything else."""
    if not spec.startswith(PREFIX):
        raise ImplementationError(f"{spec!r} does not start with {PREFIX!r}")
    python, sep, target = spec[len(PREFIX):].partition(":")
    if not sep or not python or not target:
        raise ImplementationError(
            f"--conformance-impl={spec!r}: an implementation in another interpreter is "
            "python:/path/to/bin/python:TARGET, TARGET a worker built-in (reference, tf_keras, "
            "legacy_keras) or package.module:Attr"
        )
    python = os.path.expanduser(python)
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise ImplementationError(f"--conformance-impl={spec!r}: {python} is not an executable")
    return python, target


def worker_timeout():
    raw = os.environ.get(TIMEOUT_ENV_VAR)
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise ImplementationError(f"{TIMEOUT_ENV_VAR}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ImplementationError(f"{TIMEOUT_ENV_VAR}={raw!r} must be positive")
    return value


def _scratch():
    root = tempfile.mkdtemp(prefix="conformance-worker-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


class Worker:
    """One worker process and the JSON lines to and from it; replaced after a failure."""

    def __init__(self, python, target, *, timeout, command=None):
        self.python, self.target, self.timeout = python, target, timeout
        self.command = command or [python, "-u", str(WORKER), target]
        self.generation = 0  # counts the processes started: models die with theirs
        self.proc = None
        self.hello = None
        self._ids = itertools.count(1)
        self._buffer = b""
        self._log = None

    def describe(self):
        pid = f", pid {self.proc.pid}" if self.proc is not None else ""
        return f"the worker `{' '.join(map(str, self.command))}`{pid}"

    def start(self):
        self.close()
        self._log = tempfile.TemporaryFile()
        env = dict(os.environ)
        paths = [str(_PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        try:
            self.proc = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                env=env, cwd=os.getcwd(),
            )
        except OSError as exc:
            raise WorkerError(f"cannot start {self.describe()}: {exc}") from None
        self.generation += 1
        self._buffer = b""
        # Start-up imports TensorFlow and the implementation: it may take longer than a request.
        hello = self.request("hello", _timeout=max(self.timeout, START_TIMEOUT))
        if hello.get("protocol") != PROTOCOL:
            self.close()
            raise WorkerError(
                f"{self.describe()} speaks protocol {hello.get('protocol')!r}, not {PROTOCOL}"
            )
        self.hello = hello
        return hello

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    self.proc.stdin.write(b'{"id": 0, "op": "shutdown"}\n')
                    self.proc.stdin.flush()
                    self.proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    self.proc.kill()
                    self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                stream.close()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _stderr_tail(self, limit=3000):
        if self._log is None:
            return ""
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        self._log.seek(0, os.SEEK_END)
        return text[-limit:].strip()

    def _fail(self, what, request_text):
        """Kill the process and raise the error naming it and the request."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        code = self.proc.returncode if self.proc is not None else None
        tail = self._stderr_tail()
        message = (
            f"{self.describe()} {what} (exit status {code}); the request was {request_text}; "
            "the next request starts a fresh worker"
            + (f"\n  its stderr ends with:\n{tail}" if tail else "")
        )
        self._forget_process()
        raise WorkerError(message)

    def _forget_process(self):
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def request(self, op, _timeout=None, **fields):
        """Send one request and return its reply (``ok`` true); the implementation's error
        is raised as a ``RemoteError``, a broken worker as a ``WorkerError``."""
        if self.proc is None:
            self.start()
        request = {"id": next(self._ids), "op": op, **fields}
        line = json.dumps(request)
        shown = line if len(line) <= 400 else line[:400] + "…"
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            self._fail("is gone (writing the request failed)", shown)
        timeout = _timeout or self.timeout
        raw = self._readline(time.monotonic() + timeout, timeout, shown)
        try:
            reply = json.loads(raw)
        except ValueError:
            self._fail(f"answered something that is not JSON: {raw[:300]!r}", shown)
        if not isinstance(reply, dict) or "ok" not in reply:
            self._fail(f"answered a JSON line that is not a reply: {raw[:300]!r}", shown)
        if reply.get("id") not in (request["id"], None):
            self._fail(f"answered request {reply.get('id')!r}, not {request['id']}", shown)
        if op in ("save", "load", "unchanged"):  # what a user of the save or load sees
            for message in reply.get("messages") or ():
                warnings.warn(str(message), RemoteWarning, stacklevel=3)
        if not reply["ok"]:
            error = reply.get("error")
            if not isinstance(error, dict):
                self._fail(f"answered a failure without an error object: {raw[:300]!r}", shown)
            raise remote_error(error)
        return reply

    def _readline(self, deadline, timeout, shown):
        out = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(f"did not answer within {timeout:g} s and was killed", shown)
            ready, _, _ = select.select([out], [], [], left)
            if not ready:
                continue
            chunk = os.read(out, 1 << 16)
            if not chunk:
                self.proc.wait()
                self._fail("crashed", shown)
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", "replace")


class RemoteWarning(UserWarning):
    """A warning or log record the worker reported for a request (its save's, say)."""


class ProcessImplementation(Implementation):
    """An implementation running in another interpreter, through ``conformance/worker.py``."""

    def __init__(self, python, target, *, timeout=None, spec=None, command=None):
        self.python, self.target = python, target
        self.spec_string = spec or f"{PREFIX}{python}:{target}"
        self.worker = Worker(python, target, timeout=timeout or worker_timeout(), command=command)
        try:
            hello = self.worker.start()
        except (WorkerError, RemoteError) as exc:
            raise ImplementationError(
                f"--conformance-impl={self.spec_string!r}: the worker did not start: {exc}"
            ) from None
        info = hello.get("implementation") or {}
        self.versions = hello.get("versions") or {}
        self.name = str(info.get("name") or target)
        self.framework = info.get("framework", "keras")
        self.supports = info.get("supports")
        from conformance.contract import CLAUSE_IDS

        remote_claims = info.get("claims")
        claimed = set(CLAUSE_IDS if remote_claims is None else remote_claims)
        self.claims = frozenset(c for c in claimed if c in CLAUSE_IDS and c not in NOT_CLAIMED)
        self.not_claimed = {
            **{c: f"out of process: {why}" for c, why in NOT_CLAIMED.items()},
            **(info.get("not_claimed") or {}),
        }
        self._root = _scratch()
        self._dirs = itertools.count(1)

    def __repr__(self):
        return f"<ProcessImplementation {self.name!r} in {self.python} ({self.target})>"

    # -- what the plugin and clauses call -----------------------------------------------

    def save(self, model, path, *, overwrite=True, include_optimizer=True, signatures=None):
        extra = {}
        if signatures is not None:
            if isinstance(model, RemoteModel):
                raise TransferError(
                    "signatures of a model living in the worker cannot be described here"
                )
            extra["signatures"] = describe_signatures(model, signatures)
        if not isinstance(model, RemoteModel):
            model = self._send_live(model)
        model.request("save", path=os.fspath(path), overwrite=overwrite,
                      include_optimizer=include_optimizer, **extra)

    def save_spec(self, spec, path):
        """Build ``spec`` in the worker and save it at ``path``: the stand-in original."""
        model = self.build_model(spec)
        self.save(model, path)
        return model

    def build_model(self, spec):
        model = RemoteModel(self, spec=spec)
        model.acquire()
        return model

    def load(self, path):
        model = RemoteModel(self, path=os.fspath(path), spec=None)
        model.acquire()
        return model

    def save_unchanged(self, spec, data, path):
        """SAVE-NO-MUTATION in the worker: what a save of a fresh ``spec`` model changed."""
        directory = self.new_dir()
        inputs = os.path.join(directory, "inputs.npz")
        np.savez(inputs, **_named(data))
        reply = self.worker.request("unchanged", spec=spec.to_dict(), inputs=inputs,
                                    path=os.fspath(path))
        return list(reply.get("problems") or [])

    def resume_report(self, spec, with_path, without_path):
        """LOAD-RESUME in the worker: what the original, the model loaded with its optimizer
        and the one loaded without report after the clause's steps (``op_resume``); arrays
        as lists of ``(name, value)``."""
        reply = self.worker.request(
            "resume", spec=spec.to_dict(), with_path=os.fspath(with_path),
            without_path=os.fspath(without_path), dir=self.new_dir(),
        )
        report = reply["resume"]
        for entry in report.values():
            for key in ("variables", "slots"):
                if key in entry:
                    entry[key] = list(zip(entry[f"{key[:-1]}_names"], _arrays(entry[key])))
        return report

    def optimizer_report(self, spec, without_path, with_path):
        """SAVE-OPTIMIZER in the worker (``op_optimizer``): ``same_optimizer``, and the
        optimizer variables ``before`` and ``after`` the save without it, as (name, value)."""
        reply = self.worker.request(
            "optimizer", spec=spec.to_dict(), without_path=os.fspath(without_path),
            with_path=os.fspath(with_path), dir=self.new_dir(),
        )
        report = reply["optimizer"]
        names = report["names"]
        return {
            "same_optimizer": bool(report["same_optimizer"]),
            "before": list(zip(names, _arrays(report["before"]))),
            "after": list(zip(names, _arrays(report["after"]))),
        }

    def new_dir(self):
        path = os.path.join(self._root, f"r{next(self._dirs)}")
        os.makedirs(path)
        return path

    def _send_live(self, model):
        """A live model of this process, rebuilt in the worker from its config and weights."""
        what = f"the suite's own model {getattr(model, 'name', model)!r}"
        fixture = getattr(model, "conformance_fixture", None)
        if fixture is not None:  # no config: the worker builds it by name
            remote = RemoteModel(self, spec=None)
            remote.source = {"fixture": fixture}
            remote.acquire()
            return remote
        if getattr(model, "optimizer", None) is not None:
            raise TransferError(
                f"{what} is compiled: its optimizer state cannot be sent to the worker"
            )
        try:
            config = model.to_json()
        except Exception as exc:
            raise TransferError(
                f"{what} has no Keras config to send to the worker ({type(exc).__name__}: {exc})"
            ) from None
        directory = self.new_dir()
        weights = os.path.join(directory, "weights.npz")
        np.savez(weights, **{f"a{i}": w for i, w in enumerate(model.get_weights())})
        remote = RemoteModel(self, spec=None)
        remote.source = {"keras_json": config, "weights": weights}
        try:
            remote.acquire()
        except RemoteError as exc:
            import importlib

            here = importlib.import_module("keras" if self.framework == "keras" else "tf_keras")
            theirs = ", ".join(f"{k} {v}" for k, v in sorted(self.versions.items()))
            raise TransferError(
                f"{what}, sent as its Keras config (written by {here.__name__} "
                f"{here.__version__} here), does not rebuild in the worker ({theirs}): "
                f"{exc.remote_type}: {str(exc)[:500]}. A limit of running the implementation "
                "in another process, not a failure of its save"
            ) from None
        return remote


def describe_signatures(model, signatures):
    """``signatures=`` (a ``tf.function`` or a mapping of them) as the protocol carries them:
    input specs and output names. A function is sent only when it is the model's inference
    call under those names: its output on a probe must equal the model's."""
    import tensorflow as tf

    functions = signatures if isinstance(signatures, dict) else {"serving_default": signatures}
    described = {}
    for key, function in functions.items():
        specs = list(getattr(function, "input_signature", None) or ())
        if not specs or not all(isinstance(s, tf.TensorSpec) and s.name for s in specs):
            raise TransferError(
                f"signature {key!r} has no input_signature of named TensorSpecs to describe"
            )
        outputs = function.get_concrete_function().structured_outputs
        if not isinstance(outputs, dict):
            raise TransferError(f"signature {key!r} does not return a dict of named outputs")
        probe = [
            tf.constant(np.linspace(-1, 1, int(np.prod([d or 2 for d in s.shape]))).reshape(
                [d or 2 for d in s.shape]).astype(s.dtype.as_numpy_dtype))
            for s in specs
        ]
        got = tf.nest.flatten(function(*probe))
        want = tf.nest.flatten(model(probe[0] if len(probe) == 1 else probe, training=False))
        if len(got) != len(want) or not all(
            np.allclose(np.asarray(g), np.asarray(w)) for g, w in zip(got, want)
        ):
            raise TransferError(
                f"signature {key!r} computes something other than the model's call: only "
                "that can be described to the worker"
            )
        described[key] = {
            "inputs": [
                {"name": s.name, "shape": s.shape.as_list(), "dtype": s.dtype.name} for s in specs
            ],
            "outputs": list(outputs),
        }
    return described


def _jsonable(value):
    """Call arguments as JSON: numbers, strings, booleans, lists and dicts of them."""
    try:
        json.dumps(value)
    except TypeError:
        raise NotImplementedError(f"call arguments {value!r} cannot be sent to a worker") from None
    return value


def _named(data):
    return {name: _storable(value) for name, value in data.items()}


def _storable(value):
    array = np.asarray(value)
    if array.dtype.kind == "O":
        array = array.astype(str)
    return array


def _arrays(result):
    """The arrays of a reply's ``{"npz", "count", "dtypes"}``, in their real dtypes."""
    with np.load(result["npz"], allow_pickle=False) as data:
        arrays = [data[f"a{i}"] for i in range(int(result["count"]))]
    out = []
    for array, dtype in zip(arrays, result.get("dtypes") or [None] * len(arrays)):
        if dtype == "bfloat16":
            import tensorflow as tf

            array = array.astype(tf.bfloat16.as_numpy_dtype)
        out.append(array)
    return out


class RemoteVariable:
    """A variable of a worker's model: its name, shape, dtype and value as reported."""

    conformance_standin = True

    def __init__(self, name, shape, dtype, value=None, trainable=True, kind=None):
        self.name, self.shape, self.dtype = name, tuple(shape), dtype
        self.trainable = trainable
        self.kind = kind  # the class of a listed object that is no variable, else None
        self._value = value

    def numpy(self):
        if self.kind is not None:
            raise TypeError(
                f"the worker's model lists a {self.kind} ({self.name}) among its variables: it "
                "has no value to compare"
            )
        return self._value

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._value, dtype=dtype)

    def assign(self, value):
        # The worker restores its model's variables after every call: nothing to put back.
        return self

    def assign_sub(self, delta):
        """A step on the reported value only (LOAD-REVIVE's gradient step asks whether one
        moves a variable); the worker's variable is left as it is."""
        self._value = np.asarray(self._value - np.asarray(delta).astype(self._value.dtype))
        return self

    def __repr__(self):
        return f"<RemoteVariable {self.name} shape={self.shape} dtype={self.dtype}>"


class RemoteLayer:
    """A layer of a worker's model, as reported; calling it calls the worker's layer."""

    conformance_standin = True

    def __init__(self, owner, key, entry):
        self.owner, self.key = owner, key
        self.name = entry["name"]
        self.class_name = entry["class"]
        self.trainable = bool(entry["trainable"])
        self.uses_training = bool(entry.get("uses_training"))
        regularization = entry.get("regularization") or {}
        self.regularization_count = int(regularization.get("count", 0))
        self.regularization_total = float(regularization.get("total", 0.0))
        self.variables = [
            RemoteVariable(v["name"], v["shape"], None) for v in entry.get("variables") or []
        ]
        self.revived = bool(entry.get("revived"))
        self.compute_dtype = str(entry.get("compute_dtype") or "")
        self.activity_regularizer = self._activity if entry.get("activity_regularizer") else None
        self.children = []

    def sublayers(self):
        return list(self.children)

    def __call__(self, x, training=False, **kwargs):
        return self.owner.call_layer(self.key, x, training=bool(training), kwargs=kwargs)

    def compute_mask(self, x, mask=None):
        if mask is not None:
            raise NotImplementedError("compute_mask with an incoming mask is not sent to a worker")
        return self.owner.mask(self.key, x)

    def _activity(self, y):
        return np.float64(self.owner.activity(self.key, y))

    def __repr__(self):
        return f"<RemoteLayer {self.name} ({self.class_name})>"


class RemoteModel:
    """A model living in the worker: the original a case compares with, or a loaded one.

    What the clauses read (``originals`` dispatches on ``conformance_standin``): calling it
    (the worker's outputs as numpy arrays; its variables restored afterwards), ``losses``
    after that call, ``variables`` / ``trainable_variables`` / ``non_trainable_variables``
    with their reported values, the layer tree (``sublayers()``, ``layers_by_name()``),
    ``trainable`` and ``expects_training``. After a worker restart it is made again, from its
    spec or its path (the strategies build a spec bitwise identically).
    """

    conformance_standin = True

    def __init__(self, impl, *, spec=None, path=None):
        self.impl, self.spec, self.path = impl, spec, path
        self.source = None  # a live model's config and weights (ProcessImplementation.save)
        self.key = None
        self._generation = None
        self._described = None
        self.losses = []
        self.optimizer = None

    # -- the worker's model -------------------------------------------------------------

    def acquire(self):
        worker = self.impl.worker
        if self.path is not None and self.spec is None and self.source is None:
            reply = worker.request("load", path=self.path)
        elif self.source is not None:
            reply = worker.request("build", **self.source)
        else:
            reply = worker.request("build", spec=self.spec.to_dict())
        self.key, self._generation = reply["model"], worker.generation

    def request(self, op, **fields):
        worker = self.impl.worker
        if self._generation != worker.generation or worker.proc is None:
            if worker.proc is None:
                worker.start()
            self.acquire()
        try:
            return worker.request(op, model=self.key, **fields)
        except RemoteError as exc:
            if "unknown model" not in str(exc):
                raise
            self.acquire()  # evicted by the worker: made again
            return worker.request(op, model=self.key, **fields)

    def _description(self):
        if self._described is None:
            reply = self.request("describe", dir=self.impl.new_dir())
            self._described = self._read(reply["original"])
        return self._described

    def _read(self, original):
        values = _arrays(original["values"])
        variables = [
            RemoteVariable(v["name"], v["shape"], v["dtype"], value, kind=v.get("kind"))
            for v, value in zip(original["variables"], values)
        ]
        table = original["layers"]
        layers = {key: RemoteLayer(self, key, entry) for key, entry in table.items()}
        for key, entry in table.items():
            layers[key].children = [layers[child] for child in entry["children"]]
        root = layers["0"]
        return {
            "name": original["name"],
            "class": original["class"],
            "trainable": bool(original["trainable"]),
            "expects_training": bool(original["expects_training"]),
            "variables": variables,
            "trainable_variables": [variables[i] for i in original["trainable_variables"]],
            "non_trainable_variables": [
                variables[i] for i in original["non_trainable_variables"]
            ],
            "regularization": original["regularization"],
            "root": root,
            "layers": layers,
        }

    # -- what the clauses read ----------------------------------------------------------

    @property
    def name(self):
        return self._description()["name"]

    @property
    def class_name(self):
        return self._description()["class"]

    @property
    def trainable(self):
        return self._description()["trainable"]

    @property
    def expects_training(self):
        return self._description()["expects_training"]

    @property
    def uses_training(self):
        return self._description()["root"].uses_training

    @property
    def variables(self):
        return list(self._description()["variables"])

    weights = variables

    @property
    def trainable_variables(self):
        return list(self._description()["trainable_variables"])

    @property
    def non_trainable_variables(self):
        return list(self._description()["non_trainable_variables"])

    @property
    def regularization_count(self):
        return int(self._description()["regularization"]["count"])

    @property
    def regularization_total(self):
        return float(self._description()["regularization"]["total"])

    @property
    def activity_regularizer(self):
        return None  # the root's own; the layers' are on their stand-ins

    @property
    def layers(self):
        return self.sublayers()

    def sublayers(self):
        return self._description()["root"].sublayers()

    def revived_classes(self):
        """The classes of the model and its layers revived from saved functions."""
        return sorted({
            layer.class_name for layer in self._description()["layers"].values() if layer.revived
        })

    def compute_dtypes(self):
        """The compute dtypes of the model and its layers (mixed precision shows here)."""
        return {layer.compute_dtype for layer in self._description()["layers"].values()}

    def layers_by_name(self):
        out = {}
        for key, layer in self._description()["layers"].items():
            if key != "0":
                out.setdefault(layer.name, layer)
        return out

    def __call__(self, inputs, training=False):
        structure, named = self._structure(inputs)
        directory = self.impl.new_dir()
        path = os.path.join(directory, "inputs.npz")
        np.savez(path, **named)
        reply = self.request("call", inputs=path, training=bool(training), dir=directory,
                             structure=structure)
        self.losses = _arrays(reply["losses"])
        return _arrays(reply["outputs"])

    def _structure(self, inputs):
        names = [i.name for i in self.spec.inputs] if self.spec is not None else None
        if isinstance(inputs, dict):
            return {"kind": "dict", "names": list(inputs)}, _named(inputs)
        if isinstance(inputs, (list, tuple)):
            names = names if names and len(names) == len(inputs) else [
                f"input_{i}" for i in range(len(inputs))
            ]
            return {"kind": "list", "names": names}, _named(dict(zip(names, inputs)))
        name = names[0] if names else "input_0"
        return {"kind": "single", "names": [name]}, _named({name: inputs})

    def call_layer(self, key, x, *, training, kwargs=None):
        directory = self.impl.new_dir()
        path = os.path.join(directory, "inputs.npz")
        np.savez(path, x=_storable(x))
        extra = {"kwargs": _jsonable(kwargs)} if kwargs else {}
        reply = self.request(
            "call", layer=key, inputs=path, training=training, dir=directory, **extra
        )
        outputs = _arrays(reply["outputs"])
        return outputs[0] if kwargs and len(outputs) == 1 else outputs

    def mask(self, key, x):
        directory = self.impl.new_dir()
        path = os.path.join(directory, "inputs.npz")
        np.savez(path, x=_storable(x))
        masks = _arrays(self.request("mask", layer=key, inputs=path, dir=directory)["mask"])
        return masks[0] if masks else None

    def gradients(self, inputs, variables):
        """Gradients of the clauses' fixed loss for ``variables`` (this model's trainable
        ones), computed by the worker; None where the loss does not reach a variable."""
        structure, named = self._structure(inputs)
        directory = self.impl.new_dir()
        path = os.path.join(directory, "inputs.npz")
        np.savez(path, **named)
        reply = self.request("gradients", inputs=path, structure=structure, dir=directory)
        found = iter(_arrays(reply["gradients"]))
        grads = [next(found) if present else None for present in reply["gradients"]["present"]]
        by_variable = dict(zip(map(id, self.trainable_variables), grads))
        return [by_variable.get(id(v)) for v in variables]

    def activity(self, key, y):
        directory = self.impl.new_dir()
        path = os.path.join(directory, "inputs.npz")
        np.savez(path, y=_storable(y))
        return self.request("activity", layer=key, inputs=path)["value"]

    def __repr__(self):
        where = f"spec seed {self.spec.seed}" if self.spec is not None else self.path
        return f"<RemoteModel {self.key} ({where}) in {self.impl.python}>"


def process_implementation(spec):
    """The ``ProcessImplementation`` of ``python:PYTHON:TARGET``."""
    python, target = parse(spec)
    return ProcessImplementation(python, target, spec=spec)


def _main():  # pragma: no cover - a manual smoke check: python -m conformance.remote SPEC
    impl = process_implementation(sys.argv[1])
    print(impl, impl.versions)


if __name__ == "__main__":
    _main()
