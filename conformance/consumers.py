"""CONSUMER-TFLITE and CONSUMER-ONNX: converting a saved model and running the converted one.

A consumer takes a SavedModel directory through a pipeline of stages (``STAGES``): convert,
load the converted model, read its input and output names, run it, compare its values with
the serving signature's. The implementation's SavedModel must pass every stage.

A converter cannot handle every spec kind (TFLite's built-in ops have no float64 kernels,
tf2onnx emits ops onnxruntime lacks, ...). That is the consumer's limit, not the
implementation's fault, and telling the two apart must not depend on reading error messages.
So when the implementation's SavedModel fails a stage, the same model is saved a second way,
the *control*: a plain ``tf.saved_model.save`` of a ``tf.function`` that calls the model, with
inputs and outputs named as the contract says. If the control fails at that stage or earlier,
the failure is the consumer's ("unsupported by the converter", reported with the converter's
own message); if the control gets past it, the implementation's SavedModel is at fault.
"""

import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field

import numpy as np

from conformance.cache import LRUCache
from conformance.expected.names import expected_input_names, expected_output_names

STAGES = ("convert", "load", "names", "run", "values")

TFLITE = "tflite"
ONNX = "onnx"
CLAUSE_OF = {TFLITE: "CONSUMER-TFLITE", ONNX: "CONSUMER-ONNX"}

EXTRA_HINT = "pip install -e .[consumers]"
ONNX_MODULES = ("tf2onnx", "onnx", "onnxruntime")

# A tf2onnx conversion is a fresh interpreter importing TensorFlow: a few seconds; a large
# drawn model takes longer. A conversion still running after this is a failure of the stage.
CONVERT_TIMEOUT_S = 600

MESSAGE_LIMIT = 600

# The report keeps at most this many unsupported examples per test (the count is exact).
UNSUPPORTED_KEPT = 50


class StageError(Exception):
    """A pipeline stage failed; ``message`` is the converter's or the runtime's own words."""

    def __init__(self, stage, message):
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


def missing_onnx_modules():
    """The modules CONSUMER-ONNX needs that are not installed (without importing them)."""
    return [name for name in ONNX_MODULES if importlib.util.find_spec(name) is None]


def tflite_missing_reason():
    """Why CONSUMER-TFLITE cannot run here, or None."""
    from conformance.environment import quiet_tensorflow

    tf = quiet_tensorflow()
    lite = getattr(tf, "lite", None)
    if lite is None or not hasattr(lite, "TFLiteConverter") or not hasattr(lite, "Interpreter"):
        return f"tf.lite (TFLiteConverter and Interpreter) is not in TensorFlow {tf.__version__}"
    return None


# -- messages ----------------------------------------------------------------------------

_LOC = re.compile(r"^\s*(<unknown>:0: )?(error: )?loc\(.*?\): (error: )?")
_SUMMARY = ("TF Select ops:", "Custom ops:", "Flex ops:", "Lowering tensor list ops")


def converter_message(text):
    """The converter's own message, shortened: its summary lines, else its first error."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    summary = [line for line in lines if line.startswith(_SUMMARY) or _SUMMARY[-1] in line]
    if summary:
        picked = summary
    else:
        errors = [_LOC.sub("", line) for line in lines if "error" in line.lower()]
        picked = errors[:2] or lines[-2:]
    return _shorten(" | ".join(dict.fromkeys(picked)))


_LONG_PATH = re.compile(r"[\w.:+-]*(?:/[\w.:+-]+){2,}")


def _shorten(message):
    # Node paths (StatefulPartitionedCall/.../Gelu/Erfc) and temporary files: the last part.
    message = _LONG_PATH.sub(lambda m: "…/" + m.group(0).rsplit("/", 1)[1], message)
    return message[:MESSAGE_LIMIT] + ("…" if len(message) > MESSAGE_LIMIT else "")


def tf2onnx_message(stderr):
    """What tf2onnx said when it failed: its ERROR lines and the exception, shortened."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    picked = [
        re.sub(r"^.*? - ERROR - ", "", line)
        for line in lines
        if " - ERROR - " in line or "is not supported" in line
    ]
    exception = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    picked = list(dict.fromkeys(picked + exception[-1:]))
    return _shorten(" | ".join(picked)) if picked else converter_message(stderr)


