"""The check templates of the reproducer scripts: what each clause checks, as script source.

Each template defines ``check(model, path, inputs, data)`` (run after the default save, once
per data set) or ``reproduce(model, tmp)`` (its own saves); both return the divergences as
strings. They run in the script, where only Keras / tf_keras, TensorFlow and numpy exist.
"""

HELPERS = '''
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

CHECKS = {
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
STEP = 0.01


def gradients(model, inputs, variables):
    """Dense gradients of a fixed loss (squared outputs plus the model's losses)."""
    with tf.GradientTape() as tape:
        outputs = model(inputs, training=True)
        loss = tf.add_n([tf.reduce_sum(tf.cast(t, tf.float32) ** 2)
                         for t in tf.nest.flatten(outputs)]
                        + [tf.cast(loss, tf.float32) for loss in model.losses])
    return [None if g is None else tf.convert_to_tensor(g)
            for g in tape.gradient(loss, variables)]


def step_moves(variables, grads):
    """Whether a gradient step of STEP changes any variable in its own dtype."""
    for variable, grad in zip(variables, grads):
        if grad is not None:
            value = np.asarray(variable.numpy())
            if np.any(value - np.asarray(grad).astype(value.dtype) * value.dtype.type(STEP)
                      != value):
                return True
    return False


def layer_problems(model, revived):
    """Trainable flags, and the masks and call arguments of the layers that have them."""
    problems = []
    if getattr(revived, "trainable", None) != model.trainable:
        problems.append(f"the loaded model's trainable is {getattr(revived, 'trainable', None)}"
                        f", the original's {model.trainable}")
    flatten = getattr(revived, "_flatten_layers", None)
    loaded = {layer.name: layer for layer in flatten(include_self=False)} if flatten else {}
    original = {layer.name: layer for layer in model._flatten_layers(include_self=False)}
    for name, layer in original.items():
        if name in loaded and type(layer).__name__ != "InputLayer" and (
                loaded[name].trainable != layer.trainable):
            problems.append(f"loaded layer {name!r} has trainable={loaded[name].trainable}, "
                            f"the original {layer.trainable}")
    for name, x, makes_mask, call_kwargs in LAYER_PROBES:
        if name not in loaded:
            problems.append(f"the loaded model has no layer {name!r} to check")
            continue
        mine, theirs = original[name], loaded[name]
        if makes_mask:
            want = mine.compute_mask(x, None)
            if want is not None:
                got = theirs.compute_mask(x, None)
                problems.append(
                    f"loaded layer {name!r} computes no mask; the original's masks its input's "
                    "steps" if got is None else bitwise(got, want, f"{name}.compute_mask(x)"))
        if call_kwargs:
            problems.append(close(theirs(x, **call_kwargs), mine(x, **call_kwargs),
                                  f"loaded layer {name!r} called with {call_kwargs}"))
    return problems


def check(model, path, inputs, data):
    """The loader's model gives the original's outputs, trainable flags, masks, variables
    (bitwise) and losses, and trains: a gradient step moves its variables."""
    revived = load(path)
    if not callable(revived):
        return [f"load returned a {type(revived).__name__}, which cannot be called"]
    want = flat(model(inputs, training=False))
    got = flat(revived(inputs, training=False))
    if len(got) != len(want):
        return [f"revived model: expected {len(want)} outputs, actual {len(got)}"]
    problems = [close(g, w, f"revived model output {i} (training=False)")
                for i, (g, w) in enumerate(zip(got, want))]
    problems += layer_problems(model, revived)
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        want_vars, got_vars = list(getattr(model, name)), list(getattr(revived, name))
        if len(got_vars) != len(want_vars):
            problems.append(f"revived model.{name}: expected {len(want_vars)}, "
                            f"actual {len(got_vars)}")
            continue
        problems += [bitwise(g.numpy(), w.numpy(), f"revived {name} {w.name}")
                     for g, w in zip(got_vars, want_vars)]
    model(inputs, training=False)
    want_losses = float(sum(np.asarray(loss, dtype=np.float64) for loss in model.losses))
    revived(inputs, training=False)
    problems.append(close(np.float64(sum(np.asarray(loss, dtype=np.float64)
                                         for loss in revived.losses)),
                          np.float64(want_losses),
                          "sum of the revived model's losses after a call", DTYPE))
    revived(inputs, training=True)  # callable in training mode
    trainable = list(revived.trainable_variables)
    if trainable:
        want_grads = gradients(model, inputs, list(model.trainable_variables))
        grads = gradients(revived, inputs, trainable)
        before = [np.array(v.numpy()) for v in trainable]
        for variable, grad in zip(trainable, grads):
            if grad is not None:
                variable.assign_sub(tf.cast(grad, variable.dtype) * STEP)
        moved = [not np.array_equal(np.asarray(v.numpy()), b) for v, b in zip(trainable, before)]
        # zero or tiny gradients of the original: then nothing need move
        if step_moves(list(model.trainable_variables), want_grads) and not any(moved):
            problems.append("a gradient step left every trainable variable of the revived "
                            "model unchanged")
    return problems
''',
}

CHECKS["SIG-SERVING"] = '''
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
    nested = layer_functions_called_by_signature(path)
    if nested:  # tf_keras traces serving_default with the layers' own calls
        problems.append(f"serving_default calls {len(nested)} saved layer call function(s), "
                        f"e.g. {', '.join(f'{name} ({where})' for where, name in nested[:3])}; "
                        "it must be one flat function, as tf_keras traces it")
    return problems
'''

CHECKS["LOSSES-REGULARIZATION"] = '''
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

CHECKS["LAYERS-TREE"] = '''
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
            if child_api is not None and not hasattr(child_api, "variables"):
                problems.append(f"{where}.layers[{index}] ({child.name!r}) is saved with a "
                                "keras_api that has no `variables`")
            got = [tuple(v.shape) for v in getattr(child_api, "variables", [])]
            if got != want:
                problems.append(f"{where}.layers[{index}]: expected {child.name!r} (variable "
                                f"shapes {want}), actual variable shapes {got}")
            visit(child, saved_child, f"{where}.layers[{index}]")

    visit(model, loaded, "root")
    return problems
'''

CHECKS["FORMAT-KERAS-API"] = '''
LAYER_OBJECTS = ("variables", "trainable_variables", "non_trainable_variables", "layers",
                 "metrics", "regularization_losses", "layer_regularization_losses",
                 "layer_metrics")
CALL_FUNCTIONS = ("__call__", "call_and_return_conditional_losses",
                  "call_and_return_all_conditional_losses")
ROOT_ENDPOINTS = ("variables", "trainable_variables", "regularization_losses", "__call__",
                  "call_and_return_all_conditional_losses")


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

MAIN = '''

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


def save_and_check(model, tmp):
    """The default run: one save, then the clause's check on every data set."""
    path = os.path.join(tmp, "model")
    with captured_messages():
        save(model, path)
    problems = []
    for data in DATASETS:
        problems += [p for p in check(model, path, model_inputs(data), data) if p not in problems]
    return problems


def main():
    model = build_model()
    run = globals().get("reproduce", save_and_check)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            problems = [p for p in run(model, tmp) if p]
        except Exception as exc:  # the clause fails on an exception as on a divergence
            traceback.print_exc()
            text = " ".join(str(exc).split())[:600]
            problems = [f"raised {type(exc).__name__}: {text}"]
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




# Reading the saved layer tree and its traced functions (conformance/savedmodel, written out);
# a script holds this block when its check uses one of TREE_NAMES.
TREE = '''
CALL_FUNCTIONS = ("__call__", "call_and_return_conditional_losses",
                  "call_and_return_all_conditional_losses")


