"""``python -m conformance reproduce``: one standalone Python script per failure.

The script rebuilds the failing example's model as plain Keras 3 / tf_keras code (each layer's
class with its non-default constructor arguments, read from the built layer's ``get_config``),
sets its weights from values written into the script, saves and loads it with the
implementation's public calls, checks what the clause checks and exits 1 while the
divergence is there, 0 once it is gone. It imports neither ``conformance`` nor ``strategies``.
"""

import inspect
import json
import re
import sys
from pathlib import Path

# Clauses whose check a script reproduces (output, variable and structural reads).
COVERED = (
    "CALL-INFERENCE", "VARS-EXACT", "LOAD-REVIVE", "SIG-SERVING", "LOSSES-REGULARIZATION",
    "LAYERS-TREE", "FORMAT-KERAS-API",
)
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


def layer_code(layer):
    """``K.layers.Dense(units=4, ...)`` for a built layer: its non-default config arguments."""
    cls = type(layer)
    name = cls.__name__
    where = "" if name.startswith("Ksc") else "K.layers."
    config = _plain(layer.get_config())
    args = [f"name={layer.name!r}"]
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
        i.name: f"np.zeros({((i.batch_size or 1), *i.shape)!r}, dtype={i.dtype!r})"
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
        "def save(model, path):\n    reference_impl.save(model, path)\n\n\n"
        "def load(path):\n    return reference_impl.load(path)\n"
    ),
    "tf_keras": (
        "def save(model, path):\n    model.save(path, save_format='tf')\n\n\n"
        "def load(path):\n    return tf_keras.models.load_model(path)\n"
    ),
    "keras_export": (
        "def save(model, path):\n"
        "    model.export(path, format='tf_saved_model', verbose=False)\n\n\n"
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
        "def save(model, path):\n    IMPL.save(model, path)\n\n\n"
        "def load(path):\n    return IMPL.load(path)\n"
    )


_HELPERS = '''
TOLERANCES = {"float64": 1e-6, "float32": 1e-6, "float16": 1e-3, "bfloat16": 1e-2}


def flat(structure):
    return [np.asarray(t) for t in tf.nest.flatten(structure)]


def close(got, want, what, dtype=None):
    """None when equal within the coarser dtype's tolerance, else the divergence."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"{what}: shape {got.shape}, expected {want.shape}"
    tol = max(TOLERANCES.get(str(d), 0.0) for d in (got.dtype, want.dtype, dtype))
    g, w = got.astype(np.float64), want.astype(np.float64)
    if not np.allclose(g, w, rtol=tol, atol=tol, equal_nan=True):
        return f"{what}: expected {w.ravel()[:8].tolist()}, actual {g.ravel()[:8].tolist()}"
    return None


def bitwise(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype or got.shape != want.shape or got.tobytes() != want.tobytes():
        return (f"{what}: expected {want.dtype}{list(want.shape)} {want.ravel()[:6].tolist()}, "
                f"actual {got.dtype}{list(got.shape)} {got.ravel()[:6].tolist()}")
    return None


def call_traced(function, inputs):
    """Call a restored call function with training=False when it was traced with training."""
    concrete = list(getattr(function, "concrete_functions", None) or [])
    takes = any("training" in c.structured_input_signature[1]
                or any(isinstance(a, bool) for a in c.structured_input_signature[0][1:])
                for c in concrete)
    return function(inputs, training=False) if takes else function(inputs)
'''