# -- the consumers -----------------------------------------------------------------------


def _tflite_convert(saved_dir, workdir):
    from conformance.environment import quiet_tensorflow

    tf = quiet_tensorflow()
    try:
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(saved_dir), signature_keys=["serving_default"]
        )
        return converter.convert()
    except Exception as exc:
        raise StageError("convert", f"{type(exc).__name__}: {converter_message(exc)}") from None


def _tflite_load(content):
    from conformance.environment import quiet_tensorflow

    tf = quiet_tensorflow()
    try:
        with warnings.catch_warnings():
            # TF 2.21 warns that tf.lite.Interpreter moves to ai_edge_litert; it is still here.
            warnings.simplefilter("ignore")
            interpreter = tf.lite.Interpreter(model_content=content, num_threads=1)
        signatures = interpreter.get_signature_list()
        if "serving_default" not in signatures:
            raise StageError(
                "load", f"the converted model has no serving_default signature: {signatures}"
            )
        return interpreter
    except StageError:
        raise
    except Exception as exc:
        raise StageError("load", f"{type(exc).__name__}: {converter_message(exc)}") from None


class TFLiteModel:
    def __init__(self, interpreter):
        self.interpreter = interpreter
        self.runner = interpreter.get_signature_runner("serving_default")

    def names(self):
        signature = self.interpreter.get_signature_list()["serving_default"]
        return list(signature["inputs"]), list(signature["outputs"])

    def run(self, feed):
        return {name: np.asarray(value) for name, value in self.runner(**feed).items()}


def _onnx_convert(saved_dir, workdir):
    output = os.path.join(workdir, "model.onnx")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    command = [
        sys.executable,
        "-m",
        "tf2onnx.convert",
        "--saved-model",
        str(saved_dir),
        "--signature_def",
        "serving_default",
        "--output",
        output,
    ]
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S, env=env
        )
    except subprocess.TimeoutExpired:
        raise StageError("convert", f"tf2onnx ran over {CONVERT_TIMEOUT_S} s") from None
    if proc.returncode != 0 or not os.path.exists(output):
        raise StageError(
            "convert", f"tf2onnx exit {proc.returncode}: {tf2onnx_message(proc.stderr)}"
        )
    # tf2onnx writes a model even when it could not map an op (it logs an ERROR and keeps
    # the TensorFlow op); onnxruntime then refuses it. Keep its words for that message.
    said = [line for line in proc.stderr.splitlines() if " - ERROR - " in line]
    return output, tf2onnx_message("\n".join(said)) if said else ""


def _onnx_load(artifact):
    import onnxruntime

    path, tf2onnx_said = artifact

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        said = f" (tf2onnx logged: {tf2onnx_said})" if tf2onnx_said else ""
        raise StageError("load", f"onnxruntime: {converter_message(exc)}{said}") from None


class OnnxModel:
    def __init__(self, session):
        self.session = session

    def names(self):
        return (
            [i.name for i in self.session.get_inputs()],
            [o.name for o in self.session.get_outputs()],
        )

    def run(self, feed):
        names = [o.name for o in self.session.get_outputs()]
        values = self.session.run(names, {k: np.asarray(v) for k, v in feed.items()})
        return dict(zip(names, values))


@dataclass(frozen=True)
class Consumer:
    name: str
    convert: object  # (saved_dir, workdir) -> artifact
    load: object  # artifact -> runtime object
    wrap: object  # runtime object -> model with names() and run(feed)

    @property
    def clause_id(self):
        return CLAUSE_OF[self.name]


CONSUMERS = {
    TFLITE: Consumer(TFLITE, _tflite_convert, _tflite_load, TFLiteModel),
    ONNX: Consumer(ONNX, _onnx_convert, _onnx_load, OnnxModel),
}