def concrete_functions(function):
    return list(getattr(function, "concrete_functions", None) or []) if function else []


def training_of(concrete):
    """The training value a concrete call function was traced with (None: it takes none)."""
    args, kwargs = concrete.structured_input_signature
    if "training" in kwargs:
        return kwargs["training"]
    return next((a for a in args[1:] if isinstance(a, bool)), None)


def training_values(function):
    """The training values a saved call function was traced for."""
    out = set()
    for concrete in concrete_functions(function):
        args, kwargs = concrete.structured_input_signature
        if "training" in kwargs or any(isinstance(a, bool) for a in args[1:]):
            out.add(training_of(concrete))
    return out


def call_saved(function, inputs, training):
    """Call a saved call function, with training when it was traced with one."""
    if training_values(function):
        return function(inputs, training=training)
    return function(inputs)


def made_up_args(concrete, batch=2, seed=0):
    """Tensors fitting one traced signature (as the suite makes them): floats uniform in
    [0, 1), integers zeros, an open axis 8 long; Python values (training) kept."""
    args, kwargs = concrete.structured_input_signature
    rng = np.random.default_rng(seed)

    def make(spec):
        if not isinstance(spec, tf.TensorSpec):
            return spec
        shape = [(batch if i == 0 else 8) if d is None else d
                 for i, d in enumerate(spec.shape.as_list())]
        if spec.dtype.is_floating:
            return tf.constant(rng.uniform(0.0, 1.0, shape).astype(spec.dtype.as_numpy_dtype))
        return tf.zeros(shape, dtype=spec.dtype)

    return tf.nest.map_structure(make, args), tf.nest.map_structure(make, kwargs)


def traced_calls(function):
    """(training, args, kwargs) for each traced signature of a saved call function."""
    for concrete in concrete_functions(function):
        args, kwargs = made_up_args(concrete)
        yield training_of(concrete), args, kwargs


def sublayers(layer):
    """A layer's direct sub-layers as the format lists them in keras_api.layers."""
    if isinstance(layer, K.Model):
        return list(layer.layers)
    return list(layer._flatten_layers(include_self=False, recursive=False))


def saved_tree(loaded):
    """(path, keras_api or None) of every saved object, depth first; a shared one once."""
    seen, out = set(), []

    def visit(obj, path):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        api = getattr(obj, "keras_api", None)
        out.append((path, api))
        children = list(getattr(api, "layers", None) or []) if api is not None else []
        for index, child in enumerate(children):
            visit(child, f"{path}.layers[{index}]")

    visit(loaded, "root")
    return out


def layers_by_path(model):
    """The model's layers by saved-tree path ("root.layers[0]..."), each at its first place."""
    seen, out = set(), {}

    def visit(layer, path):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        out[path] = layer
        for index, child in enumerate(sublayers(layer)):
            visit(child, f"{path}.layers[{index}]")

    visit(model, "root")
    return out


def own_training(layer):
    if K.__name__ == "keras":
        return bool(layer._call_has_training_arg)
    return bool(layer._expects_training_arg)


def uses_training(layer):
    """Whether the layer's call, or a descendant's, takes training."""
    return own_training(layer) or any(own_training(sub)
                                      for sub in layer._flatten_layers(include_self=False))


def weight_regularization_losses(model):
    if K.__name__ == "keras":
        return [float(loss) for loss in model._get_regularization_losses()]
    return [float(loss()) for layer in model._flatten_layers(include_self=True)
            for loss in layer._callable_losses]


def losses_total(losses):
    return float(sum(np.asarray(loss, dtype=np.float64) for loss in losses))


def compare_outputs(got, want, what, dtype=None):
    if len(got) != len(want):
        return [f"{what}: {len(got)} outputs, the model gives {len(want)}"]
    return [close(g, w, f"{what}, output {i}", dtype) for i, (g, w) in enumerate(zip(got, want))]


def root_api(loaded, what="the saved root"):
    api = getattr(loaded, "keras_api", None)
    if api is None:
        raise AssertionError(f"{what} has no keras_api (a plain SavedModel, not the Keras "
                             "format)")
    return api


def require(api, name, where="root"):
    function = getattr(api, name, None)
    if function is None:
        raise AssertionError(f"{where}: keras_api has no {name}")
    return function
'''
TREE_NAMES = ("concrete_functions", "training_values", "call_saved", "traced_calls",
              "sublayers", "saved_tree", "layers_by_path", "uses_training",
              "weight_regularization_losses", "losses_total", "compare_outputs", "root_api",
              "require")

CHECKS["CALL-TRAINING"] = '''
def check(model, path, inputs, data):
    """keras_api.__call__ is traced for training True and False when the model's call takes
    training; each mode gives the model's outputs (training mode: when every layer is
    deterministic in it); so does each saved sub-layer whose call, or a descendant's, takes
    training, on made-up inputs fitting its traces."""
    loaded = tf.saved_model.load(path)
    root_call = require(root_api(loaded), "__call__")
    problems = []
    traced = training_values(root_call)
    if own_training(model) and not {True, False} <= traced:
        problems.append(f"keras_api.__call__ is traced for training in {sorted(traced, key=str)}"
                        ", expected both True and False")
    # Inference first: a training-mode call moves the statistics inference reads.
    problems += compare_outputs(flat(call_saved(root_call, inputs, False)),
                                flat(model(inputs, training=False)),
                                "keras_api.__call__(training=False)")
    got = flat(call_saved(root_call, inputs, True))
    want = flat(model(inputs, training=True))
    if DETERMINISTIC_IN_TRAINING:
        problems += compare_outputs(got, want, "keras_api.__call__(training=True)")
    elif [g.shape for g in got] != [w.shape for w in want]:
        problems.append(f"keras_api.__call__(training=True): output shapes "
                        f"{[g.shape for g in got]}, expected {[w.shape for w in want]}")
    by_path = layers_by_path(model)
    for where, api in saved_tree(loaded)[1:]:
        layer = by_path.get(where)
        if layer is None or type(layer).__name__ == "InputLayer" or not uses_training(layer):
            continue
        call_fn = getattr(api, "__call__", None) if api is not None else None
        if not concrete_functions(call_fn):
            continue  # saved without call functions: FORMAT-KERAS-API's concern
        traced = training_values(call_fn)
        if not {True, False} <= traced:
            problems.append(f"{where} ({layer.name}): its call or a sub-layer's takes training, "
                            f"but keras_api.__call__ is traced for training in "
                            f"{sorted(traced, key=str)}, expected both True and False")
            continue
        if not DETERMINISTIC_IN_TRAINING:
            continue
        for training, args, kwargs in traced_calls(call_fn):
            leaves = tf.nest.flatten((args, kwargs))
            tensors = [a for a in leaves if tf.is_tensor(a)]
            literals = [a for a in leaves if not tf.is_tensor(a) and not isinstance(a, bool)]
            if training is None or len(tensors) != 1 or literals:
                continue  # not comparable by position
            problems += compare_outputs(flat(call_fn(*args, **kwargs)),
                                        flat(layer(tensors[0], training=training)),
                                        f"{where} ({layer.name}) __call__(training={training})")
    return problems
