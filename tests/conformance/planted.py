"""Planted-bug implementations: the reference with one realistic bug each.

Every class names the clause that must catch it (``caught_by``). Bugs that live inside the
saver are planted by wrapping one of the reference's own steps for the duration of a save,
so the rest of the save is the reference's, unchanged. The modules are taken from
``sys.modules`` (``importlib``): ``reference_impl.save`` as an attribute is the package's
``save`` function, not its module, and patching that would only make every save raise.
"""

import contextlib
import importlib
import logging
import shutil
import time
import warnings

import numpy as np

from conformance.implementations import ReferenceImplementation


@contextlib.contextmanager
def wrapped(module, name, wrapper):
    """Replace ``module.name`` by ``wrapper(original)`` inside the block."""
    original = getattr(module, name)
    setattr(module, name, wrapper(original))
    try:
        yield
    finally:
        setattr(module, name, original)


def _module(name):
    return importlib.import_module(f"reference_impl.{name}")


def _writing_in_place():
    """The reference's save with its atomic directory replaced by the target itself."""

    @contextlib.contextmanager
    def in_place(target):
        from pathlib import Path

        Path(target).mkdir(parents=True, exist_ok=True)
        yield Path(target)

    return wrapped(_module("atomic"), "atomic_directory", lambda _: in_place)


def _post_process_nodes(change):
    """Wrap the reference's ``mirror_node`` so each saved node is changed by ``change``."""

    def wrapper(original):
        def mirror_node(layer, **kwargs):
            node = original(layer, **kwargs)
            change(node, layer, kwargs)
            return node

        return mirror_node

    return wrapped(_module("attributes"), "mirror_node", wrapper)


class PlantedBug(ReferenceImplementation):
    caught_by = ""
    pytest_args = ()  # extra arguments that select the catching test
    # A second bug for a clause that another bug already shows catching: its run (a suite
    # subprocess, 20-50 s) is the nightly profile's; the ci and dev runs keep one per clause.
    nightly_only = False

    def planted(self):
        """The context that plants the bug for one save."""
        return contextlib.nullcontext()

    def save(self, model, path, **kwargs):
        with self.planted():
            super().save(model, path, **kwargs)


class DropsNonTrainable(PlantedBug):
    """Leaves non-trainable variables (BatchNormalization statistics...) out of keras_api."""

    name = "drops-non-trainable"
    caught_by = "VARS-EXACT"

    def planted(self):
        def change(node, layer, kwargs):
            api = node.keras_api
            api.non_trainable_variables = []
            api.variables = list(api.trainable_variables)
            if kwargs.get("is_root"):
                node.variables = api.variables

        return _post_process_nodes(change)


class TracesOnlyInference(PlantedBug):
    """Traces the call functions once, as if no layer took ``training``."""

    name = "traces-only-inference"
    caught_by = "CALL-TRAINING"

    def planted(self):
        return wrapped(_module("tracing"), "uses_training", lambda _: lambda layer: False)


class ForgetsActivityRegularizer(PlantedBug):
    """Saves the activity-free call function as the one with all conditional losses."""

    name = "forgets-activity-regularizer"
    caught_by = "LOSSES-ACTIVITY"

    def planted(self):
        def change(node, layer, kwargs):
            api = node.keras_api
            plain = getattr(api, "call_and_return_conditional_losses", None)
            if plain is not None and getattr(layer, "activity_regularizer", None) is not None:
                api.call_and_return_all_conditional_losses = plain
                if kwargs.get("is_root"):
                    node.call_and_return_all_conditional_losses = plain

        return _post_process_nodes(change)


class LosesARegularizer(PlantedBug):
    """Drops the last weight-regularization loss function of every layer."""

    name = "loses-a-regularizer"
    caught_by = "LOSSES-REGULARIZATION"

    def planted(self):
        def change(node, layer, kwargs):
            api = node.keras_api
            api.regularization_losses = list(api.regularization_losses)[:-1]
            if kwargs.get("is_root"):
                node.regularization_losses = api.regularization_losses

        return _post_process_nodes(change)