_CHECKS = {
    "CALL-INFERENCE": '''
def check(model, path, inputs, data):
    """keras_api.__call__(training=False) and serving_default give the model's outputs."""
    want = flat(model(inputs, training=False))
    loaded = tf.saved_model.load(path)
    api = getattr(loaded, "keras_api", None)
    if api is None or getattr(api, "__call__", None) is None:
        return ["the saved root has no keras_api.__call__"]
    problems = []
    got = flat(call_traced(api.__call__, inputs))
    if len(got) != len(want):
        problems.append(f"keras_api.__call__: {len(got)} outputs, expected {len(want)}")
    problems += [close(g, w, f"keras_api.__call__(training=False) output {i}")
                 for i, (g, w) in enumerate(zip(got, want))]
    serving = loaded.signatures["serving_default"]
    names = sorted(serving.structured_input_signature[1])
    ordered = INPUT_NAMES if names == sorted(INPUT_NAMES) else sorted(
        names, key=lambda k: (len(k), k))
    result = serving(**{key: tf.constant(data[name]) for key, name in zip(ordered, INPUT_NAMES)})
    if sorted(result) != sorted(OUTPUT_NAMES):
        return problems + [f"serving_default outputs: expected {sorted(OUTPUT_NAMES)}, "
                           f"actual {sorted(result)}"]
    problems += [close(result[n].numpy(), w, f"serving_default output {n!r}")
                 for n, w in zip(OUTPUT_NAMES, want)]
    return problems
''',
    "VARS-EXACT": '''
def check(model, path, inputs, data):
    """keras_api's variable lists hold the model's variables, bitwise; each saved once."""
    api = getattr(tf.saved_model.load(path), "keras_api", None)
    if api is None:
        return ["the saved root has no keras_api"]
    problems = []
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        want, got = list(getattr(model, name)), list(getattr(api, name, None) or [])
        if len(got) != len(want):
            problems.append(f"keras_api.{name}: expected {len(want)} variables "
                            f"({[v.name for v in want]}), actual {len(got)}")
            continue
        problems += [bitwise(g.numpy(), w.numpy(), f"keras_api.{name}[{i}] ({w.name})")
                     for i, (g, w) in enumerate(zip(got, want))]
    keys = [k for k, _ in tf.train.list_variables(os.path.join(path, "variables", "variables"))
            if k.endswith("VARIABLE_VALUE")]
    if len(keys) != len(model.variables):
        problems.append(f"checkpoint: expected {len(model.variables)} variable values, "
                        f"actual {len(keys)}")
    return problems
''',
    "LOAD-REVIVE": '''
def check(model, path, inputs, data):
    """The loader's model gives the original's outputs and variables (bitwise)."""
    revived = load(path)
    if not callable(revived):
        return [f"load returned a {type(revived).__name__}, which cannot be called"]
    want = flat(model(inputs, training=False))
    got = flat(revived(inputs, training=False))
    if len(got) != len(want):
        return [f"revived model: expected {len(want)} outputs, actual {len(got)}"]
    problems = [close(g, w, f"revived model output {i} (training=False)")
                for i, (g, w) in enumerate(zip(got, want))]
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        want_vars, got_vars = list(getattr(model, name)), list(getattr(revived, name))
        if len(got_vars) != len(want_vars):
            problems.append(f"revived model.{name}: expected {len(want_vars)}, "
                            f"actual {len(got_vars)}")
            continue
        problems += [bitwise(g.numpy(), w.numpy(), f"revived {name} {w.name}")
                     for g, w in zip(got_vars, want_vars)]
    return problems
''',
}

_CHECKS["SIG-SERVING"] = '''
def check(model, path, inputs, data):
    """serving_default: the model's input names, dtypes and shapes (batch None), its outputs."""
    serving = tf.saved_model.load(path).signatures["serving_default"]
    got = {name: (s.dtype.name, s.shape.as_list())
           for name, s in serving.structured_input_signature[1].items()}
    problems = []
    if SUBCLASSED:  # the saver names a subclassed model's inputs
        if len(got) != len(SERVING_INPUTS):
            problems.append(f"serving_default: expected {len(SERVING_INPUTS)} inputs, "
                            f"actual {len(got)}")
    elif sorted(got) != sorted(SERVING_INPUTS):
        problems.append(f"serving_default inputs: expected {sorted(SERVING_INPUTS)}, "
                        f"actual {sorted(got)}")
    for name, (dtype, shape) in got.items():
        want = SERVING_INPUTS.get(name)
        if want is not None and (dtype, shape) != tuple(want):
            problems.append(f"serving input {name!r}: expected {want[0]} {want[1]} (batch "
                            f"dimension None), actual {dtype} {shape}")
    outputs = sorted(serving.structured_outputs)
    if outputs != sorted(OUTPUT_NAMES):
        problems.append(f"serving_default outputs: expected {sorted(OUTPUT_NAMES)}, "
                        f"actual {outputs}")
    return problems
'''

