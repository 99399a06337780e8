"""Standalone reproducer scripts: the source ``python -m conformance reproduce`` writes.

The script rebuilds the failing example's model as plain Keras 3 / tf_keras code (each layer's
class with its non-default constructor arguments, read from the built layer's ``get_config``;
a lookup layer's vocabulary written out), sets its weights from values written into the
script, compiles and trains it as the spec says, saves and loads it with the implementation's
public calls, checks what the clause checks (``conformance.reproducers.checks``) and exits 1
while the divergence is there, 0 once it is gone. It imports neither ``conformance`` nor
``strategies``. The plugin writes one beside a report for each failure (``write_beside``).
"""

import inspect
import re
from dataclasses import replace

from conformance.reproducers.checks import (
    CHECKS,
    FILES,
    FIXTURE_CHECKS,
    FIXTURE_FUNCTIONS,
    HELPERS,
    MAIN,
    TREE,
    TREE_NAMES,
)

# Clauses whose check a script reproduces, in the contract's order.
COVERED = tuple(c for c in (
    "FORMAT-KERAS-API", "VARS-EXACT", "LAYERS-TREE", "CALL-INFERENCE", "CALL-TRAINING",
    "CALL-CONSISTENT", "LOSSES-REGULARIZATION", "LOSSES-ACTIVITY", "SIG-SERVING", "SIG-DYNAMIC",
    "SAVE-UNBUILT", "SAVE-OVERWRITE", "SAVE-OPTIMIZER", "SAVE-SIGNATURES", "SAVE-NO-MUTATION",
    "SAVE-CONCURRENT", "SAVE-ASSETS",
    "LOAD-REVIVE", "LOAD-RESAVE", "LOAD-CORRUPT", "LOAD-RESUME",
    "CONSUMER-TFLITE", "CONSUMER-ONNX",
) if c in CHECKS or c in FIXTURE_CHECKS)
# Of those, the clauses whose scripts build the clause's own fixed models (any spec ignored).
FIXTURE_CLAUSES = tuple(c for c in COVERED if c in FIXTURE_CHECKS)
# Clauses a standalone script cannot reproduce, and why.
REFUSED = {
    "SIG-STABLE": "it compares fingerprints across separate processes and hash seeds and with "
    "the reference's golden values, which one script's single save cannot",
    "SAVE-ATOMIC": "it kills the saving process and injects faults into each file operation "
    "of the save, which needs the suite's fault harness (conformance/clauses/test_durability.py)",
    "LOAD-HOSTILE": "it applies the mutation engine of conformance/hostile.py to the files, "
    "which a script does not carry",
    "LOAD-LEGACY": "it loads the legacy corpus files written by older TensorFlow versions "
    "(conformance/corpus/legacy), which a script cannot carry",
}
FRAMEWORK_OF = {"reference": "keras", "keras_export": "keras", "tf_keras": "tf_keras"}
# Constructor arguments left out: weights are set from the script's values; input shapes
# come from the Input.
_SKIPPED = ("batch_input_shape", "input_shape", "batch_shape", "input_dim_")


class ReproduceError(ValueError):
    """A failure or spec the command cannot turn into a script (says why)."""


# --- the model as code ---------------------------------------------------------------------


def _policy_name(value):
    if isinstance(value, dict):
        return value.get("config", {}).get("name", "float32")
    return getattr(value, "name", value)