# -- one pipeline ------------------------------------------------------------------------


@dataclass
class Expected:
    """What the converted model must have: names in the contract's terms, reference values."""

    inputs: list  # input names
    outputs: list  # output names, in the model's output order
    feed: dict  # input name -> array
    values: object  # output name -> array the serving signature computed (or a function)
    signature: str = ""  # the serving signature's own names, for messages


def run_pipeline(consumer, saved_dir, expected, *, check_values):
    """Take ``saved_dir`` through every stage; raise ``StageError`` at the first that fails.

    ``check_values(got, want, what)`` raises AssertionError when two arrays differ.
    """
    model = converted(consumer, saved_dir)
    try:
        inputs, outputs = model.names()
    except Exception as exc:
        raise StageError("names", f"{type(exc).__name__}: {exc}") from None
    if sorted(inputs) != sorted(expected.inputs) or sorted(outputs) != sorted(expected.outputs):
        raise StageError(
            "names",
            f"converted inputs {sorted(inputs)} and outputs {sorted(outputs)}; expected "
            f"inputs {sorted(expected.inputs)} and outputs {sorted(expected.outputs)}"
            + (f" ({expected.signature})" if expected.signature else ""),
        )
    try:
        got = model.run(expected.feed)
    except Exception as exc:
        raise StageError("run", f"{type(exc).__name__}: {converter_message(exc)}") from None
    values = expected.values() if callable(expected.values) else expected.values
    for name in expected.outputs:
        if name not in values:
            raise StageError("values", f"the serving signature has no output {name!r}")
        try:
            check_values(got[name], values[name], f"output {name!r}")
        except AssertionError as exc:
            raise StageError("values", str(exc)) from None


class ConversionCache:
    """Converted and loaded models of this process, by consumer and SavedModel files.

    The same files convert the same way, so a spec drawn again (with other inputs) or a
    control judged twice converts once; a conversion that failed fails again from here.
    """

    def __init__(self, size=16):
        self._entries = LRUCache(size)

    def get(self, consumer, saved_dir):
        pb = os.path.join(str(saved_dir), "saved_model.pb")
        stamp = os.stat(pb).st_mtime_ns if os.path.exists(pb) else None
        key = (consumer.name, os.path.abspath(str(saved_dir)), stamp)
        entry = self._entries.get(key, lambda: self._convert(consumer, saved_dir))
        if isinstance(entry, StageError):
            raise entry
        return entry

    @staticmethod
    def _convert(consumer, saved_dir):
        with tempfile.TemporaryDirectory(prefix=f"conformance-{consumer.name}-") as workdir:
            try:
                return consumer.wrap(consumer.load(consumer.convert(saved_dir, workdir)))
            except StageError as failure:
                return failure


@functools.cache
def conversion_cache():
    return ConversionCache()


def converted(consumer, saved_dir):
    """``saved_dir`` converted by ``consumer`` and loaded (cached); raises ``StageError``."""
    return conversion_cache().get(consumer, saved_dir)


# -- the control: the same computation through a plain tf.saved_model.save ------------------


def expected_names(spec, serving_inputs):
    """``(input names, output names)`` the contract gives the serving signature."""
    return expected_input_names(spec, serving_inputs), expected_output_names(spec)


def save_control(model, spec, input_keys, path):
    """Save ``model``'s inference call as a plain SavedModel with the contract's names.

    ``input_keys`` maps each spec input name to the serving input name. Shapes and dtypes
    come from the spec (batch dimension None), never from the implementation's files.
    """
    import tensorflow as tf

    import strategies

    by_key = {key: name for name, key in input_keys.items()}
    specs = {
        input_keys[i.name]: tf.TensorSpec([None, *i.shape], i.dtype, name=input_keys[i.name])
        for i in spec.inputs
    }
    output_names = expected_output_names(spec)

    def serve(**feed):
        data = {by_key[key]: value for key, value in feed.items()}
        outputs = tf.nest.flatten(model(strategies.call_inputs(spec, data), training=False))
        return dict(zip(output_names, outputs))

    function = tf.function(serve).get_concrete_function(**specs)
    holder = tf.Module()
    holder.model_variables = [_tf_variable(v) for v in model.variables]
    # Lookup tables are resources but not variables: the function captures them, so they
    # must be tracked too.
    holder.model_resources = _resources(model)
    holder.serve = function
    tf.saved_model.save(holder, str(path), signatures={"serving_default": function})