_CHECKS["LOSSES-REGULARIZATION"] = '''
def weight_regularization_losses(model):
    if K.__name__ == "keras":
        return [float(loss) for loss in model._get_regularization_losses()]
    return [float(loss()) for layer in model._flatten_layers(include_self=True)
            for loss in layer._callable_losses]


def check(model, path, inputs, data):
    """keras_api.regularization_losses: one function per weight-regularization loss, same sum."""
    api = getattr(tf.saved_model.load(path), "keras_api", None)
    if api is None:
        return ["the saved root has no keras_api"]
    saved = [float(np.asarray(f(), dtype=np.float64))
             for f in list(getattr(api, "regularization_losses", None) or [])]
    want = weight_regularization_losses(model)
    problems = []
    if len(saved) != len(want):
        problems.append(f"keras_api.regularization_losses: expected {len(want)} functions "
                        f"({want}), actual {len(saved)} ({saved})")
    problems.append(close(np.float64(sum(saved)), np.float64(sum(want)),
                          "sum of keras_api.regularization_losses()", DTYPE))
    return problems
'''

_CHECKS["LAYERS-TREE"] = '''
def sublayers(layer):
    """A layer's direct sub-layers as the format lists them in keras_api.layers."""
    if isinstance(layer, K.Model):
        return list(layer.layers)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def check(model, path, inputs, data):
    """keras_api.layers mirrors each layer's sub-layers (count, order by variable shapes);
    a shared layer is saved once."""
    loaded = tf.saved_model.load(path)
    if getattr(loaded, "keras_api", None) is None:
        return ["the saved root has no keras_api"]
    problems, first = [], {}

    def visit(layer, saved, where):
        if id(layer) in first:
            if saved is not first[id(layer)]:
                problems.append(f"shared layer {layer.name!r} is saved twice ({where})")
            return
        first[id(layer)] = saved
        children = sublayers(layer)
        if not children:
            return
        api = getattr(saved, "keras_api", None)
        if api is None:
            problems.append(f"{where} ({layer.name!r}) has no keras_api")
            return
        saved_children = list(api.layers)
        if len(saved_children) != len(children):
            problems.append(f"{where} ({layer.name!r}): keras_api.layers: expected "
                            f"{len(children)} entries, actual {len(saved_children)}")
            return
        for index, (child, saved_child) in enumerate(zip(children, saved_children)):
            want = [tuple(v.shape) for v in child.variables]
            child_api = getattr(saved_child, "keras_api", None)
            got = [tuple(v.shape) for v in getattr(child_api, "variables", [])]
            if got != want:
                problems.append(f"{where}.layers[{index}]: expected {child.name!r} (variable "
                                f"shapes {want}), actual variable shapes {got}")
            visit(child, saved_child, f"{where}.layers[{index}]")

    visit(model, loaded, "root")
    return problems
'''

_CHECKS["FORMAT-KERAS-API"] = '''
LAYER_OBJECTS = ("variables", "trainable_variables", "non_trainable_variables", "layers",
                 "metrics", "regularization_losses", "layer_regularization_losses",
                 "layer_metrics")
CALL_FUNCTIONS = ("__call__", "call_and_return_conditional_losses",
                  "call_and_return_all_conditional_losses")
ROOT_ENDPOINTS = ("variables", "trainable_variables", "regularization_losses", "__call__",
                  "call_and_return_all_conditional_losses")


def sublayers(layer):
    if isinstance(layer, K.Model):
        return list(layer.layers)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def check(model, path, inputs, data):
    """Every layer is saved with a keras_api: its object lists and its traced call functions
    (a layer skipped with a save message naming it is allowed none)."""
    loaded = tf.saved_model.load(path)
    problems = [f"root lacks the endpoint {n!r}" for n in ROOT_ENDPOINTS
                if getattr(loaded, n, None) is None]
    root_api = getattr(loaded, "keras_api", None)
    if root_api is None or getattr(root_api, "_default_save_signature", None) is None:
        problems.append("root keras_api lacks _default_save_signature")
    seen = set()

    def visit(layer, saved, where):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        api = getattr(saved, "keras_api", None)
        if type(layer).__name__ != "InputLayer":
            if api is None:
                problems.append(f"layer {layer.name!r} ({where}) has no keras_api")
                return
            problems.extend(f"{where} ({layer.name!r}): keras_api lacks the object list {n!r}"
                            for n in LAYER_OBJECTS if getattr(api, n, None) is None)
            named = any(re.search(rf"(?<![\\w.]){re.escape(layer.name)}(?![\\w])", m)
                        for m in SAVE_MESSAGES)
            if getattr(api, "__call__", None) is not None or not named:
                for n in CALL_FUNCTIONS:
                    function = getattr(api, n, None)
                    if function is None:
                        problems.append(f"{where} ({layer.name!r}): keras_api lacks {n!r}")
                    elif not list(getattr(function, "concrete_functions", None) or []):
                        problems.append(f"{where} ({layer.name!r}): {n} has no traced function")
            if getattr(layer, "activity_regularizer", None) is not None and getattr(
                    api, "activity_regularizer_fn", None) is None:
                problems.append(f"{where} ({layer.name!r}) has an activity regularizer but "
                                "no activity_regularizer_fn")
        children = list(getattr(api, "layers", None) or []) if api is not None else []
        for index, (child, saved_child) in enumerate(zip(sublayers(layer), children)):
            visit(child, saved_child, f"{where}.layers[{index}]")

    visit(model, loaded, "root")
    return problems
'''