class ReversesSubLayers(PlantedBug):
    """Lists ``keras_api.layers`` in reverse order."""

    name = "reverses-sub-layers"
    caught_by = "LAYERS-TREE"

    def planted(self):
        def change(node, layer, kwargs):
            node.keras_api.layers = list(reversed(list(node.keras_api.layers)))

        return _post_process_nodes(change)


class FixesBatchDimension(PlantedBug):
    """Writes the serving signature with a batch dimension of 1 instead of None."""

    name = "fixes-batch-dimension"
    caught_by = "SIG-SERVING"

    def planted(self):
        import tensorflow as tf

        def wrapper(original):
            def root_signature(model):
                spec = original(model)
                return tf.nest.map_structure(
                    lambda s: tf.TensorSpec([1, *s.shape[1:]], s.dtype, name=s.name), spec
                )

            return root_signature

        return wrapped(_module("signatures"), "root_signature", wrapper)


class PinsOpenDimensions(PlantedBug):
    """Traces and serves the root with every open non-batch dimension fixed to 8, the longest
    drawn input (as a saver tracing with one padded example batch does): shorter or longer
    inputs are refused."""

    name = "pins-open-dimensions"
    caught_by = "SIG-DYNAMIC"

    def planted(self):
        import tensorflow as tf

        def pin(s):
            dims = s.shape.as_list() if s.shape.rank is not None else None
            if not dims:
                return s
            dims = dims[:1] + [8 if d is None else d for d in dims[1:]]
            return tf.TensorSpec(dims, s.dtype, name=s.name)

        def wrapper(original):
            def root_signature(model):
                spec = original(model)
                return None if spec is None else tf.nest.map_structure(pin, spec)

            return root_signature

        return wrapped(_module("signatures"), "root_signature", wrapper)


class NestsServingCalls(PlantedBug):
    """Traces ``serving_default`` while the children call their traced functions, so it
    nests calls into the saved layer functions instead of being one flat function."""

    name = "nests-serving-calls"
    caught_by = "SIG-SERVING"
    pytest_args = ("-k", "flat")

    def planted(self):
        def wrapper(original):
            return lambda collections, root: contextlib.nullcontext()

        return wrapped(_module("tracing"), "_own_calls", wrapper)


class CustomServing(PlantedBug):
    """Writes its own ``serving_default``: the model's outputs, changed by ``serve_outputs``."""

    def serve_outputs(self, keys, outputs):
        return dict(zip(keys, outputs))

    def save(self, model, path, *, signatures=None, **kwargs):
        import tensorflow as tf

        from reference_impl.signatures import output_names, root_signature

        signature = root_signature(model)  # one spec structure per call argument
        spec = signature[0] if signature is not None else None
        if signatures is None and spec is not None:
            names = output_names(model, model.outputs) if hasattr(model, "outputs") else None

            @tf.function(input_signature=[spec])
            def serve(inputs):
                outputs = tf.nest.flatten(model(inputs, training=False))
                keys = list(names or [f"output_{i + 1}" for i in range(len(outputs))])
                return self.serve_outputs(keys, outputs)

            signatures = {"serving_default": serve}
        super().save(model, path, signatures=signatures, **kwargs)


class HashOrderedOutputs(CustomServing):
    """Pairs serving output names with outputs in ``set`` order, which follows the hash seed."""

    name = "hash-ordered-outputs"
    caught_by = "SIG-STABLE"
    pytest_args = ("-k", "processes")

    def serve_outputs(self, keys, outputs):
        return dict(zip(list(set(keys)), outputs))