def _plain(value):
    """Plain lists, tuples and dicts (tf_keras' configs hold tracked ListWrapper/DictWrapper)."""
    from collections.abc import Mapping

    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _value_code(key, value):
    """A constructor argument as Python source."""
    if isinstance(value, dict) and "class_name" in value:
        if key in ("layer", "cell", "forward_layer", "backward_layer"):
            return f"K.layers.deserialize({value!r})"
        for suffix, module in (("_regularizer", "regularizers"), ("_constraint", "constraints")):
            if key.endswith(suffix) or key == suffix[1:]:
                name = value.get("registered_name") or value["class_name"]
                if name.startswith("ksc>"):
                    name = name[4:]
                config = value.get("config", {})
                args = ", ".join(f"{k}={v!r}" for k, v in config.items())
                where = "" if name.startswith("Ksc") else f"K.{module}."
                return f"{where}{name}({args})"
        return f"K.layers.deserialize({value!r})"
    if isinstance(value, list | tuple) and value and all(isinstance(v, list) for v in value):
        return repr([tuple(v) for v in value])
    return repr(value)


def _default_of(cls, key):
    for klass in cls.__mro__:
        try:
            parameters = inspect.signature(klass.__init__).parameters
        except (TypeError, ValueError):
            continue
        if key in parameters and parameters[key].default is not inspect.Parameter.empty:
            return parameters[key].default
        if key in parameters:
            return inspect.Parameter.empty
    return inspect.Parameter.empty


def _same(value, default):
    if value == default:
        return True
    # Sequences: config lists, signature tuples
    if isinstance(value, list | tuple) and isinstance(default, list | tuple):
        return list(value) == list(default)
    if isinstance(value, list | tuple) and isinstance(default, int):
        return all(v == default for v in value)
    return False


def _vocabulary(layer):
    """A lookup layer's vocabulary as a list (its special tokens left to its arguments)."""
    get = getattr(layer, "get_vocabulary", None)
    if get is None:
        return None
    values = list(get(include_special_tokens=False))
    return [v.decode() if isinstance(v, bytes) else _plain_scalar(v) for v in values]


def _plain_scalar(value):
    return value.item() if hasattr(value, "item") else value


def layer_code(layer):
    """``K.layers.Dense(units=4, ...)`` for a built layer: its non-default config arguments."""
    cls = type(layer)
    name = cls.__name__
    where = "" if name.startswith("Ksc") else "K.layers."
    config = _plain(layer.get_config())
    args = [f"name={layer.name!r}"]
    vocabulary = _vocabulary(layer)
    if vocabulary is not None:  # given as a file or adapted: written out as a list
        config["vocabulary"] = vocabulary
    for key, value in config.items():
        if key == "name" or key in _SKIPPED or key.endswith("_initializer"):
            continue
        if key == "dtype":
            policy = _policy_name(value)
            if policy != "float32":
                args.append(f"dtype={policy!r}")
            continue
        if key == "trainable":
            if not value:
                args.append("trainable=False")
            continue
        default = _default_of(cls, key)
        if default is not inspect.Parameter.empty and _same(value, default):
            continue
        if value is None and default is inspect.Parameter.empty:
            continue
        args.append(f"{key}={_value_code(key, value)}")
    return f"{where}{name}({', '.join(args)})"


def _walk_layers(model):
    out = {}

    def visit(layer):
        for child in getattr(layer, "layers", ()):
            out.setdefault(child.name, child)
            visit(child)

    visit(model)
    return out


def _call_code(node, var, args):
    from strategies.catalog import FIXED, REGISTRY

    kind = REGISTRY.get(node.kind) or FIXED.get(node.kind)
    kwargs = kind.call_kwargs(node.param_dict) if kind else {}
    extra = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    if kind is None or kind.arity == "unary":
        return f"{var}({args[0]}{extra})"
    if kind.arity == "merge" or node.kind != "MultiHeadAttention":
        return f"{var}([{', '.join(args)}])"
    return f"{var}({args[0]}, {args[1]})"