'''

CHECKS["CALL-CONSISTENT"] = '''
def check(model, path, inputs, data):
    """On every saved layer, for each traced signature of its __call__ (made-up inputs
    fitting it), call_and_return_conditional_losses and call_and_return_all_conditional_losses
    give __call__'s outputs (training mode only when every layer is deterministic in it)."""
    loaded = tf.saved_model.load(path)
    require(root_api(loaded), "__call__")
    problems, compared = [], 0
    for where, api in saved_tree(loaded):
        call_fn = getattr(api, "__call__", None) if api is not None else None
        for training, args, kwargs in traced_calls(call_fn):
            if training and not DETERMINISTIC_IN_TRAINING:
                continue
            plain = flat(call_fn(*args, **kwargs))
            for name in CALL_FUNCTIONS[1:]:
                function = getattr(api, name, None)
                if function is None:
                    problems.append(f"{where}: keras_api lacks {name}")
                    continue
                outputs, _losses = function(*args, **kwargs)
                problems += compare_outputs(flat(outputs), plain, f"{where}: {name}(x)[0] vs "
                                            f"__call__(x), training={training}")
                compared += 1
    if not compared:
        problems.append("keras_api.__call__ of the root has no traced function to compare")
    return problems
'''

CHECKS["LOSSES-ACTIVITY"] = '''
def check(model, path, inputs, data):
    """The root's call_and_return_all_conditional_losses gives the losses a call of the model
    adds; each layer with an activity regularizer: all conditional losses = conditional +
    activity_regularizer_fn(y) / batch size, and activity_regularizer_fn is the regularizer."""
    loaded = tf.saved_model.load(path)
    all_losses_fn = require(root_api(loaded), "call_and_return_all_conditional_losses")
    model(inputs, training=False)
    want = losses_total(model.losses) - sum(weight_regularization_losses(model))
    _, losses = call_saved(all_losses_fn, inputs, False)
    problems = [close(np.float64(losses_total(losses)), np.float64(want),
                      "root call_and_return_all_conditional_losses(x)[1] vs the model's call "
                      "losses", DTYPE)]
    by_path = layers_by_path(model)
    for where, api in saved_tree(loaded):
        layer = by_path.get(where)
        regularizer = getattr(layer, "activity_regularizer", None)
        if regularizer is None or api is None:
            continue
        first = next(((a, k) for t, a, k in traced_calls(getattr(api, "__call__", None))
                      if not t), None)
        if first is None:
            problems.append(f"{where} ({layer.name!r}): no inference-mode call function traced")
            continue
        args, kwargs = first
        outputs, all_losses = require(api, "call_and_return_all_conditional_losses", where)(
            *args, **kwargs)
        _, conditional = require(api, "call_and_return_conditional_losses", where)(
            *args, **kwargs)
        activity_fn = getattr(api, "activity_regularizer_fn", None)
        if activity_fn is None:
            problems.append(f"{where} ({layer.name!r}): no activity_regularizer_fn")
            continue
        # As in Keras (both), a call adds the activity loss divided by the batch size.
        activity = [np.asarray(activity_fn(y), dtype=np.float64)
                    / (y.shape[0] if y.shape.rank else 1) for y in tf.nest.flatten(outputs)]
        problems.append(close(np.float64(losses_total(all_losses)),
                              np.float64(losses_total(conditional) + sum(activity)),
                              f"{where} ({layer.name!r}): all conditional losses vs "
                              "conditional + activity / batch size", DTYPE))
        for index, y in enumerate(tf.nest.flatten(outputs)):
            problems.append(close(np.float64(np.asarray(activity_fn(y))),
                                  np.float64(np.asarray(regularizer(y))),
                                  f"{where} ({layer.name!r}): activity_regularizer_fn(y[{index}])",
                                  DTYPE))
    return problems
'''

CHECKS["SAVE-NO-MUTATION"] = '''
def seed_states(model):
    """(layer, what, value) of every seed a layer keeps: Keras 3 SeedGenerator states,
    tf_keras random generators' seeds and states, seed attributes."""
    out = []
    for layer in model._flatten_layers(include_self=True):
        seed = layer.__dict__.get("seed")
        if isinstance(seed, int) and not isinstance(seed, bool):
            out.append((layer.name, "seed", seed))
        for index, generator in enumerate(getattr(layer, "_seed_generators", None) or []):
            out.append((layer.name, f"SeedGenerator {index} state",
                        np.asarray(generator.state.numpy())))
        generator = layer.__dict__.get("_random_generator")
        if generator is not None:
            out.append((layer.name, "random generator seed", getattr(generator, "_seed", None)))
            state = getattr(getattr(generator, "_generator", None), "state", None)
            if state is not None:
                out.append((layer.name, "random generator state", np.asarray(state.numpy())))
    return out


def snapshot(model, inputs):
    return {
        "outputs": flat(model(inputs, training=False)),
        "losses": [np.asarray(loss) for loss in model.losses],
        "variables": [(v.name, np.array(v.numpy())) for v in model.variables],
        "trainable": [v.name for v in model.trainable_variables],
        "layer_trainable": [(layer.name, layer.trainable) for layer in model._flatten_layers()],
        "calls": [(layer.name, layer.__dict__.get("call"), type(layer).call)
                  for layer in model._flatten_layers()],
        "seeds": seed_states(model),
        "optimizer": id(getattr(model, "optimizer", None)),
        "structure": tf.nest.map_structure(lambda _: 0, model(inputs, training=False)),
    }


def reproduce(model, tmp):
    """Saving leaves the model as it was: outputs, losses, variables (bitwise), trainable
    flags, seeds, its layers' call methods, its optimizer."""
    inputs = model_inputs(DATA)
    before = snapshot(model, inputs)
    save(model, os.path.join(tmp, "model"))
    after = snapshot(model, inputs)
    problems = [f"save changed the model's {key}: {before[key]} before, {after[key]} after"
                for key in ("trainable", "layer_trainable", "optimizer", "structure")
                if before[key] != after[key]]
    if [s[:2] for s in before["seeds"]] != [s[:2] for s in after["seeds"]]:
        problems.append("save changed the model's seed generators")
    for (layer, what, b), (_, _, a) in zip(before["seeds"], after["seeds"]):
        if not np.array_equal(np.asarray(a), np.asarray(b)):
            problems.append(f"save changed layer {layer!r}'s {what}: {b} before, {a} after")
    if [n for n, _ in before["variables"]] != [n for n, _ in after["variables"]]:
        problems.append("save changed the model's variable list")
    problems += [bitwise(a, b, f"variable {name} after save")
                 for (name, b), (_, a) in zip(before["variables"], after["variables"])]
    problems += [bitwise(a, b, f"output {i} after save")
                 for i, (b, a) in enumerate(zip(before["outputs"], after["outputs"]))]
    if len(before["losses"]) != len(after["losses"]):
        problems.append(f"save changed the number of losses: {len(before['losses'])} before, "
                        f"{len(after['losses'])} after")
    problems += [bitwise(a, b, f"loss {i} after save")
                 for i, (b, a) in enumerate(zip(before["losses"], after["losses"]))]
    for (name, own_b, cls_b), (_, own_a, cls_a) in zip(before["calls"], after["calls"]):
        if own_a is not own_b or cls_a is not cls_b:
            problems.append(f"save left layer {name!r}'s call replaced: before {own_b!r}, "
                            f"after {own_a!r} in its __dict__")
    return problems
'''

CHECKS["LOAD-RESUME"] = '''
def iterations(model):
    optimizer = getattr(model, "optimizer", None)
    return None if optimizer is None else int(np.asarray(optimizer.iterations))