class PythonInServing(CustomServing):
    """Passes the serving outputs through a Python function (``tf.numpy_function``).

    It serves in the process that saved it, but no converter can translate the op.
    """

    name = "python-in-serving"
    caught_by = "CONSUMER-TFLITE"

    def serve_outputs(self, keys, outputs):
        import tensorflow as tf

        def through_python(tensor):
            result = tf.numpy_function(lambda a: a, [tensor], tensor.dtype, stateful=False)
            result.set_shape(tensor.shape)
            return result

        return {key: through_python(out) for key, out in zip(keys, outputs)}


class PythonInServingForOnnx(PythonInServing):
    """The same Python op in ``serving_default``, met by tf2onnx."""

    name = "python-in-serving-onnx"
    caught_by = "CONSUMER-ONNX"


class ServesInHalfPrecision(CustomServing):
    """Computes ``serving_default``'s outputs through float16 (a saver that "optimizes" serving)."""

    name = "serves-in-half-precision"
    caught_by = "CALL-INFERENCE"

    def serve_outputs(self, keys, outputs):
        return dict(zip(keys, _through_float16(list(outputs))))


class IgnoresOverwrite(PlantedBug):
    """Overwrites an existing path even when asked not to."""

    name = "ignores-overwrite"
    caught_by = "SAVE-OVERWRITE"

    def save(self, model, path, *, overwrite=True, **kwargs):
        super().save(model, path, overwrite=True, **kwargs)


class AlwaysSavesOptimizer(PlantedBug):
    """Saves the optimizer whatever ``include_optimizer`` says."""

    name = "always-saves-optimizer"
    caught_by = "SAVE-OPTIMIZER"

    def save(self, model, path, *, include_optimizer=True, **kwargs):
        super().save(model, path, include_optimizer=True, **kwargs)


class IgnoresSignatures(PlantedBug):
    """Drops the ``signatures=`` argument and writes the default one."""

    name = "ignores-signatures"
    caught_by = "SAVE-SIGNATURES"

    def save(self, model, path, *, signatures=None, **kwargs):
        super().save(model, path, **kwargs)


class FreezesLayerOnSave(PlantedBug):
    """Leaves the last layer frozen after saving (a trainable flag toggled and not restored)."""

    name = "freezes-layer-on-save"
    caught_by = "SAVE-NO-MUTATION"
    nightly_only = True

    def save(self, model, path, **kwargs):
        super().save(model, path, **kwargs)
        layers = [layer for layer in model._flatten_layers() if layer.trainable_weights]
        if layers:
            layers[-1].trainable = False


class SilentAboutUnbuilt(PlantedBug):
    """Skips unbuilt layers without telling anyone."""

    name = "silent-about-unbuilt"
    caught_by = "SAVE-UNBUILT"
    nightly_only = True

    def planted(self):
        @contextlib.contextmanager
        def silenced():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                logging.disable(logging.CRITICAL)
                try:
                    yield
                finally:
                    logging.disable(logging.NOTSET)

        return silenced()


class SavesInputlessModel(PlantedBug):
    """Saves a never-built root model with a warning and no functions, instead of refusing."""

    name = "saves-inputless-model"
    caught_by = "SAVE-UNBUILT"
    pytest_args = ("-k", "inputless")

    def planted(self):
        def wrapper(original):
            def let_through(model, filepath):
                message = f"'{model.name}' has no known inputs; saved without functions"
                warnings.warn(message, stacklevel=2)

            return let_through

        return wrapped(_module("save"), "_require_known_inputs", wrapper)


class DeletesBeforeWriting(PlantedBug):
    """Removes the existing model, then writes the new one in its place (not atomic)."""

    name = "deletes-before-writing"
    caught_by = "SAVE-ATOMIC"
    nightly_only = True

    def save(self, model, path, **kwargs):
        shutil.rmtree(path, ignore_errors=True)

        with _writing_in_place():
            super().save(model, path, **kwargs)