def _graph_code(spec, layers, fn_name, trainable=True):
    """Source of ``def fn_name():`` building a Sequential or functional model of ``spec``."""
    lines, subs = [f"def {fn_name}():"], []
    made = {}
    for node in spec.nodes:
        var = re.sub(r"\W", "_", node.layer_name)
        if node.shares:
            made[node.id] = made[node.shares]
            continue
        made[node.id] = var
        if node.submodel is not None:
            sub_fn = f"build_{var}"
            subs.append(_graph_code(node.submodel, layers, sub_fn, node.frozen != "before"))
            lines.append(f"    {var} = {sub_fn}()")
        else:
            lines.append(f"    {var} = {layer_code(layers[node.layer_name])}")
    ins = []
    for i in spec.inputs:
        shape = tuple(i.model_shape)
        lines.append(
            f"    {i.name} = K.Input(shape={shape!r}, dtype={i.dtype!r}, "
            f"batch_size={i.batch_size!r}, name={i.name!r})"
        )
        ins.append(i.name)
    if spec.topology == "sequential":
        items = ", ".join([ins[0]] + [made[n.id] for n in spec.nodes])
        lines.append(f"    model = K.Sequential([{items}], name={spec.name!r})")
    else:
        for node in spec.nodes:
            args = [r if r in ins else f"x_{r}" for r in node.inputs]
            lines.append(f"    x_{node.id} = {_call_code(node, made[node.id], args)}")
        outs = [f"x_{o}" for o in spec.outputs]
        if spec.dict_inputs:
            model_in = "{" + ", ".join(f"{n!r}: {n}" for n in ins) + "}"
        else:
            model_in = ins[0] if len(ins) == 1 else f"[{', '.join(ins)}]"
        model_out = outs[0] if len(outs) == 1 else f"[{', '.join(outs)}]"
        lines.append(f"    model = K.Model(inputs={model_in}, outputs={model_out}, "
                     f"name={spec.name!r})")
    if not trainable:
        lines.append("    model.trainable = False")
    lines.append("    return model")
    return "\n\n\n".join(subs + ["\n".join(lines)])


def _subclassed_code(spec, layers):
    """Source of a small ``K.Model`` subclass wired as ``spec`` and ``def build_layers():``."""
    subs, init, call = [], [], []
    attr = {}
    for node in spec.nodes:
        if node.shares:
            attr[node.id] = attr[node.shares]
            continue
        var = re.sub(r"\W", "_", node.layer_name)
        attr[node.id] = f"self.{var}"
        if node.submodel is not None:
            subs.append(_graph_code(node.submodel, layers, f"build_{var}",
                                    node.frozen != "before"))
            init.append(f"        self.{var} = build_{var}()")
        else:
            init.append(f"        self.{var} = {layer_code(layers[node.layer_name])}")
    specs = [
        f"K.layers.InputSpec(shape={(None, *i.model_shape)!r}, dtype={i.dtype!r}, "
        f"name={i.name!r})"
        for i in spec.inputs
    ]
    one = len(specs) == 1 and not spec.dict_inputs
    init.append("        # the shapes and dtypes the model is called with, for the savers")
    init.append(f"        self.input_spec = {specs[0] if one else '[' + ', '.join(specs) + ']'}")
    names = [i.name for i in spec.inputs]
    if spec.dict_inputs:
        call += [f"        {n} = inputs[{n!r}]" for n in names]
    elif len(names) > 1:
        call.append(f"        {', '.join(names)} = inputs")
    else:
        call.append(f"        {names[0]} = inputs")
    for node in spec.nodes:
        args = [r if r in names else f"x_{r}" for r in node.inputs]
        call.append(f"        x_{node.id} = {_call_code(node, attr[node.id], args)}")
    outs = [f"x_{o}" for o in spec.outputs]
    call.append(f"        return {outs[0] if len(outs) == 1 else '[' + ', '.join(outs) + ']'}")
    probes = {
        i.name: f"np.full({((i.batch_size or 1), *i.shape)!r}, 'w0')" if i.dtype == "string"
        else f"np.zeros({((i.batch_size or 1), *i.shape)!r}, dtype={i.dtype!r})"
        for i in spec.inputs
    }
    if spec.dict_inputs:
        probe = "{" + ", ".join(f"{k!r}: {v}" for k, v in probes.items()) + "}"
    else:
        values = list(probes.values())
        probe = values[0] if len(values) == 1 else "[" + ", ".join(values) + "]"
    source = (
        "class SpecModel(K.Model):\n"
        "    def __init__(self):\n"
        f"        super().__init__(name={spec.name!r}, dtype={spec.dtype!r})\n"
        + "\n".join(init)
        + "\n\n    def call(self, inputs, training=None):\n"
        + "\n".join(call)
        + "\n\n\ndef build_layers():\n"
        "    model = SpecModel()\n"
        f"    model({probe})  # built by a first call, as the suite builds it\n"
        "    return model\n"
    )
    return "\n\n\n".join(subs + [source])