_MAIN = '''

SAVE_MESSAGES = []  # the warnings and log records of the save


@contextlib.contextmanager
def captured_messages():
    class Keep(logging.Handler):
        def emit(self, record):
            SAVE_MESSAGES.append(record.getMessage())

    handler, loggers = Keep(), [logging.getLogger(), logging.getLogger("tensorflow")]
    for logger in loggers:
        logger.addHandler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
    SAVE_MESSAGES.extend(str(w.message) for w in caught)


def main():
    model = build_model()
    inputs = model_inputs()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model")
        with captured_messages():
            save(model, path)
        problems = [p for p in check(model, path, inputs, DATA) if p]
    for problem in problems:
        print(f"[{CLAUSE}] {problem}")
    if problems:
        print(f"[{CLAUSE}] DIVERGENCE: {len(problems)} check(s) differ")
        return 1
    print(f"[{CLAUSE}] no divergence: the saved model agrees with the original")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


# Kinds the script does not build yet (a lookup layer's vocabulary, given or adapted).
UNWRITTEN_KINDS = frozenset({"IntegerLookup", "StringLookup", "TextVectorization"})


def _data(spec, seed=0):
    """Deterministic call inputs (the report keeps the spec, not the drawn batch)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    batch = next((i.batch_size for i in spec.inputs if i.batch_size), 2)
    data = {}
    for i in spec.inputs:
        shape = (batch, *i.shape)
        if i.dtype == "string":  # tokens w0.. as the strategies draw them
            ids = rng.integers(0, i.vocab or 2, shape)
            data[i.name] = np.vectorize(lambda k: f"w{k}", otypes=[object])(ids)
        elif "int" in i.dtype:
            data[i.name] = rng.integers(0, i.vocab or 2, shape).astype(i.dtype)
        else:
            data[i.name] = (rng.standard_normal(shape) * 0.5).astype(i.dtype)
    return data


def script_source(spec, clause, impl, *, message="", test=""):
    """The standalone script reproducing ``clause`` on ``spec`` with ``impl``."""
    import strategies
    from conformance.expected.names import expected_output_names

    lookups = sorted(set(spec.kinds()) & UNWRITTEN_KINDS)
    if lookups:
        raise ReproduceError(
            f"no reproducer for specs with {', '.join(lookups)} yet: their vocabularies are "
            "not written into the script"
        )
    if spec.open_inputs():
        raise ReproduceError(
            "no reproducer for specs with open axes yet: the script calls at the probe length"
        )
    if clause not in COVERED:
        raise ReproduceError(
            f"no reproducer for clause {clause} yet: covered are {', '.join(COVERED)}"
        )
    framework = FRAMEWORK_OF.get(impl)
    if framework is None:
        from conformance.api import resolve_implementation

        framework = getattr(resolve_implementation(impl), "framework", "keras")
    model = strategies.build_model(spec, framework)
    layers = _walk_layers(model)
    uses_custom = any(type(layer).__name__.startswith("Ksc") for layer in layers.values()) or (
        "ksc_scaled_l2" in spec.to_json()
    )
    weights = model.get_weights()
    data = _data(spec)
    frozen_after = [n.layer_name for n in spec.frozen_nodes() if n.frozen == "after"]
    if spec.dict_inputs:
        call = "{" + ", ".join(f"{i.name!r}: DATA[{i.name!r}]" for i in spec.inputs) + "}"
    elif len(spec.inputs) == 1:
        call = f"DATA[{spec.inputs[0].name!r}]"
    else:
        call = "[" + ", ".join(f"DATA[{i.name!r}]" for i in spec.inputs) + "]"
    serving_inputs = {i.name: (i.dtype, [None, *i.model_shape]) for i in spec.inputs}
    needs = "" if impl in ("tf_keras", "keras_export") else " and the implementation"
    head = f'''"""Reproducer: clause {clause} on implementation {impl!r}.

Generated by `python -m conformance reproduce` from the shrunk spec{f" of {test}" if test else ""}.
Needs only {framework} and TensorFlow{needs}.
Exits 1 while the divergence is there, 0 once it is gone.
{("Suite message: " + message.splitlines()[0][:300]) if message else ""}
"""

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
import {framework}
import {framework} as K