class WritesMetadataAfterSwap(PlantedBug):
    """Moves the new directory into place, then writes its last file (keras_metadata.pb,
    and the manifest again) there: a kill or fault in between leaves an incomplete model."""

    name = "writes-metadata-after-swap"
    caught_by = "SAVE-ATOMIC"
    pytest_args = ("-k", "fault_at_every")

    def save(self, model, path, **kwargs):
        from pathlib import Path

        save_module = _module("save")
        pending = []

        def later(original):
            def write_later(directory, *args):
                pending.append((original, args))

            return write_later

        with wrapped(save_module, "_write_metadata", later):
            super().save(model, path, **kwargs)
        for original, args in pending:
            original(Path(path), *args)
            _module("integrity").write_manifest(Path(path))


def _through_float16(structure):
    import tensorflow as tf

    return tf.nest.map_structure(
        lambda t: tf.cast(tf.cast(t, tf.float16), t.dtype) if t.dtype.is_floating else t,
        structure,
    )


class RoundsItsCallFunction(PlantedBug):
    """Traces every layer's ``__call__`` through float16, the functions with losses not."""

    name = "rounds-its-call-function"
    caught_by = "CALL-CONSISTENT"

    def planted(self):
        import tensorflow as tf

        tracing = _module("tracing")

        def wrapper(original):
            def endpoints(collection):
                functions = original(collection)
                exact = functions["__call__"]

                def rounded(*args):
                    return _through_float16(exact(*args))

                name = f"{collection.layer.name}_layer_call_fn"
                function = tf.function(
                    tracing.with_parameters(rounded, collection.parameter_names, name),
                    autograph=False,
                )
                for signature in collection.signatures:
                    for training in (True, False) if collection.takes_training else (None,):
                        function.get_concrete_function(
                            *signature, *collection._training_args(training)
                        )
                functions["__call__"] = function
                return functions

            return endpoints

        return wrapped(tracing.LayerCallFunctions, "endpoints", wrapper)


class KeepsTheModelOnTheSaver(PlantedBug):
    """Keeps the model being saved on the saver object, which another thread's save replaces."""

    name = "keeps-the-model-on-the-saver"
    caught_by = "SAVE-CONCURRENT"

    def save(self, model, path, **kwargs):
        self._model = model
        time.sleep(0.5)  # the saver's preparation: long enough for threads to interleave
        super().save(self._model, path, **kwargs)


class DropsSubLayerCallFunctions(PlantedBug):
    """Leaves ``call_and_return_all_conditional_losses`` out of every sub-layer's keras_api."""

    name = "drops-sub-layer-call-functions"
    caught_by = "FORMAT-KERAS-API"

    def planted(self):
        def change(node, layer, kwargs):
            api = getattr(node, "keras_api", None)
            if kwargs.get("is_root") or api is None:
                return
            if getattr(api, "call_and_return_all_conditional_losses", None) is not None:
                delattr(api, "call_and_return_all_conditional_losses")

        return _post_process_nodes(change)


class RevivesAStaleVariable(PlantedBug):
    """Revives the first variable with zeros, its value before the checkpoint is restored."""

    name = "revives-a-stale-variable"
    caught_by = "LOAD-RESAVE"

    def load(self, path):
        model = super().load(path)
        variables = list(model.variables)
        if variables:
            variables[0].assign(np.zeros(variables[0].shape, variables[0].dtype))
        return model


class RevivedSequentialKeepsSavedCall(PlantedBug):
    """Revives a Sequential of unknown layers with the model's saved call function as its
    call (as for any revived model), so pop() and add() change its layers but not what it
    computes or what a second save serves."""

    name = "revived-sequential-keeps-saved-call"
    caught_by = "LOAD-RESAVE"
    nightly_only = True
    pytest_args = ("-k", "sequential")

    def planted(self):
        revive = _module("revive")

        def wrapper(original):
            def revive_sequential(reviver, loaded, identifiers):
                model = original(reviver, loaded, identifiers)
                if model is not None:
                    saved = revive._SavedFunctions(loaded).api.call_and_return_conditional_losses
                    takes_training = revive._takes_training(saved)

                    def call(inputs, training=None, mask=None):
                        args = (inputs, bool(training)) if takes_training else (inputs,)
                        return saved(*args)[0]

                    object.__setattr__(model, "call", call)
                return model

            return revive_sequential

        return wrapped(revive._Reviver, "revive_sequential", wrapper)

    def load(self, path):
        with self.planted():
            return super().load(path)