def _custom_code(framework):
    """The ``Ksc*`` classes' source, defined for ``K`` (from strategies/catalog/custom.py)."""
    from strategies.catalog import custom

    source = inspect.getsource(custom.custom_objects)
    marker = "import tensorflow as tf  # lazily: drawing specs must not need TensorFlow\n"
    body = source.split(marker)[1]
    body = body.split("    _UNREGISTERED[fw]")[0]
    for line in ("    reg = _register(K)\n", '    legacy = fw == "tf_keras"\n'):
        body = body.replace(line, "")  # written out below for the script's framework
    names = re.findall(r"^    class (Ksc\w+)", body, flags=re.M)
    register = (
        "    reg = K.saving.register_keras_serializable(package='ksc')\n"
        if framework == "keras"
        else "    reg = K.utils.register_keras_serializable(package='ksc')\n"
    )
    return (
        "def define_custom_classes():\n"
        "    # This project's custom classes (strategies/catalog/custom.py), written out.\n"
        f"    fw = {framework!r}\n"
        "    legacy = fw == 'tf_keras'\n"
        + register
        + body.rstrip()
        + "\n    return {"
        + ", ".join(f"{n!r}: {n}" for n in names)
        + "}\n\n\nglobals().update(define_custom_classes())\n"
    )


def _array_code(arr):
    import numpy as np

    arr = np.asarray(arr)
    return f"np.array({arr.tolist()!r}, dtype={arr.dtype.name!r}).reshape({arr.shape!r})"


# --- implementation and checks ----------------------------------------------------------------

_IMPL = {
    "reference": (
        "import reference_impl\n\n\n"
        "def save(model, path, **kwargs):\n    reference_impl.save(model, path, **kwargs)\n\n\n"
        "def load(path):\n    return reference_impl.load(path)\n"
    ),
    "tf_keras": (
        "def save(model, path, **kwargs):\n"
        "    model.save(path, save_format='tf', **kwargs)\n\n\n"
        "def load(path):\n    return tf_keras.models.load_model(path)\n"
    ),
    "keras_export": (
        "def save(model, path, overwrite=True, include_optimizer=True, signatures=None):\n"
        "    # as the suite's keras_export adapter calls Keras: an existing path is refused\n"
        "    # (overwrite=False) or replaced as a whole; include_optimizer has no effect (an\n"
        "    # inference export); signatures become the endpoints of an ExportArchive\n"
        "    if os.path.exists(path):\n"
        "        if not overwrite:\n"
        "            raise FileExistsError(f'{path} exists and overwrite=False')\n"
        "        shutil.rmtree(path)\n"
        "    if signatures is None:\n"
        "        model.export(path, format='tf_saved_model', verbose=False)\n"
        "        return\n"
        "    archive = keras.export.ExportArchive()\n"
        "    archive.track(model)\n"
        "    for key, function in signatures.items():\n"
        "        archive.add_endpoint(key, function)\n"
        "    archive.write_out(path, verbose=False)\n\n\n"
        "def load(path):\n    return keras.layers.TFSMLayer(path, call_endpoint='serve')\n"
    ),
}