def _resources(model):
    """The tracked TensorFlow resources of ``model``'s layers that are not variables (a lookup
    layer's table), which a plain ``tf.Module`` holding the variables does not reach."""
    import tensorflow as tf

    found = []
    for layer in getattr(model, "_flatten_layers", lambda: [model])():
        for value in vars(layer).values():
            if isinstance(value, tf.saved_model.experimental.TrackableResource):
                found.append(value)
    return found


def _tf_variable(variable):
    """The ``tf.Variable`` behind a Keras 3 variable (tf_keras' variables are ones)."""
    import tensorflow as tf

    return variable if isinstance(variable, tf.Variable) else variable.value


class ControlCache:
    """Control SavedModels of this process, by spec; least recently used dropped first."""

    def __init__(self, size=16):
        self._paths = LRUCache(size, on_drop=lambda path: shutil.rmtree(path, ignore_errors=True))
        self._root = None
        self._counter = 0

    def get(self, case, input_keys):
        key = (case.framework, case.spec.to_json(), tuple(sorted(input_keys.items())))
        return self._paths.get(key, lambda: self._save(case, input_keys))

    def _save(self, case, input_keys):
        if self._root is None:
            import atexit

            self._root = tempfile.mkdtemp(prefix="conformance-controls-")
            atexit.register(shutil.rmtree, self._root, ignore_errors=True)
        self._counter += 1
        path = os.path.join(self._root, f"control-{self._counter}")
        model = case.model
        if getattr(model, "conformance_standin", False):
            # The original lives in another process (conformance.remote): the control only
            # asks whether the converter handles the spec, so the suite's own build serves.
            import strategies

            model = strategies.build_model(case.spec, framework=case.framework)
        save_control(model, case.spec, input_keys, path)
        return path


@functools.cache
def control_cache():
    return ControlCache()


# -- one example -------------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened to one example: ``checked``, or ``unsupported`` by the consumer."""

    status: str  # "checked" or "unsupported"
    stage: str = ""
    message: str = ""
    control: str = ""  # how far the control got, for unsupported examples

    def as_dict(self, spec):
        return {
            "status": self.status,
            "stage": self.stage,
            "message": self.message,
            "control": self.control,
            "spec": spec.to_json(),
            "kinds": sorted({node.kind for node in spec.nodes}),
            "dtype": spec.dtype,
        }


def check_case(consumer, case, data, *, check_values):
    """Convert ``case``'s SavedModel with ``consumer`` and check it against its serving signature.

    Returns an ``Outcome``; raises AssertionError when the implementation's SavedModel is at
    fault (a stage the control passes).
    """
    from conformance.savedmodel import calls, tree

    serving_inputs, serving_outputs = tree.serving_signature(case.loaded)
    feed = calls.serving_feed(case.loaded, case.spec, data)
    inputs, outputs = expected_names(case.spec, serving_inputs)
    # Names wrong at the source are the implementation's, whatever a converter makes of them.
    if sorted(serving_inputs) != sorted(inputs) or sorted(serving_outputs) != sorted(outputs):
        raise AssertionError(
            f"serving_default names its inputs {sorted(serving_inputs)} and outputs "
            f"{sorted(serving_outputs)}, the contract {sorted(inputs)} and {sorted(outputs)} "
            "(SIG-SERVING): a converted model keeps the serving signature's names"
        )
    result = case.loaded.signatures["serving_default"](**feed)
    values = {name: np.asarray(result[name]) for name in outputs if name in result}
    signature = (
        f"serving_default's own: inputs {sorted(serving_inputs)}, outputs {sorted(serving_outputs)}"
    )
    expected = Expected(inputs, outputs, feed, values, signature=signature)
    try:
        run_pipeline(consumer, case.path, expected, check_values=check_values)
        return Outcome("checked")
    except StageError as failure:
        return _judge(consumer, case, data, failure, check_values=check_values)