class FreezesOnLoad(PlantedBug):
    """Revives every variable as non-trainable."""

    name = "freezes-on-load"
    caught_by = "LOAD-REVIVE"

    def load(self, path):
        model = super().load(path)
        model.trainable = False
        return model


class ForgetsTheOptimizerState(PlantedBug):
    """Compiles the loaded model from its training config but never reads the optimizer's
    saved variables (what tensorflow/tensorflow#44670 reports of tf_keras)."""

    name = "forgets-the-optimizer-state"
    caught_by = "LOAD-RESUME"

    def load(self, path):
        def wrapper(original):
            def saved_values(files, where):
                return None if where[:2] == ("root", "optimizer") else original(files, where)

            return saved_values

        with wrapped(_module("load"), "_saved_values", wrapper):
            return super().load(path)


class RevivesWithoutMasks(PlantedBug):
    """Revives layers without the mask they computed (the saved mask function is ignored)."""

    name = "revives-without-masks"
    caught_by = "LOAD-REVIVE"
    nightly_only = True
    # Models that are revived (KscGain is unregistered) and make masks.
    supports = {"kinds": ["KscGain", "KscMaskZero", "Masking", "LSTM"]}

    def load(self, path):
        revive = _module("revive")

        def drop_mask(original):
            def init(layer, *args, **kwargs):
                original(layer, *args, **kwargs)
                layer._mask_function = None
                layer.supports_masking = False

            return init

        with wrapped(revive.RevivedLayer, "__init__", drop_mask):
            return super().load(path)


class RevivesUnfrozen(PlantedBug):
    """Revives every layer trainable, whatever its saved trainable flag."""

    name = "revives-unfrozen"
    caught_by = "LOAD-REVIVE"
    nightly_only = True
    supports = {"kinds": ["KscGain", "Dense"]}  # KscGain is unregistered and often frozen

    def load(self, path):
        model = super().load(path)
        for layer in model._flatten_layers(include_self=False):
            layer.trainable = True
        return model


class CallsWithDefaultArguments(PlantedBug):
    """Traces sub-layers' functions with their call's default keyword arguments only, so a
    revived layer ignores ``scale=`` (and the model's graph still inlines the true value)."""

    name = "calls-with-default-arguments"
    caught_by = "LOAD-REVIVE"
    nightly_only = True
    supports = {"kinds": ["KscGain", "KscScaleKwarg"], "topologies": ["functional"]}

    def planted(self):
        tracing = _module("tracing")
        return wrapped(tracing, "literal_call_arguments", lambda original: lambda layer: {})


class AdvancesSeedsOnSave(PlantedBug):
    """Runs one eager training call while saving (to build everything) and restores the
    float weights it moved, but not the seed generators it advanced."""

    name = "advances-seeds-on-save"
    caught_by = "SAVE-NO-MUTATION"
    supports = {"kinds": ["KscSeededNoise", "Dropout", "GaussianNoise", "Dense"]}

    def save(self, model, path, **kwargs):
        import tensorflow as tf

        floats = [v for v in model.variables if "float" in str(v.dtype)]
        values = [np.array(v.numpy()) for v in floats]
        inputs = tf.nest.map_structure(
            lambda spec: tf.zeros([1 if d is None else d for d in spec.shape], spec.dtype),
            _module("signatures").root_signature(model),
        )
        model(*inputs, training=True)
        for variable, value in zip(floats, values):
            variable.assign(value)
        super().save(model, path, **kwargs)