def _impl_code(impl):
    if impl in _IMPL:
        return _IMPL[impl]
    module, _, attr = impl.partition(":")
    if not module or not attr:
        raise ReproduceError(f"--impl {impl!r} is neither a built-in name nor module:Attr")
    return (
        f"from {module} import {attr.split('.')[0]} as _ADAPTER  # the adapter under test\n"
        f"IMPL = _ADAPTER{''.join('.' + p for p in attr.split('.')[1:])}\n"
        "IMPL = IMPL() if isinstance(IMPL, type) else IMPL\n\n\n"
        "def save(model, path, **kwargs):\n    IMPL.save(model, path, **kwargs)\n\n\n"
        "def load(path):\n    return IMPL.load(path)\n"
    )


# Kinds the script does not build yet (none: lookup vocabularies are written out). Kept for
# the callers that ask.
UNWRITTEN_KINDS = frozenset()
# The lengths past the probe an open axis is called at (SIG-DYNAMIC's; the shared examples
# draw theirs from the probe length up).
OPEN_EXTRAS = (1, 3)


def _data(spec, seed=0, lengths=None):
    """Deterministic call inputs (the report keeps the spec, not the drawn batch); an open
    axis at ``lengths[(input, axis)]``, else at its probe length."""
    import numpy as np

    rng = np.random.default_rng(seed)
    batch = next((i.batch_size for i in spec.inputs if i.batch_size), 2)
    data = {}
    for i in spec.inputs:
        dims = tuple((lengths or {}).get((i.name, a), d) for a, d in enumerate(i.shape))
        shape = (batch, *dims)
        if i.dtype == "string":  # tokens w0.. as the strategies draw them
            ids = rng.integers(0, i.vocab or 2, shape)
            data[i.name] = np.vectorize(lambda k: f"w{k}", otypes=[object])(ids)
        elif "int" in i.dtype:
            data[i.name] = rng.integers(0, i.vocab or 2, shape).astype(i.dtype)
        else:
            data[i.name] = (rng.standard_normal(shape) * 0.5).astype(i.dtype)
    return data


def _datasets(spec):
    """The data sets a check runs on: the probe lengths, then each open axis longer."""
    from strategies.opendims import open_lengths

    sets = [_data(spec)]
    if spec.open_inputs():
        sets += [_data(spec, seed=extra, lengths=open_lengths(spec, extra))
                 for extra in OPEN_EXTRAS]
    return sets


def _data_code(data):
    return "{\n" + "".join(f"        {k!r}: {_array_code(v)},\n" for k, v in data.items()) + "    }"


def _resume_training(spec):
    """LOAD-RESUME's training for a spec without one (the clause's: Adam, mse, one step)."""
    from strategies.spec import TrainingSpec

    if spec.training is not None:
        return spec
    n = len(spec.outputs)
    return replace(
        spec, training=TrainingSpec("adam", 0.01, ("mse",) * n, (1.0,) * n, ((),) * n, steps=1)
    )


def _training_code(spec):
    """``compile_and_train(model)``: the spec's compile and ``train_on_batch`` steps."""
    from strategies.generate import training_batch

    training = spec.training
    custom = sorted({m for ms in training.metrics for m in ms if m.startswith("ksc")})
    if custom:
        raise ReproduceError(f"no reproducer for a spec compiled with the custom metric(s) "
                             f"{', '.join(custom)} yet: their classes are not written out")
    rate = repr(training.learning_rate)
    if training.decay_steps:
        rate = (f"K.optimizers.schedules.ExponentialDecay({rate}, "
                f"decay_steps={training.decay_steps}, decay_rate=0.5)")
    optimizer = {
        "adam": f"K.optimizers.Adam(learning_rate={rate})",
        "sgd": f"K.optimizers.SGD(learning_rate={rate}, momentum={training.momentum!r})",
        "rmsprop": f"K.optimizers.RMSprop(learning_rate={rate})",
    }[training.optimizer]
    single = len(spec.outputs) == 1
    loss = repr(training.losses[0] if single else list(training.losses))
    metrics = repr(list(training.metrics[0]) if single else [list(m) for m in training.metrics])

    def batch_code(seed):
        data, targets = training_batch(spec, seed)
        return (f"({_data_code(data)}, [\n"
                + "".join(f"        {_array_code(t)},\n" for t in targets) + "    ])")

    steps = [batch_code(training.seed + step) for step in range(training.steps)]
    return (
        "# The spec's training: each step on its own seeded batch (inputs, targets).\n"
        "TRAINING_BATCHES = [\n" + "".join(f"    {b},\n" for b in steps) + "]\n"
        f"NEXT_BATCH = {batch_code(training.seed + training.steps)}\n\n\n"
        "def compile_and_train(model):\n"
        f"    model.compile(optimizer={optimizer}, loss={loss}, "
        f"loss_weights={list(training.loss_weights)!r}, metrics={metrics})\n"
        "    for data, targets in TRAINING_BATCHES:\n"
        "        model.train_on_batch(model_inputs(data), targets[0] if len(targets) == 1 "
        "else targets)\n"
    )