def _judge(consumer, case, data, failure, *, check_values):
    """The implementation's SavedModel failed ``failure.stage``: is the consumer to blame?"""
    from conformance.savedmodel import calls

    spec = case.spec
    input_keys = calls.serving_feed(case.loaded, spec, {n: n for n in spec.input_names()})
    input_keys = {name: key for key, name in input_keys.items()}
    if set(input_keys) != set(spec.input_names()):
        # The serving signature does not even take the model's inputs: name them as the spec.
        input_keys = {name: name for name in spec.input_names()}
    control_path = control_cache().get(case, input_keys)
    feed = {input_keys[name]: data[name] for name in spec.input_names()}

    def control_values():
        result = _load(control_path).signatures["serving_default"](**feed)
        return {name: np.asarray(value) for name, value in result.items()}

    inputs = list(input_keys.values()) if spec.topology == "subclassed" else spec.input_names()
    _, outputs = expected_names(spec, inputs)
    control_expected = Expected(
        inputs=list(inputs), outputs=outputs, feed=feed, values=control_values
    )
    try:
        run_pipeline(consumer, control_path, control_expected, check_values=check_values)
        control_stage = None
    except StageError as control_failure:
        control_stage = control_failure
    if control_stage is not None and STAGES.index(control_stage.stage) <= STAGES.index(
        failure.stage
    ):
        return Outcome(
            "unsupported",
            stage=failure.stage,
            message=failure.message + _select_ops_note(failure.message, spec),
            control=f"a plain tf.saved_model.save of the model fails {control_stage.stage} too",
        )
    got_to = "passes every stage" if control_stage is None else f"gets to {control_stage.stage}"
    raise AssertionError(
        f"{consumer.name}: the implementation's SavedModel fails at {failure.stage}: "
        f"{failure.message}\n  a plain tf.saved_model.save of the same model {got_to}, so the "
        f"{consumer.name} consumer is not the one to blame"
    )


def _select_ops_note(message, spec):
    """One line on why a converter lists ordinary ops (MatMul, AddV2) as TF Select ops."""
    if "TF Select ops" not in message:
        return ""
    if spec.dtype != "float32":
        return (
            f" (TFLite's built-in kernels take float32: in a {spec.dtype} model even ordinary "
            "ops need TF Select, which the interpreter here does not link)"
        )
    return " (ops TFLite has no built-in kernel for at these shapes: they need TF Select)"


def _load(path):
    from conformance.savedmodel import tree

    return tree.load(path)


# -- the tally of one test ---------------------------------------------------------------


@dataclass
class Tally:
    """The examples of one consumer test: how many were checked, which were unsupported."""

    clause_id: str
    checked: int = 0
    unsupported: list = field(default_factory=list)

    def add(self, outcome, spec):
        from hypothesis import event

        if outcome.status == "checked":
            self.checked += 1
            event(f"{self.clause_id}: converted and checked")
        else:
            self.unsupported.append(outcome.as_dict(spec))
            event(f"{self.clause_id}: unsupported at {outcome.stage}")

    def as_property(self):
        return {
            "checked": self.checked,
            "unsupported_count": len(self.unsupported),
            "unsupported": self.unsupported[:UNSUPPORTED_KEPT],
        }

    def summary(self):
        """The distinct (stage, message) pairs of the unsupported examples, counted."""
        counts = {}
        for entry in self.unsupported:
            key = (entry["stage"], entry["message"])
            counts[key] = counts.get(key, 0) + 1
        return "; ".join(f"{n}× {stage}: {message}" for (stage, message), n in counts.items())