def optimizer_variables(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return []
    found = optimizer.variables() if callable(optimizer.variables) else optimizer.variables
    return list(found)


def one_step(model):
    """train_on_batch on the batch after the model's own training: metrics by name."""
    data, targets = NEXT_BATCH
    result = model.train_on_batch(model_inputs(data), targets[0] if len(targets) == 1
                                  else targets, return_dict=True)
    return {name: float(np.asarray(value)) for name, value in result.items()}


def same_step(got, want, who):
    if sorted(got) != sorted(want):
        return [f"{who}'s train_on_batch reports the metrics {sorted(got)}, the original's "
                f"{sorted(want)} (the loss or metric configuration was not restored)"]
    return [close(np.float32(got[n]), np.float32(want[n]), f"{who}: {n} of one step")
            for n in sorted(want)]


def reproduce(model, tmp):
    """A model saved with its optimizer loads compiled, with the optimizer's state: one more
    step of each gives the same metrics, variables and optimizer variables; saved without
    it, the model loads uncompiled or with a fresh optimizer of the same kind."""
    with_optimizer = os.path.join(tmp, "resume")
    without_optimizer = os.path.join(tmp, "fresh-optimizer")
    save(model, with_optimizer, include_optimizer=True)
    save(model, without_optimizer, include_optimizer=False)
    loaded, fresh = load(with_optimizer), load(without_optimizer)
    for who, other in (("", loaded), (" (saved without optimizer)", fresh)):
        if not callable(getattr(other, "train_on_batch", None)):
            return [f"load{who} returned a {type(other).__name__}, which has no train_on_batch"]
    if getattr(loaded, "optimizer", None) is None:
        return ["the loaded model is not compiled: its training config was lost"]
    problems = []
    if iterations(loaded) != iterations(model):
        problems.append(f"the loaded optimizer's iterations is {iterations(loaded)}, the "
                        f"original's {iterations(model)}")
    if getattr(fresh, "optimizer", None) is not None:
        if type(fresh.optimizer).__name__ != type(model.optimizer).__name__:
            problems.append(f"saved without optimizer, the model loads with a "
                            f"{type(fresh.optimizer).__name__}, not a fresh "
                            f"{type(model.optimizer).__name__}")
        if iterations(fresh) != 0:
            problems.append(f"saved without optimizer, the model loads with iterations="
                            f"{iterations(fresh)}: optimizer state was saved after all")
        problems += same_step(one_step(fresh), one_step(loaded),
                              "the model saved without optimizer")
    problems += same_step(one_step(loaded), one_step(model), "the loaded model")
    want_vars, got_vars = list(model.variables), list(loaded.variables)
    if len(got_vars) != len(want_vars):
        problems.append(f"the loaded model has {len(got_vars)} variables, the original "
                        f"{len(want_vars)}")
    problems += [close(g.numpy(), w.numpy(), f"{w.name} after one more step of each")
                 for g, w in zip(got_vars, want_vars)]
    want_slots, got_slots = optimizer_variables(model), optimizer_variables(loaded)
    if len(got_slots) != len(want_slots):
        problems.append(f"the loaded optimizer has {len(got_slots)} variables, the original's "
                        f"{len(want_slots)}")
    problems += [close(np.asarray(g.numpy()), np.asarray(w.numpy()),
                       f"optimizer variable {w.name} after one more step of each")
                 for g, w in zip(got_slots, want_slots)]
    return problems
'''

# The suite's signature fingerprint (conformance/savedmodel/fingerprint.py), written out.
FINGERPRINT = '''
def spec_document(value):
    if isinstance(value, tf.TensorSpec):
        shape = None if value.shape.rank is None else value.shape.as_list()
        return {"dtype": value.dtype.name, "shape": shape}
    if isinstance(value, dict):
        return {k: spec_document(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [spec_document(v) for v in value]
    return value


def signature_io(loaded, key):
    function = loaded.signatures[key]
    def shapes(specs):
        return {n: [s.dtype.name, None if s.shape.rank is None else s.shape.as_list()]
                for n, s in sorted(specs.items())}
    return {"inputs": shapes(function.structured_input_signature[1]),
            "outputs": shapes(function.structured_outputs)}


def fingerprint(path):
    """The suite's signature fingerprint: serving signatures, the keras_api structure
    (attributes, variable dtypes and shapes, layer order, call functions' input signatures)
    and TensorFlow's signature_def_hash; function names are left out."""
    loaded = tf.saved_model.load(path)
    tree = saved_tree(loaded)
    structure, seen = [], []

    def visit(obj):
        if any(obj is s for s in seen):
            return
        seen.append(obj)
        api = getattr(obj, "keras_api", None)
        for child in (list(getattr(api, "layers", None) or []) if api is not None else []):
            visit(child)

    visit(loaded)
    index_of = {id(obj): i for i, obj in enumerate(seen)}
    for (where, api), obj in zip(tree, seen):
        entry = {"path": where, "has_keras_api": api is not None}
        if api is not None:
            entry["attributes"] = sorted(
                n for n in ("variables", "trainable_variables", "non_trainable_variables",
                            "layers", "metrics", "regularization_losses",
                            "layer_regularization_losses", "layer_metrics", *CALL_FUNCTIONS,
                            "activity_regularizer_fn", "_default_save_signature")
                if getattr(api, n, None) is not None)
            for n in ("variables", "trainable_variables", "non_trainable_variables"):
                entry[n] = [[v.dtype.name, v.shape.as_list()]
                            for v in list(getattr(api, n, None) or [])]
            entry["layers"] = [index_of[id(c)] for c in list(getattr(api, "layers", None) or [])]
            entry["regularization_losses"] = len(list(getattr(api, "regularization_losses",
                                                               None) or []))
            entry["functions"] = {
                n: sorted(json.dumps({"args": spec_document(list(c.structured_input_signature[0])),
                                      "kwargs": spec_document(c.structured_input_signature[1])},
                                     sort_keys=True)
                          for c in concrete_functions(getattr(api, n, None)))
                for n in CALL_FUNCTIONS}
        structure.append(entry)
    return {
        "signatures": {k: signature_io(loaded, k) for k in sorted(loaded.signatures.keys())},
        "keras_api": structure,
        "signature_def_hash": (
            str(tf.saved_model.experimental.read_fingerprint(path).signature_def_hash)
            if os.path.exists(os.path.join(path, "fingerprint.pb")) else None),
    }
'''

CHECKS["LOAD-RESAVE"] = FINGERPRINT + '''

def differences(first, second):
    out = [f"{key} differs" for key in ("signatures", "signature_def_hash")
           if first[key] != second[key]]
    for a, b in zip(first["keras_api"], second["keras_api"]):
        if a != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            first_values, second_values = [a.get(k) for k in keys], [b.get(k) for k in keys]
            out.append(f"keras_api at {a['path']}: {keys} differ (first save {first_values}, "
                       f"re-save {second_values})"[:600])
            break
    if len(first["keras_api"]) != len(second["keras_api"]):
        out.append(f"{len(first['keras_api'])} saved objects, re-saved "
                   f"{len(second['keras_api'])}")
    return out


def reproduce(model, tmp):
    """The loader's model, saved again, serves the original's outputs from keras_api.__call__
    and has the first save's signature fingerprint."""
    path, again = os.path.join(tmp, "model"), os.path.join(tmp, "resaved")
    save(model, path)
    save(load(path), again)
    loaded = tf.saved_model.load(again)  # kept: its functions need its variables alive
    root_call = require(root_api(loaded, "the re-saved model's root"), "__call__")
    problems = []
    for data in DATASETS:
        inputs = model_inputs(data)
        problems += compare_outputs(flat(call_saved(root_call, inputs, False)),
                                    flat(model(inputs, training=False)), "re-saved __call__")
    first, second = fingerprint(path), fingerprint(again)
    if first != second:
        problems.append("re-saving the loaded model changed the signature fingerprint: "
                        + "; ".join(differences(first, second)))
    return problems
'''

CHECKS["SIG-DYNAMIC"] = '''
def still_open(shape, axes, what):
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    fixed = [axis + 1 for axis in axes if dims[axis + 1] is not None]
    if fixed:
        return (f"{what}: shape {dims} fixes the dimension(s) {fixed} the model left None "
                "(counting the batch axis as 0)")
    return None


def serving_keys(serving):
    """serving_default's input keys for the model's inputs (in order when the saver named
    them itself, as for a subclassed model)."""
    keys = sorted(serving.structured_input_signature[1])
    if keys == sorted(INPUT_NAMES):
        return dict(zip(INPUT_NAMES, INPUT_NAMES))
    return dict(zip(INPUT_NAMES, sorted(keys, key=lambda k: (len(k), k))))


def open_positions(structure):
    if isinstance(structure, dict):
        pairs = [(name, structure.get(name)) for name in INPUT_NAMES]
    else:
        leaves = tf.nest.flatten(structure)
        pairs = list(zip(INPUT_NAMES, leaves)) if len(leaves) == len(INPUT_NAMES) else []
    return [(name, leaf, OPEN_AXES[name]) for name, leaf in pairs
            if leaf is not None and hasattr(leaf, "shape") and OPEN_AXES.get(name)]


def reproduce(model, tmp):
    """None stays None: in serving_default (inputs, outputs) and in every traced signature of
    the root's call functions; at two lengths past the one the model was built at,
    serving_default, keras_api.__call__ and the loaded model give the model's outputs."""
    path = os.path.join(tmp, "model")
    save(model, path)
    loaded = tf.saved_model.load(path)
    serving = loaded.signatures["serving_default"]
    specs = serving.structured_input_signature[1]
    keys = serving_keys(serving)
    problems = [still_open(specs[key].shape, OPEN_AXES.get(name, ()), f"serving_default input "
                           f"{key!r}") for name, key in keys.items() if key in specs]
    outputs = serving.structured_outputs
    problems += [still_open(outputs[key].shape, axes, f"serving output {key!r}")
                 for key, axes in OUTPUT_OPEN_AXES.items() if key in outputs]
    if [p for p in problems if p]:
        return problems  # the clause stops at the signatures: the calls would only fail
    api = root_api(loaded)
    for name in CALL_FUNCTIONS:
        concretes = concrete_functions(getattr(api, name, None))
        if not concretes:
            problems.append(f"keras_api.{name} of the root has no traced signature")
        for index, concrete in enumerate(concretes):
            args, _ = concrete.structured_input_signature
            problems += [still_open(leaf.shape, axes, f"keras_api.{name} trace {index}, input "
                                    f"{where!r}")
                         for where, leaf, axes in open_positions(args[0] if args else None)]
    if [p for p in problems if p]:
        return problems
    try:
        revived = load(path)
    except NotImplementedError:
        revived = None
    root_call = require(api, "__call__")
    for extra, data in zip((1, 3), DATASETS[1:]):
        inputs = model_inputs(data)
        want = flat(model(inputs, training=False))
        where = f"open axes at probe length + {extra}"
        result = serving(**{keys[n]: tf.constant(data[n]) for n in INPUT_NAMES})
        problems += [close(result[n].numpy(), w, f"serving_default ({where}), output {n!r}")
                     for n, w in zip(OUTPUT_NAMES, want)]
        problems += compare_outputs(flat(call_saved(root_call, inputs, False)), want,
                                    f"keras_api.__call__ ({where})")
        if revived is not None:
            problems += compare_outputs(flat(revived(inputs, training=False)), want,
                                        f"the loaded model ({where})")
    return problems
'''


# The consumers (conformance/consumers.py): the saved model converts, the converted one runs
# and agrees with serving_default; a stage the converter fails on a plain
# tf.saved_model.save of the model too is the converter's limit, not a divergence.
CONSUMER = """
STAGES = ("convert", "load", "names", "run", "values")
# Converted kernels sum and fuse their own way: a few ulps per layer (expected/tolerances.py).
CONVERTED_TOLERANCES = {"float64": 1e-6, "float32": 1e-5, "float16": 1e-2, "bfloat16": 5e-2}


CONVERTED = {}  # SavedModel path -> (input names, output names, run) or its StageFailed


class StageFailed(Exception):
    def __init__(self, stage, message):
        super().__init__(f"{stage}: {message}")
        self.stage, self.message = stage, " ".join(str(message).split())[:600]


def convert(path, tmp):
    \"\"\"(input names, output names, run(feed) -> {name: array}) of the converted model.\"\"\"
    if CONSUMER == "tflite":
        try:
            converter = tf.lite.TFLiteConverter.from_saved_model(
                path, signature_keys=["serving_default"])
            content = converter.convert()
        except Exception as exc:
            raise StageFailed("convert", f"{type(exc).__name__}: {exc}") from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                interpreter = tf.lite.Interpreter(model_content=content, num_threads=1)
            signature = interpreter.get_signature_list()["serving_default"]
            runner = interpreter.get_signature_runner("serving_default")
        except Exception as exc:
            raise StageFailed("load", f"{type(exc).__name__}: {exc}") from None
        return (list(signature["inputs"]), list(signature["outputs"]),
                lambda feed: {k: np.asarray(v) for k, v in runner(**feed).items()})
    import onnxruntime

    output = os.path.join(tmp, os.path.basename(path) + ".onnx")
    done = subprocess.run(
        [sys.executable, "-m", "tf2onnx.convert", "--saved-model", path,
         "--signature_def", "serving_default", "--output", output],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1"))
    if done.returncode != 0 or not os.path.exists(output):
        said = [line for line in done.stderr.splitlines() if "ERROR" in line or "Error" in line]
        raise StageFailed("convert", f"tf2onnx exit {done.returncode}: {' | '.join(said[-3:])}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(output, sess_options=options,
                                               providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise StageFailed("load", f"onnxruntime: {type(exc).__name__}: {exc}") from None
    names = [o.name for o in session.get_outputs()]
    return ([i.name for i in session.get_inputs()], names,
            lambda feed: dict(zip(names, session.run(names, feed))))


def pipeline(path, tmp, inputs, outputs, feed, want):
    \"\"\"Take the SavedModel at ``path`` through every stage; raise StageFailed at the first
    that fails. ``want``: output name -> the array serving_default computed.\"\"\"
    if path not in CONVERTED:  # once per SavedModel: each data set runs the same conversion
        try:
            CONVERTED[path] = convert(path, tmp)
        except StageFailed as failure:
            CONVERTED[path] = failure
    if isinstance(CONVERTED[path], StageFailed):
        raise CONVERTED[path]
    got_inputs, got_outputs, run = CONVERTED[path]
    if sorted(got_inputs) != sorted(inputs) or sorted(got_outputs) != sorted(outputs):
        raise StageFailed("names", f"converted inputs {sorted(got_inputs)} and outputs "
                          f"{sorted(got_outputs)}; expected inputs {sorted(inputs)} and "
                          f"outputs {sorted(outputs)}")
    try:
        got = run({k: np.asarray(v) for k, v in feed.items()})
    except Exception as exc:
        raise StageFailed("run", f"{type(exc).__name__}: {exc}") from None
    for name in outputs:
        g, w = np.asarray(got[name]), np.asarray(want[name])
        tol = max(CONVERTED_TOLERANCES.get(str(d), 0.0) for d in (g.dtype, w.dtype))
        if g.shape != w.shape or not np.allclose(g.astype(np.float64), w.astype(np.float64),
                                                 rtol=tol, atol=tol, equal_nan=True):
            raise StageFailed("values", f"output {name!r}: expected "
                              f"{w.ravel()[:8].tolist()} {list(w.shape)}, actual "
                              f"{g.ravel()[:8].tolist()} {list(g.shape)}")


def save_control(model, path, keys):
    \"\"\"The model's inference call saved plainly (tf.saved_model.save), named as the contract
    says: what the converter makes of a SavedModel nothing could be wrong with.\"\"\"
    specs = {keys[n]: tf.TensorSpec([None, *SERVING_INPUTS[n][1][1:]], SERVING_INPUTS[n][0],
                                    name=keys[n]) for n in INPUT_NAMES}
    by_key = {key: name for name, key in keys.items()}

    def serve(**feed):
        data = {by_key[key]: value for key, value in feed.items()}
        return dict(zip(OUTPUT_NAMES, tf.nest.flatten(model(model_inputs(data),
                                                            training=False))))

    function = tf.function(serve).get_concrete_function(**specs)
    holder = tf.Module()
    # Keras 3 variables hold their tf.Variable as .value; lookup tables are resources the
    # function captures, so they are tracked too.
    holder.model_variables = [v if isinstance(v, tf.Variable) else v.value
                              for v in model.variables]
    holder.model_resources = [
        value for layer in getattr(model, "_flatten_layers", lambda: [model])()
        for value in vars(layer).values()
        if isinstance(value, tf.saved_model.experimental.TrackableResource)]
    holder.serve = function
    tf.saved_model.save(holder, path, signatures={"serving_default": function})


def reproduce(model, tmp):
    \"\"\"serving_default names what the contract says (a converted model keeps its names);
    the converted model gives serving_default's outputs, unless a plain save of the same
    model fails the same stage (then the converter is the one to blame).\"\"\"
    path = os.path.join(tmp, "model")
    with captured_messages():
        save(model, path)
    serving = tf.saved_model.load(path).signatures["serving_default"]
    names = sorted(serving.structured_input_signature[1])
    outputs = sorted(serving.structured_outputs)
    inputs = names if SUBCLASSED else list(INPUT_NAMES)
    if names != sorted(inputs) or outputs != sorted(OUTPUT_NAMES):
        return [f"serving_default names its inputs {names} and outputs {outputs}, the contract "
                f"{sorted(inputs)} and {sorted(OUTPUT_NAMES)} (SIG-SERVING): a converted model "
                "keeps the serving signature's names"]
    keys = {n: n for n in INPUT_NAMES} if names == sorted(INPUT_NAMES) else dict(
        zip(INPUT_NAMES, sorted(names, key=lambda k: (len(k), k))))
    problems = []
    for data in DATASETS:  # the probe lengths, then open axes longer
        feed = {keys[n]: np.asarray(data[n]) for n in INPUT_NAMES}
        result = serving(**{k: tf.constant(v) for k, v in feed.items()})
        want = {n: np.asarray(result[n]) for n in OUTPUT_NAMES}
        try:
            pipeline(path, tmp, list(keys.values()), OUTPUT_NAMES, feed, want)
            continue
        except StageFailed as failure:
            found = failure
        control = os.path.join(tmp, "control")
        if not os.path.exists(control):
            save_control(model, control, keys)
        control_serving = tf.saved_model.load(control).signatures["serving_default"]
        control_want = {n: np.asarray(v) for n, v in control_serving(
            **{k: tf.constant(v) for k, v in feed.items()}).items()}
        try:
            pipeline(control, tmp, list(keys.values()), OUTPUT_NAMES, feed, control_want)
            got_to = "passes every stage"
        except StageFailed as control_failure:
            if STAGES.index(control_failure.stage) <= STAGES.index(found.stage):
                print(f"[{CLAUSE}] unsupported by the converter (not a divergence): "
                      f"{found.stage}: {found.message}; a plain tf.saved_model.save of the "
                      f"model fails {control_failure.stage} too")
                continue
            got_to = f"gets to {control_failure.stage}"
        problems.append(f"{CONSUMER}: the implementation's SavedModel fails at {found.stage}: "
                        f"{found.message}; a plain tf.saved_model.save of the same model "
                        f"{got_to}, so the {CONSUMER} consumer is not the one to blame")
    return problems
"""
CHECKS["CONSUMER-TFLITE"] = 'CONSUMER = "tflite"\n' + CONSUMER
CHECKS["CONSUMER-ONNX"] = 'CONSUMER = "onnx"\n' + CONSUMER


# --- the clauses of fixed models: the script builds the clause's own fixture -----------------
# (its source is written out of conformance/expected/fixtures.py: FIXTURE_FUNCTIONS says which)

FILES = '''
def tree_digest(path):
    """A digest of every file's relative path and bytes under path."""
    digest = hashlib.sha256()
    for directory, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(directory, name)
            digest.update(os.path.relpath(full, path).encode() + b"\\0")
            with open(full, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def optimizer_value_keys(path):
    """The checkpoint keys of the optimizer's variable values (optimizer/...)."""
    prefix = os.path.join(path, "variables", "variables")
    return sorted(key for key, _ in tf.train.list_variables(prefix)
                  if key.endswith("VARIABLE_VALUE") and key.startswith("optimizer/"))
'''

FIXTURE_CHECKS = {}
FIXTURE_FUNCTIONS = {}

FIXTURE_FUNCTIONS["SAVE-OVERWRITE"] = ("set_weights", "small_functional")
FIXTURE_CHECKS["SAVE-OVERWRITE"] = '''
def reproduce(model, tmp):
    """overwrite=False on an existing path raises FileExistsError and leaves the files as
    they were; overwrite=True replaces them with the new model."""
    first = small_functional(K, name="first", units=3)
    second = small_functional(K, name="second", units=5)
    path = os.path.join(tmp, "overwrite")
    save(first, path)
    before = tree_digest(path)
    problems = []
    stdin, sys.stdin = sys.stdin, io.StringIO("")  # a prompt must not wait for a terminal
    try:
        save(second, path, overwrite=False)
    except FileExistsError:
        pass
    except Exception as exc:
        problems.append(f"overwrite=False on an existing path raised {type(exc).__name__} "
                        f"({' '.join(str(exc).split())[:300]}), expected FileExistsError")
    else:
        problems.append("overwrite=False on an existing path raised nothing, expected "
                        "FileExistsError")
    finally:
        sys.stdin = stdin
    if tree_digest(path) != before:
        problems.append("overwrite=False changed the existing files")
    save(second, path, overwrite=True)
    if tree_digest(path) == before:
        problems.append("overwrite=True did not replace the files")
    saved = list(root_api(tf.saved_model.load(path)).variables)
    got, want = [v.shape.as_list() for v in saved], [list(v.shape) for v in second.variables]
    if got != want:
        problems.append(f"after overwrite=True the path holds variables of shapes {got}, the "
                        f"new model's are {want}")
    return problems
'''

FIXTURE_FUNCTIONS["SAVE-SIGNATURES"] = ("set_weights", "small_functional")
FIXTURE_CHECKS["SAVE-SIGNATURES"] = '''
def reproduce(model, tmp):
    """signatures={'predict_scores': predict} writes exactly that signature, with its input
    and output names and shapes, computing the model's outputs."""
    model = small_functional(K, name="signed")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def predict(features):
        return {"scores": model(features, training=False)}

    path = os.path.join(tmp, "signatures")
    save(model, path, signatures={"predict_scores": predict})
    loaded = tf.saved_model.load(path)
    written = sorted(loaded.signatures.keys())
    problems = []
    if written != ["predict_scores"]:
        problems.append(f"signatures written: {written}, given: ['predict_scores']")
    if "predict_scores" not in written:
        return problems
    function = loaded.signatures["predict_scores"]
    inputs = {n: (s.dtype.name, s.shape.as_list())
              for n, s in function.structured_input_signature[1].items()}
    if inputs != {"features": ("float32", [None, 4])}:
        problems.append(f"predict_scores inputs {inputs}, expected features float32 [None, 4]")
    if list(function.structured_outputs) != ["scores"]:
        problems.append(f"predict_scores outputs {list(function.structured_outputs)}, "
                        "expected ['scores']")
        return problems
    x = np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4)
    problems.append(close(function(features=tf.constant(x))["scores"].numpy(),
                          np.asarray(model(x, training=False)), "predict_scores output"))
    return problems
'''

FIXTURE_FUNCTIONS["SAVE-OPTIMIZER"] = ("set_weights", "small_functional", "trained_compiled")
FIXTURE_CHECKS["SAVE-OPTIMIZER"] = '''
def optimizer_variables(model):
    optimizer = model.optimizer
    found = optimizer.variables() if callable(optimizer.variables) else optimizer.variables
    return list(found)


def reproduce(model, tmp):
    """include_optimizer=False writes no optimizer variables and leaves the optimizer as it
    was; include_optimizer=True writes its slot variables bitwise."""
    model = trained_compiled(K)
    optimizer = model.optimizer
    values = [np.array(v.numpy()) for v in optimizer_variables(model)]
    without = os.path.join(tmp, "no-optimizer")
    save(model, without, include_optimizer=False)
    problems = []
    written = optimizer_value_keys(without)
    if written:
        problems.append(f"include_optimizer=False wrote optimizer variables: {written[:5]}")
    if model.optimizer is not optimizer:
        problems.append("saving replaced model.optimizer")
    problems += [bitwise(v.numpy(), value, f"optimizer variable {v.name}")
                 for v, value in zip(optimizer_variables(model), values)]
    with_optimizer = os.path.join(tmp, "with-optimizer")
    save(model, with_optimizer, include_optimizer=True)
    keys = optimizer_value_keys(with_optimizer)
    if not keys:
        return problems + ["include_optimizer=True wrote no optimizer variables"]
    reader = tf.train.load_checkpoint(os.path.join(with_optimizer, "variables", "variables"))
    saved = {reader.get_tensor(key).tobytes() for key in keys}
    for variable, value in zip(optimizer_variables(model), values):
        if value.ndim > 0 and value.tobytes() not in saved:  # slots; scalars may be re-derived
            problems.append(f"optimizer variable {variable.name} was not saved bitwise")
    return problems
'''

FIXTURE_FUNCTIONS["SAVE-UNBUILT"] = ("unbuilt_sequential", "model_with_unbuilt_layer")
FIXTURE_CHECKS["SAVE-UNBUILT"] = '''
def no_call_functions(api):
    return api is None or not any(concrete_functions(getattr(api, n, None))
                                  for n in CALL_FUNCTIONS)


def reproduce(model, tmp):
    """A model whose inputs are unknown is refused before anything is written; a model with
    a never-called sub-layer saves, with a warning naming the layer, which is saved without
    call functions."""
    problems = []
    path = os.path.join(tmp, "unbuilt")
    before = set(os.listdir(tmp))
    try:
        save(unbuilt_sequential(K), path)
    except Exception:
        pass  # tf_keras' save refuses it (raise_model_input_error): so must this one
    else:
        problems.append("saving a model whose inputs are unknown (never built or called) "
                        "succeeded; tf_keras' save refuses it before writing anything")
    if os.path.lexists(path):
        problems.append("the refused save left an entry at the path")
    left = sorted(set(os.listdir(tmp)) - before - {"unbuilt"})
    if left:
        problems.append(f"the refused save left {left[:5]} beside the path")
    path = os.path.join(tmp, "unbuilt-layer")
    model = model_with_unbuilt_layer(K)
    with captured_messages():  # the save's messages only
        save(model, path)
    if not any("never_called_dense" in m for m in SAVE_MESSAGES):
        problems.append("no warning names the unbuilt layer 'never_called_dense'; messages: "
                        f"{[m[:200] for m in SAVE_MESSAGES[:5]]}")
    tree = saved_tree(tf.saved_model.load(path))
    unbuilt = [(where, api) for where, api in tree[1:]
               if api is not None and not list(getattr(api, "variables", None) or [])]
    if not unbuilt:
        problems.append("the unbuilt layer is missing from the saved layer tree")
    problems += [f"the unbuilt layer ({where}) was saved with call functions"
                 for where, api in unbuilt if not no_call_functions(api)]
    if no_call_functions(tree[0][1]):
        problems.append("the built root lost its call functions")
    return problems
'''

CHECKS["LOAD-CORRUPT"] = '''
def relative_files(path):
    return [os.path.relpath(os.path.join(d, f), path) for d, _, files in os.walk(path)
            for f in files]


def truncate(relative, keep=0.5):
    def damage(path):
        target = os.path.join(path, relative)
        size = os.path.getsize(target)
        with open(target, "r+b") as f:
            f.truncate(int(size * keep))
    return damage


def flip(relative, where=0.5):
    def damage(path):
        target = os.path.join(path, relative)
        with open(target, "r+b") as f:
            data = bytearray(f.read())
            data[int(len(data) * where)] ^= 0x10
            f.seek(0)
            f.write(data)
    return damage


def remove(relative):
    return lambda path: os.remove(os.path.join(path, relative))


def replace(relative, content):
    def damage(path):
        with open(os.path.join(path, relative), "wb") as f:
            f.write(content)
    return damage


# The clause's damages, each to its own copy of the saved model.
CORRUPTIONS = (
    ("missing-path", shutil.rmtree),
    ("empty-directory", lambda p: [remove(n)(p) for n in relative_files(p)]),
    ("saved_model.pb-truncated", truncate("saved_model.pb")),
    ("saved_model.pb-bit-flipped", flip("saved_model.pb", 0.37)),
    ("saved_model.pb-garbage", replace("saved_model.pb", b"\\x00not a protobuf\\xff" * 8)),
    ("variables.index-missing", remove("variables/variables.index")),
    ("variables-data-truncated", truncate("variables/variables.data-00000-of-00001", 0.3)),
    ("variables-data-bit-flipped", flip("variables/variables.data-00000-of-00001", 0.5)),
    ("keras_metadata-garbage", replace("keras_metadata.pb", b"\\x0a\\x05{not json")),
)


def reproduce(model, tmp):
    """A damaged copy fails to load with an error naming its path (a harmless bit flip may
    load, and then gives the model's outputs)."""
    path = os.path.join(tmp, "model")
    save(model, path)
    inputs = model_inputs(DATA)
    want = flat(model(inputs, training=False))
    problems = []
    for name, damage in CORRUPTIONS:
        copy = os.path.join(tmp, f"corrupt-{name}")
        shutil.copytree(path, copy)
        if name.startswith("keras_metadata") and not os.path.exists(
                os.path.join(copy, "keras_metadata.pb")):
            continue
        damage(copy)
        try:
            loaded = load(copy)
        except Exception as exc:
            message = str(exc)
            if copy not in message and os.path.basename(copy) not in message:
                problems.append(f"{name}: {type(exc).__name__} does not name the path: "
                                f"{' '.join(message.split())[:300]}")
            continue
        if name != "saved_model.pb-bit-flipped":
            problems.append(f"{name}: the damaged copy loaded without an error (load "
                            f"returned a {type(loaded).__name__})")
            continue
        if not callable(loaded):
            problems.append(f"{name}: load returned a {type(loaded).__name__} without an error")
            continue
        problems += compare_outputs(flat(loaded(inputs, training=False)), want,
                                    f"{name}: output of the loaded damaged copy")
    return problems
'''

FIXTURE_FUNCTIONS["SAVE-CONCURRENT"] = ("set_weights", "small_functional")
FIXTURE_CHECKS["SAVE-CONCURRENT"] = FINGERPRINT + '''

THREADED_SAVE_TIMEOUT = 120  # seconds for three small saves (about 1 s each alone)


def reproduce(model, tmp):
    """Three models saved from three threads at once equal the same saves one after another:
    no error, no deadlock, the same fingerprints and variables."""
    models = [small_functional(K, name=f"m{i}", units=2 + i) for i in range(3)]
    sequential = [os.path.join(tmp, f"sequential-{i}") for i in range(3)]
    for one, path in zip(models, sequential):
        save(one, path)
    threaded = [os.path.join(tmp, f"threaded-{i}") for i in range(3)]
    errors = []

    def save_one(one, path):
        try:
            save(one, path)
        except Exception as exc:
            errors.append(f"{one.name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=save_one, args=pair, daemon=True, name=pair[0].name)
               for pair in zip(models, threaded)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + THREADED_SAVE_TIMEOUT
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        return [f"saves from threads did not finish in {THREADED_SAVE_TIMEOUT} s (a deadlock?):"
                f" {', '.join(stuck)} still saving"]
    if errors:
        return [f"saves from threads failed: {errors}"]
    problems = []
    for one, first, second in zip(models, sequential, threaded):
        if json.dumps(fingerprint(second), sort_keys=True) != json.dumps(fingerprint(first),
                                                                        sort_keys=True):
            problems.append(f"{one.name}: the threaded save's structure differs from the "
                            "sequential one")
        want = [v.numpy() for v in root_api(tf.saved_model.load(first)).variables]
        got = [v.numpy() for v in root_api(tf.saved_model.load(second)).variables]
        problems += [bitwise(g, w, f"{one.name}: threaded save's variable {i}")
                     for i, (g, w) in enumerate(zip(got, want))]
    return problems
'''

FIXTURE_FUNCTIONS["SAVE-ASSETS"] = ("set_weights",)
FIXTURE_CHECKS["SAVE-ASSETS"] = r'''
ASSET_DATA = {
    "in_0": np.array([["w0", "w1", "w7"], ["w3", "w3", "w5"]]),
    "in_1": np.array([[0, 1, 7], [2, 6, 6]], dtype="int32"),
}
# Serves the saved model in a fresh interpreter (TensorFlow only), its inputs by name.
SERVE = """
import json, sys
import numpy as np
import tensorflow as tf
path, data = sys.argv[1], json.loads(sys.argv[2])
fn = tf.saved_model.load(path).signatures["serving_default"]
names = sorted(fn.structured_input_signature[1])
keys = names if set(names) == set(data) else sorted(data)
args = {n: tf.constant(np.array(data[k], dtype=fn.structured_input_signature[1][n].dtype.name
        if fn.structured_input_signature[1][n].dtype != tf.string else object))
        for n, k in zip(names, keys)}
out = fn(**args)
print(json.dumps([np.asarray(out[k]).tolist() for k in sorted(out)]))
"""


def vocabulary_file(folder, entries):
    """A vocabulary file holding entries one a line (named by its content, as the suite's)."""
    text = "".join(f"{e}\n" for e in entries)
    path = os.path.join(folder, f"vocab_{zlib.crc32(text.encode()):08x}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def asset_model(string_vocab, int_vocab, folder):
    """The clause's model: StringLookup and IntegerLookup, each with a vocabulary file,
    counted, into a Dense; its outputs on ASSET_DATA; the files' bytes by path."""
    os.makedirs(folder, exist_ok=True)
    strings = vocabulary_file(folder, [f"w{i}" for i in string_vocab])
    ints = vocabulary_file(folder, list(int_vocab))
    in_0 = K.Input((3,), dtype="string", name="in_0")
    in_1 = K.Input((3,), dtype="int32", name="in_1")
    x_0 = K.layers.StringLookup(vocabulary=strings, output_mode="count",
                                name="n0_stringlookup")(in_0)
    x_1 = K.layers.IntegerLookup(vocabulary=ints, output_mode="count",
                                 name="n1_integerlookup")(in_1)
    x_2 = K.layers.Concatenate(name="n2_concatenate")([x_0, x_1])
    model = K.Model([in_0, in_1], K.layers.Dense(2, name="n3_dense")(x_2), name="model")
    set_weights(model, seed=7)
    expected = np.asarray(model([ASSET_DATA["in_0"], ASSET_DATA["in_1"]]))
    contents = {}
    for path in (strings, ints):
        with open(path, "rb") as f:
            contents[path] = f.read()
    return model, expected, contents


def asset_files(path):
    root = os.path.join(path, "assets")
    out = {}
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        with open(os.path.join(root, name), "rb") as f:
            out[name] = f.read()
    return out


def served_in_fresh_process(path, expected, what):
    data = {k: v.tolist() for k, v in ASSET_DATA.items()}
    run = subprocess.run([sys.executable, "-c", SERVE, path, json.dumps(data)],
                         capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        return [f"{what}: serving_default failed in a fresh process: "
                f"{run.stderr.strip().splitlines()[-3:]}"]
    served = [np.array(o) for o in json.loads(run.stdout.strip().splitlines()[-1])]
    return [close(served[0], expected, what)]


def reproduce(model, tmp):
    """The vocabulary files travel as assets/ (named relatively in saved_model.pb, not by
    their original paths in keras_metadata.pb) and serve once the originals are gone; a
    model saved over another leaves none of the earlier model's assets."""
    from tensorflow.core.protobuf import saved_model_pb2

    problems = []
    model, expected, originals = asset_model((0, 2, 3), (1, 2, 6), os.path.join(tmp, "vocab"))
    path = os.path.join(tmp, "assets")
    save(model, path)
    assets = asset_files(path)
    missing = [f for f, text in originals.items() if text not in assets.values()]
    if missing:
        problems.append(f"no file under assets/ holds the vocabulary of {missing}")
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    named = [a.filename for a in proto.meta_graphs[0].asset_file_def]
    if not named or not all(not os.path.isabs(n) and n in assets for n in named):
        problems.append(f"saved_model.pb names its assets {named}, not files under assets/ "
                        f"({sorted(assets)})")
    metadata = b""
    if os.path.exists(os.path.join(path, "keras_metadata.pb")):  # a plain SavedModel has none
        with open(os.path.join(path, "keras_metadata.pb"), "rb") as f:
            metadata = f.read()
    absolute = [o for o in originals if o.encode() in metadata]
    if absolute:
        problems.append(f"keras_metadata.pb holds the original vocabulary paths {absolute}")
    for f in originals:
        os.remove(f)
    problems += served_in_fresh_process(path, expected, "serving_default after the "
                                        "vocabulary files went")
    folder = os.path.join(tmp, "vocab-over")
    model_a, _, originals_a = asset_model((0, 2, 3), (1, 2, 6), folder)
    model_b, expected_b, originals_b = asset_model((1, 4), (0, 3, 5, 7), folder)
    over = os.path.join(tmp, "assets-over")
    save(model_a, over)
    save(model_b, over)
    assets = asset_files(over)
    stale = [name for name, text in assets.items() if text in originals_a.values()]
    if stale:
        problems.append(f"assets of the earlier save left behind: {stale}")
    if sorted(assets.values()) != sorted(originals_b.values()):
        problems.append(f"assets/ holds {sorted(assets)}, not the second model's vocabularies "
                        "only")
    problems += served_in_fresh_process(over, expected_b, "serving_default of the model saved "
                                        "over")
    return problems
'''