def _node_input(spec, node, rng):
    """Made-up data for a node's (first) input, batch 2, its first step masked (as LOAD-REVIVE
    makes it)."""
    from strategies.catalog import REGISTRY

    shapes = {i.name: (i.shape, i.dtype) for i in spec.inputs}
    shapes.update({n.id: (n.out_shape, spec.dtype) for n in spec.nodes})
    shape, dtype = shapes[node.inputs[0]]
    params = node.param_dict
    if REGISTRY[node.kind].dtypes == ("int32",):
        x = rng.integers(0, params.get("input_dim", 2), size=(2, *shape)).astype("int32")
    else:
        x = rng.uniform(-1.0, 1.0, size=(2, *shape)).astype(dtype)
    if len(shape) >= 2:
        x[:, 0] = params.get("mask_value", 0)
    return x


def _layer_probes_code(spec):
    """``LAYER_PROBES``: (layer name, input, makes a mask, call arguments) of every layer
    whose mask or non-default call arguments LOAD-REVIVE compares."""
    import numpy as np

    from strategies.catalog import REGISTRY

    rng = np.random.default_rng(0)
    rows = []
    for node in spec.nodes:
        kind = REGISTRY.get(node.kind)
        if kind is None or node.shares or node.submodel is not None:
            continue
        makes_mask = kind.produces_mask(node.param_dict, False)
        call_kwargs = kind.call_kwargs(node.param_dict)
        if makes_mask or call_kwargs:
            x = _node_input(spec, node, rng)
            rows.append(f"    ({node.layer_name!r}, {_array_code(x)}, {bool(makes_mask)!r}, "
                        f"{dict(call_kwargs)!r}),\n")
    return ("# The layers whose masks and call arguments are compared, with made-up inputs.\n"
            "LAYER_PROBES = [\n" + "".join(rows) + "]\n")


def _functions_code():
    """The call-graph reading of conformance/savedmodel/functions.py, written out."""
    from conformance.savedmodel import functions

    names = ("read_meta_graph", "_callees", "reachable_functions", "signature_functions",
             "layer_call_functions", "layer_functions_called_by_signature")
    return (
        "# Which saved functions call which, read from saved_model.pb's function library.\n"
        f"CALL_FUNCTIONS = {functions.CALL_FUNCTIONS!r}\n\n\n"
        + "\n\n".join(inspect.getsource(getattr(functions, n)) for n in names)
    )


def refusal(spec, clause):
    """Why no script reproduces ``clause`` (on ``spec``, when given), or None."""
    if clause in REFUSED:
        return f"no reproducer for clause {clause}: {REFUSED[clause]}"
    if clause not in COVERED:
        return f"no reproducer for clause {clause} yet: covered are {', '.join(COVERED)}"
    if spec is not None and clause == "SIG-DYNAMIC" and not spec.open_inputs():
        return "no reproducer for SIG-DYNAMIC on a spec without open axes (the clause skips it)"
    return None