CLAUSE = {clause!r}
INPUT_NAMES = {list(spec.input_names())!r}
OUTPUT_NAMES = {list(expected_output_names(spec))!r}
DTYPE = {spec.dtype!r}
SUBCLASSED = {spec.topology == "subclassed"!r}
SERVING_INPUTS = {serving_inputs!r}
'''
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
        "DATA = {\n"
        + "".join(f"    {k!r}: {_array_code(v)},\n" for k, v in data.items())
        + "}"
    )
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
        + freeze
        + "    return model\n\n\n"
        f"def model_inputs():\n    return {call}\n"
    )
    parts.append(_impl_code(impl).rstrip() + "\n")
    parts.append(_HELPERS.strip() + "\n")
    parts.append(_CHECKS[clause].strip() + "\n")
    return "\n\n\n".join(p.strip("\n") for p in parts) + "\n" + _MAIN


# --- the command ------------------------------------------------------------------------------


def failures_of(report_path, clause=None, test=None):
    """``(clause, test, spec, message)`` of every failure in a JSON report."""
    try:
        document = json.loads(Path(report_path).read_text())
    except (OSError, ValueError) as exc:
        raise ReproduceError(f"cannot read the report {report_path}: {exc}") from exc
    out = []
    for clause_id, result in document.get("clauses", {}).items():
        if clause and clause_id != clause:
            continue
        for failure in result.get("failures", []):
            if test and test not in failure.get("test", ""):
                continue
            try:
                spec = json.loads(failure.get("spec", ""))
            except ValueError:
                continue
            if "nodes" not in spec:
                continue  # a fixed model's failure: no spec to rebuild
            out.append((clause_id, failure.get("test", ""), spec, failure.get("message", "")))
    return document.get("implementation", "reference"), out


def _file_name(clause, test, index):
    base = test.split("::")[-1].split("[")[0] if test else "spec"
    base = re.sub(r"\W", "_", base)
    return f"repro_{clause.lower().replace('-', '_')}_{base}_{index}.py"


def add_arguments(parser):
    parser.add_argument("report", nargs="?", help="a JSON report (--conformance-report=...)")
    parser.add_argument("--spec", help="a spec JSON file (instead of a report)")
    parser.add_argument("--clause", help="only this clause (required with --spec)")
    parser.add_argument("--test", help="only failures of tests whose id contains this")
    parser.add_argument("--impl", default=None, help="implementation (with --spec; default: "
                        "the report's, else reference)")
    parser.add_argument("--out", default=".", help="folder for the scripts (default: cwd)")


def main(args):
    from strategies.spec import ModelSpec

    if args.spec:
        if not args.clause:
            raise ReproduceError("--spec needs --clause")
        text = Path(args.spec).read_text() if Path(args.spec).exists() else args.spec
        items = [(args.clause, "", json.loads(text), "")]
        impl = args.impl or "reference"
    elif args.report:
        impl, items = failures_of(args.report, args.clause, args.test)
        impl = args.impl or impl
    else:
        raise ReproduceError("give a REPORT.json or --spec SPEC.json --clause ID")
    if args.clause and args.clause not in COVERED:
        raise ReproduceError(
            f"no reproducer for clause {args.clause} yet: covered are {', '.join(COVERED)}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    for index, (clause, test, spec_dict, message) in enumerate(items):
        try:
            source = script_source(
                ModelSpec.from_dict(spec_dict), clause, impl, message=message, test=test
            )
        except ReproduceError as exc:
            skipped.append(f"{clause} {test}: {exc}")
            continue
        path = out / _file_name(clause, test, index)
        path.write_text(source)
        written.append(path)
        print(path)
    for line in skipped:
        print(f"not reproduced: {line}", file=sys.stderr)
    if not written:
        raise ReproduceError(
            "no script written" + (f" ({len(skipped)} failure(s) not covered)" if skipped else
                                   " (no failure with a spec in the report)")
        )
    return 0