class TracesSubLayerTrainingOnlyWhenOwn(PlantedBug):
    """Gives a layer's functions ``training`` only when its own call takes it, not when only a
    sub-layer's does (a BatchNormalization inside a custom block then always infers)."""

    name = "traces-own-training-only"
    caught_by = "CALL-TRAINING"
    nightly_only = True
    supports = {"kinds": ["KscNormBlock", "Dense"]}

    def planted(self):
        tracing = _module("tracing")
        return wrapped(
            tracing, "uses_training", lambda original: lambda layer: layer._call_has_training_arg
        )


class SwallowsLoadErrors(PlantedBug):
    """Returns None instead of raising when a file is damaged."""

    name = "swallows-load-errors"
    caught_by = "LOAD-CORRUPT"

    def load(self, path):
        try:
            return super().load(path)
        except Exception:
            return None


class TakesLegacyActivationsByName(PlantedBug):
    """Translates a tf_keras config without its activations: ``"hard_sigmoid"`` becomes
    Keras 3's ``hard_sigmoid`` (``x / 6 + 0.5``), not tf_keras' (``0.2 x + 0.5``), so a model
    rebuilt from its config computes something else than the writer's."""

    name = "takes-legacy-activations-by-name"
    caught_by = "LOAD-LEGACY"

    def load(self, path):
        with wrapped(_module("legacy_config"), "_activations", lambda original: lambda c: c):
            return super().load(path)


class KeepsStaleAssets(PlantedBug):
    """Writes over an existing model in place, file by file, without clearing it first: the
    earlier save's vocabulary files stay in ``assets/``."""

    name = "keeps-stale-assets"
    caught_by = "SAVE-ASSETS"

    def save(self, model, path, **kwargs):
        with _writing_in_place():
            super().save(model, path, **kwargs)


class LetsDecodeErrorsOut(PlantedBug):
    """Parses ``keras_metadata.pb`` itself before the reference does, without wrapping
    protobuf's error: a damaged file raises a bare ``google.protobuf.message.DecodeError``,
    outside the error family and naming no path."""

    name = "lets-decode-errors-out"
    caught_by = "LOAD-HOSTILE"

    def load(self, path):
        import os

        from reference_impl.metadata import METADATA_FILENAME, SavedMetadata

        def bare(original):
            def read_metadata(dirpath):
                with open(os.path.join(dirpath, METADATA_FILENAME), "rb") as file:
                    SavedMetadata().ParseFromString(file.read())
                return original(dirpath)

            return read_metadata

        with wrapped(_module("validate"), "read_metadata", bare):
            return super().load(path)


PLANTED = (
    WritesMetadataAfterSwap,
    DropsNonTrainable,
    TracesOnlyInference,
    ForgetsActivityRegularizer,
    LosesARegularizer,
    ReversesSubLayers,
    FixesBatchDimension,
    PinsOpenDimensions,
    NestsServingCalls,
    HashOrderedOutputs,
    PythonInServing,
    PythonInServingForOnnx,
    ServesInHalfPrecision,
    RoundsItsCallFunction,
    KeepsTheModelOnTheSaver,
    DropsSubLayerCallFunctions,
    RevivesAStaleVariable,
    RevivedSequentialKeepsSavedCall,
    IgnoresOverwrite,
    AlwaysSavesOptimizer,
    IgnoresSignatures,
    FreezesLayerOnSave,
    SilentAboutUnbuilt,
    SavesInputlessModel,
    DeletesBeforeWriting,
    FreezesOnLoad,
    ForgetsTheOptimizerState,
    RevivesWithoutMasks,
    RevivesUnfrozen,
    CallsWithDefaultArguments,
    AdvancesSeedsOnSave,
    TracesSubLayerTrainingOnlyWhenOwn,
    SwallowsLoadErrors,
    TakesLegacyActivationsByName,
    KeepsStaleAssets,
    LetsDecodeErrorsOut,
)