def _head(clause, impl, framework, origin, message, constants, note="", imports=()):
    """The script's docstring, imports and constants."""
    needs = "" if impl in ("tf_keras", "keras_export") else " and the implementation"
    lines = [f"import {m}" for m in sorted(("contextlib", "json", "logging", "os", "re",
                                             "shutil", "sys", "tempfile", "traceback",
                                             "warnings", *imports))]
    values = "".join(f"{k} = {v!r}\n" for k, v in constants.items())
    return f'''"""Reproducer: clause {clause} on implementation {impl!r}.

Generated by `python -m conformance reproduce` from {origin}.
Needs only {framework} and TensorFlow{needs}.
Exits 1 while the divergence is there, 0 once it is gone.{note}
{("Suite message: " + message.splitlines()[0][:300]) if message else ""}
"""

{chr(10).join(lines)}

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
import {framework}
import {framework} as K

CLAUSE = {clause!r}
{values}'''


def _fixture_code(clause):
    """The clause's fixture builders, written out of conformance/expected/fixtures.py."""
    from conformance.expected import fixtures

    sources = []
    for name in FIXTURE_FUNCTIONS[clause]:
        source = inspect.getsource(getattr(fixtures, name))
        # the suite's out-of-process worker's tag: no part of the model
        source = re.sub(r"\n    # No config to send.*?\n    model\.conformance_fixture = .*?\n",
                        "\n", source, flags=re.S)
        sources.append(source.rstrip())
    return ("# The clause's fixed models (conformance/expected/fixtures.py), written out.\n"
            + "\n\n\n".join(sources) + "\n")


def fixture_script_source(clause, impl, *, message="", test=""):
    """The standalone script of a clause whose models are its own fixed fixtures."""
    if clause not in FIXTURE_CHECKS:
        raise ReproduceError(refusal(None, clause) or f"clause {clause} is checked on drawn specs")
    framework = FRAMEWORK_OF.get(impl)
    if framework is None:
        from conformance.api import resolve_implementation

        framework = getattr(resolve_implementation(impl), "framework", "keras")
    origin = f"the clause's fixed models{f' ({test})' if test else ''}"
    imports = ("hashlib", "io", "subprocess", "threading", "time", "zlib")
    parts = [_head(clause, impl, framework, origin, message, {}, imports=imports)]
    parts.append(_fixture_code(clause))
    parts.append("def build_model():\n    return None  # the check builds the clause's models\n")
    parts.append(_impl_code(impl).rstrip() + "\n")
    parts.append(HELPERS.strip() + "\n")
    parts.append(TREE.strip() + "\n")
    parts.append(FILES.strip() + "\n")
    parts.append(FIXTURE_CHECKS[clause].strip() + "\n")
    return "\n\n\n".join(p.strip("\n") for p in parts) + "\n" + MAIN


def script_source(spec, clause, impl, *, message="", test=""):
    """The standalone script reproducing ``clause`` on ``spec`` with ``impl``."""
    import strategies
    from conformance.expected.names import expected_output_names

    why = refusal(spec, clause)
    if why:
        raise ReproduceError(why)
    if clause in FIXTURE_CHECKS:
        return fixture_script_source(clause, impl, message=message, test=test)
    framework = FRAMEWORK_OF.get(impl)
    if framework is None:
        from conformance.api import resolve_implementation

        framework = getattr(resolve_implementation(impl), "framework", "keras")
    if clause == "LOAD-RESUME":
        spec = _resume_training(spec)
    # the weights before training: the script compiles and trains as the suite does
    model = strategies.build_model(replace(spec, training=None), framework)
    layers = _walk_layers(model)
    uses_custom = any(type(layer).__name__.startswith("Ksc") for layer in layers.values()) or (
        "ksc_scaled_l2" in spec.to_json()
    )
    weights = model.get_weights()
    datasets = _datasets(spec)
    frozen_after = [n.layer_name for n in spec.frozen_nodes() if n.frozen == "after"]
    if spec.dict_inputs:
        call = "{" + ", ".join(f"{i.name!r}: data[{i.name!r}]" for i in spec.inputs) + "}"
    elif len(spec.inputs) == 1:
        call = f"data[{spec.inputs[0].name!r}]"
    else:
        call = "[" + ", ".join(f"data[{i.name!r}]" for i in spec.inputs) + "]"
    serving_inputs = {i.name: (i.dtype, [None, *i.model_shape]) for i in spec.inputs}
    output_names = list(expected_output_names(spec))
    open_axes = {i.name: list(i.open_axes) for i in spec.inputs if i.open_axes}
    output_open = {name: list(spec.node(o).open_axes)
                   for name, o in zip(output_names, spec.outputs) if spec.node(o).open_axes}
    lengths = (f"\nIt calls at the probe lengths and with each open axis {OPEN_EXTRAS} longer."
               if spec.open_inputs() else "")
    constants = {
        "INPUT_NAMES": list(spec.input_names()), "OUTPUT_NAMES": output_names,
        "DTYPE": spec.dtype, "SUBCLASSED": spec.topology == "subclassed",
        "SERVING_INPUTS": serving_inputs, "OPEN_AXES": open_axes,
        "OUTPUT_OPEN_AXES": output_open,
        "DETERMINISTIC_IN_TRAINING": strategies.deterministic_in_training(spec),
    }
    origin = f"the shrunk spec{f' of {test}' if test else ''}"
    imports = ("subprocess",) if clause.startswith("CONSUMER-") else ()
    head = _head(clause, impl, framework, origin, message, constants, lengths, imports)
    parts = [head]
    if uses_custom:
        parts.append(_custom_code(framework))
    if spec.topology == "subclassed":
        parts.append(_subclassed_code(spec, layers))
    else:
        parts.append(_graph_code(spec, layers, "build_layers"))
    weight_lines = "".join(f"    {_array_code(w)},\n" for w in weights)
    parts.append(
        "# The model's weights (what the suite set from the spec's seed), exactly.\n"
        f"WEIGHTS = [\n{weight_lines}]\n"
        "# The call inputs: the probe lengths first\n"
        "DATASETS = [\n" + "".join(f"    {_data_code(d)},\n" for d in datasets) + "]\n"
        "DATA = DATASETS[0]"
    )
    train = "    compile_and_train(model)\n" if spec.training is not None else ""
    if spec.training is not None:
        parts.append(_training_code(spec))
    freeze = "".join(
        f"    find_layer(model, {name!r}).trainable = False\n" for name in frozen_after
    )
    parts.append(
        "def find_layer(model, name):\n"
        "    for layer in model.layers:\n"
        "        if layer.name == name:\n"
        "            return layer\n"
        "        if hasattr(layer, 'layers'):\n"
        "            found = find_layer(layer, name)\n"
        "            if found is not None:\n"
        "                return found\n"
        "    return None\n\n\n"
        "def build_model():\n"
        "    model = build_layers()\n"
        "    model.set_weights(WEIGHTS)\n"
        + freeze + train
        + "    return model\n\n\n"
        f"def model_inputs(data=DATA):\n    return {call}\n"
    )
    parts.append(_impl_code(impl).rstrip() + "\n")
    parts.append(HELPERS.strip() + "\n")
    check = CHECKS[clause]
    if any(re.search(rf"\b{name}\(", check) for name in TREE_NAMES):
        parts.append(TREE.strip() + "\n")
    if clause == "LOAD-REVIVE":
        parts.append(_layer_probes_code(spec))
    if clause == "SIG-SERVING":
        parts.append(_functions_code())
    parts.append(check.strip() + "\n")
    return "\n\n\n".join(p.strip("\n") for p in parts) + "\n" + MAIN
