"""The clauses of the Keras SavedModel contract: stable ids, what each requires, and why.

The ids are public: implementations name them in ``claims``, users in
``--conformance-clauses`` and in xfails files, reports key on them. Add ids; never rename.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Clause:
    id: str
    group: str  # the test module that checks it: conformance/clauses/test_<group>.py
    requires: str
    why: str
    checked_by: str = ""

    def __repr__(self):
        return f"Clause({self.id})"


CLAUSES = (
    Clause(
        "FORMAT-KERAS-API",
        "format",
        "The root and every built sub-layer carry `keras_api` with the object lists "
        "(variables, trainable_variables, non_trainable_variables, layers, metrics, "
        "regularization_losses, layer_regularization_losses, layer_metrics) and the call "
        "functions the format defines; the root also carries the common endpoints directly.",
        "Loaders (tf_keras' revive, TFSMLayer, serving tools) find everything through "
        "`keras_api`; a missing attribute makes the model unloadable as Keras.",
        "Drawn models (shared stream) saved once; `tf.saved_model.load` of the files; every model "
        "layer but InputLayer is looked up at its place in the saved tree and its `keras_api` "
        "attributes checked; the root's direct endpoints too.",
    ),
    Clause(
        "VARS-EXACT",
        "variables",
        "Every model variable is saved once, bitwise equal, with the same shape and dtype; "
        "the trainable / non-trainable partition and order are the model's.",
        "Fine-tuning a reloaded model needs the same trainable set; a variable saved twice "
        "silently diverges after restore.",
        "Root `keras_api` variable lists compared with the model's, index by index, bitwise; the "
        "checkpoint's variable count equals the model's.",
    ),
    Clause(
        "LAYERS-TREE",
        "variables",
        "`keras_api.layers` mirrors the sub-layers (count and order); a shared layer is one "
        "saved object.",
        "Revival rebuilds the layer graph from this list; a duplicated shared layer doubles "
        "its weights.",
        "For every layer with sub-layers, `keras_api.layers` has the same length and each entry's "
        "variable shapes match the sub-layer at that index; a layer reached by two paths is the "
        "same loaded object.",
    ),
    Clause(
        "CALL-INFERENCE",
        "calls",
        "The saved `__call__` and `serving_default`, with training=False, equal the "
        "original's output on drawn inputs.",
        "The first thing a user checks; keras-team/keras#20985 (exported outputs differ).",
        "Root `keras_api.__call__(x, training=False)` and `serving_default(**x)` against the "
        "model's eager output, dtype tolerances (`expected/tolerances.py`).",
    ),
    Clause(
        "CALL-TRAINING",
        "calls",
        "With training=True, deterministic layers (BatchNormalization, ...) equal the "
        "original in training mode; both modes are callable. A layer whose call takes no "
        "`training` but holds a sub-layer that does gets functions taking `training` and "
        "passing it down, as the format's tf_keras saver gives it.",
        "tensorflow/tensorflow#60855: the training mode is lost on export; "
        "tensorflow/tensorflow#48448: a loaded model's BatchNormalization needs the mode set.",
        "Root `__call__` traced for both training values; training=False equals the model; "
        "training=True equals it when every drawn layer is deterministic in training (else "
        "shapes); every saved sub-layer whose call or a descendant's takes `training` is traced "
        "for both values and, for deterministic models, each mode equals the original layer on "
        "the same made-up input (single-tensor calls); variables restored afterwards.",
    ),
    Clause(
        "CALL-CONSISTENT",
        "calls",
        "For every layer, `__call__(x)` == `call_and_return_conditional_losses(x)[0]` == "
        "`call_and_return_all_conditional_losses(x)[0]`.",
        "All call functions of a layer are traced from the same inputs; a loader may use any "
        "of them.",
        "Every saved layer, every traced signature: the three call functions on the same made-up "
        "inputs give equal outputs (training=True only for deterministic models).",
    ),
    Clause(
        "LOSSES-REGULARIZATION",
        "losses",
        "The zero-argument `regularization_losses` evaluate to the original's "
        "weight-regularization losses; per layer, `layer_regularization_losses` likewise.",
        "Fine-tuning a reloaded model without its regularizers trains a different objective.",
        "Count and sum of root `regularization_losses()` against the model's weight-regularization"
        " losses; per leaf layer, sum of `layer_regularization_losses()`.",
    ),
    Clause(
        "LOSSES-ACTIVITY",
        "losses",
        "`call_and_return_all_conditional_losses(x)[1]` equals the original's input-dependent "
        "losses (activity regularizer and add_loss); "
        "`call_and_return_conditional_losses` excludes the activity term; "
        "`activity_regularizer_fn(y)` equals the regularizer on y.",
        "tensorflow/tensorflow#39900 (activity regularizer lost after reload), "
        "tensorflow/tensorflow#39074 (add_loss layer saves but will not load).",
        "Sum of root `call_and_return_all_conditional_losses(x)[1]` against the model's call "
        "losses; per layer with an activity regularizer: all = conditional + activity, and "
        "`activity_regularizer_fn(y)` = the regularizer on y.",
    ),
    Clause(
        "SIG-SERVING",
        "signatures",
        "`serving_default` inputs are named after the model's inputs with equal dtypes and "
        "batch dimension None; outputs are keyed by the model's output names; it runs in a "
        "process that never imports Keras; it is one flat function that calls none of the "
        "saved layers' call functions.",
        "keras-team/keras#19771 and #19458 (output names lost: serving configs break), "
        "tensorflow/tensorflow#33641. tf_keras traces its default signature with the layers' "
        "own calls, before their call functions are wrapped (`save_impl."
        "default_save_signature`), so it nests no calls into other saved functions, which "
        "the TFLite converter and other graph consumers then need not follow.",
        "Names, dtypes and shapes of `serving_default` against the spec; corpus models are "
        "served by a fresh interpreter that checks that loading and serving import no Keras "
        "module beyond what `import tensorflow` itself loads. Drawn models (shared stream) and "
        "a Dense, BatchNormalization, Dense Sequential: in `saved_model.pb`, no function the "
        "signature reaches through its call ops (`f`, loop and branch attributes, "
        "transitively) is a concrete function of a saved `keras_api` call function "
        "(`savedmodel/functions.py`).",
    ),
    Clause(
        "SIG-STABLE",
        "signatures",
        "The canonical signature fingerprint is identical across re-saves, processes with "
        "different PYTHONHASHSEED and xdist workers, and equals the golden value for the "
        "corpus specs.",
        "tensorflow/tensorflow#54067 and #48157: signatures that depend on the process or on "
        "how often a model was built break caches and serving configs.",
        "Canonical fingerprint (`savedmodel/fingerprint.py`) of corpus specs: re-saved, on every "
        "xdist worker (compared on the controller), in two subprocesses with PYTHONHASHSEED 1 "
        "and 2 (without xdist or with one worker), and against "
        "`corpus/golden-<framework>.json`; one example per corpus spec compared across "
        "processes either way.",
    ),
    Clause(
        "SIG-DYNAMIC",
        "signatures",
        "Every dimension the model left None (sequence length, image height and width, as "
        "well as the batch) is None in `serving_default`, inputs and outputs, and in every "
        "traced signature of the root's saved call functions; `serving_default`, the root's "
        "`__call__` and the loaded model accept two different lengths and give the "
        "original's outputs.",
        "tensorflow/tensorflow#45077 (the tf format saves a fully convolutional model with the "
        "TensorSpec of the images it was called on: other sizes are refused), "
        "keras-team/keras#15752 (a subclassed model's saved functions fix width and height), "
        "tensorflow/tensorflow#30808 (a layer called with several input sizes fails to "
        "serialize) and #54687 (a saved model keeps a sequence length it should not).",
        "Drawn models (own stream, open-dimension kinds, at most 4 steps) whose inputs have "
        "open axes (`strategies.opendims`): the shapes of `serving_default` and of each "
        "concrete function of the root's `keras_api` call functions, read with plain "
        "`tf.saved_model.load`, and outputs at the probe length + 1 and + 3 against the "
        "original model.",
    ),
    Clause(
        "SAVE-UNBUILT",
        "save",
        "A model with an unbuilt sub-layer saves, with a warning naming the layer, which is "
        "saved without call functions; a root model whose inputs are unknown (never built or "
        "called) is refused with an exception before anything is written.",
        "Saving must not fail for a model that is partly built, and the user must be told what "
        "was skipped; a model without inputs has nothing to serve, and tf_keras' save refuses "
        "it (`raise_model_input_error`) rather than write a model without functions.",
        "A subclassed model holding a never-called layer: a warning or log record of the save "
        "names it, it has no traced call functions, the root has them. An input-less "
        "Sequential: save raises, and nothing is left at the path or beside it (no temporary "
        "or half-written directory).",
    ),
    Clause(
        "SAVE-OVERWRITE",
        "save",
        "overwrite=False on an existing path leaves it byte-identical (the answer is no, or "
        "FileExistsError); overwrite=True replaces it.",
        "Losing a trained model to an accidental save is unrecoverable.",
        "Digest of every file before and after `save(..., overwrite=False)` on an existing path "
        "(stdin is not a terminal under pytest); overwrite=True must replace it.",
    ),
    Clause(
        "SAVE-OPTIMIZER",
        "save",
        "include_optimizer=False writes no optimizer variables and leaves `model.optimizer` "
        "unchanged; True round-trips them.",
        "Serving exports must not carry optimizer slots; resumed training needs them.",
        "A compiled model after one Adam step: no `optimizer/` key in the checkpoint with "
        "include_optimizer=False, `model.optimizer` identical and unchanged; with True, every "
        "slot's bytes are in the checkpoint.",
    ),
    Clause(
        "SAVE-SIGNATURES",
        "save",
        "A `signatures=` mapping is written as given.",
        "Serving systems address signatures by key.",
        "A `tf.function` with named input and output saved as `predict_scores`: it is the only "
        "signature, with those names, and computes the model's output.",
    ),
    Clause(
        "SAVE-NO-MUTATION",
        "save",
        "After save the model is unchanged: outputs, losses, variables, trainable flags, "
        "seed generators, optimizer.",
        "Tracing for save swaps call functions and resets losses; a leak changes training "
        "after a checkpoint. A save that advances a seed generator changes every later dropout "
        "mask, so a training run resumed from the checkpoint is not reproducible.",
        "Drawn models: outputs, losses, variables (bitwise), trainable flags, call attributes, "
        "seed generator states and seeds (Keras 3 `SeedGenerator`, tf_keras random generators, "
        "`seed` attributes) and optimizer identity before and after save.",
    ),
    Clause(
        "SAVE-ATOMIC",
        "durability",
        "A save that fails or is killed at any moment leaves at the path either the previous "
        "model, intact and loadable, or the complete new one; a failed save leaves no "
        "temporary files; two processes saving to one path leave one whole model.",
        "Preemptible training jobs are killed mid-checkpoint; disks fill up and file systems "
        "turn read-only under a save (SQLite's I/O-error and crash tests fail each file "
        "operation in turn for the same reason).",
        "A subprocess saving over an existing model is SIGKILLed at 0, 25, 50 and 80 % of a "
        "measured save; then, for one fixed model, each visible file-system operation of the "
        "save in turn (mkdir, write, fsync, rename, unlink, rmdir, through Python and "
        "`tf.io.gfile`) raises EIO, or the process dies right there: the path must hold the "
        "old model byte-identical or the complete new one (the next load or save recovers "
        "from a death), and a failed save leaves no temporary files; two processes save "
        "different models to one path at once: one of them, whole.",
    ),
    Clause(
        "SAVE-CONCURRENT",
        "durability",
        "Saves of different models to different paths from several threads give the same "
        "results as one by one.",
        "Hyper-parameter searches save from worker threads.",
        "Three models saved from three threads; fingerprints and variables equal to the same "
        "models saved one by one.",
    ),
    Clause(
        "LOAD-REVIVE",
        "load",
        "The implementation's loader returns a model callable with `training=`, with the same "
        "outputs, losses and variables, that a gradient step can fine-tune; per layer the same "
        "`trainable` flags, the same masks from `compute_mask` where the layer makes one, and the "
        "same output for a call with the non-default keyword argument the model's graph uses; "
        "from the config and when revived without the custom classes alike.",
        "keras-team/tf-keras#642, keras-team/keras#20813: loaded models that cannot be used; "
        "keras-team/keras#15510, tensorflow/tensorflow#38620: masks lost on a revived custom "
        "layer, silently wrong outputs; tensorflow/tensorflow#39808: a loaded function called "
        "with a value it was not traced for.",
        "The implementation's `load` on drawn saved models: outputs, variables (bitwise, same "
        "partition), losses after a call, a training-mode call and a gradient step that changes a "
        "variable; per layer (by name) `trainable`, `compute_mask(x)` of the layers the spec says "
        "make a mask, and `layer(x, **call_kwargs)` of the layers the spec calls with one. Models "
        "are rebuilt from their config unless a class is unknown: subclassed topologies and the "
        "unregistered `KscGain` make them revived.",
    ),
    Clause(
        "LOAD-RESAVE",
        "load",
        "A loaded model saved again round-trips with equal outputs and equal signature "
        "fingerprint. A loaded Sequential (rebuilt from its config or revived around layers "
        "of unknown classes) is a Sequential; changed with `pop()` and `add()`, it computes "
        "its new layers, and saved again it serves them.",
        "Models are loaded, fine-tuned and saved again in pipelines; replacing a loaded "
        "Sequential's head is the common fine-tuning step. tf_keras never reuses a revived "
        "Sequential's saved functions for this reason (`save_impl.wrap_layer_functions`).",
        "The loaded model (drawn without IntegerLookup/StringLookup heads: the reference "
        "does not re-save restored lookup tables yet) saved again: its `__call__` equals the "
        "original model and its fingerprint equals the first save's. A Sequential ending in "
        "an Activation, loaded from its config and (with a layer of a class registered "
        "nowhere) revived: `pop()`, `add(Dense)`; its output, then the re-saved "
        "`serving_default` and `__call__`, equal the original's layers but the last followed "
        "by the new head.",
    ),
    Clause(
        "LOAD-CORRUPT",
        "load",
        "Truncated, bit-flipped or missing files and malformed metadata give a clear "
        "exception, never a crash or a hang.",
        "A partial download must not crash a serving process.",
        "Copies of a saved corpus model damaged nine ways (missing, emptied, truncated, bit-"
        "flipped, garbage metadata) are loaded in one subprocess: each must raise an exception "
        "naming the path, never kill the process or hang.",
    ),
    Clause(
        "LOAD-HOSTILE",
        "hostile",
        "A saved model changed by structure-aware mutations (protobuf fields of "
        "`saved_model.pb` and `keras_metadata.pb` retyped, renumbered, deleted or duplicated; "
        "metadata JSON with wrong types, huge numbers, deep nesting, unknown or hostile classes "
        "and modules, Lambda bytecode, pickles, `registered_name` tricks, `..` paths; "
        "checkpoint files truncated or bit-flipped; checkpoint index entries with another "
        "dtype, shape, offset, size, shard, CRC or slices, a changed header, entries deleted, "
        "duplicated, swapped, renamed, reordered or not parsing; files missing, extra or "
        "symlinks out of the directory) loads as a model or raises an exception of the "
        "implementation's own error family naming the path: never a crash, a hang, running "
        "out of memory, or code from the file run (Lambda bytecode, a pickle or an imported "
        "module creating a file).",
        "Crafted SavedModels are an attack surface: TensorFlow's CVE-2022-23579 and "
        "CVE-2022-23580 (an altered SavedModel makes Grappler CHECK-fail, shape inference "
        "allocate without bound), tensorflow/tensorflow#41097 (a modified saved_model.pb "
        "crashes the loader) and #39003 (checks against maliciously crafted saved models); "
        "Keras' CVE-2025-1550 and CVE-2025-9906 (safe_mode bypassed to run a Lambda's pickle) "
        "and keras-team/tf-keras#910 (the SavedModel path ignores safe_mode; a Lambda config "
        "naming `os` resolves `os.system`). Not LOAD-CORRUPT extended: that clause is about "
        "accidental damage (a partial download) and asks for any exception naming the path; "
        "this one is about deliberate input, asks for the implementation's own error family, "
        "bounded time and memory and no code run, and is checked by a fuzzer whose counts "
        "scale with the profile.",
        "Mutation lists drawn by Hypothesis (`conformance.hostile`; shrunk to a minimal one) "
        "applied to copies of the first corpus model the implementation saves (its checksum "
        "manifest removed so that mutations reach the parsers, unless a mutation keeps it; "
        "a changed index written back as a valid table, its block checksums and "
        "`fingerprint.pb`'s `checkpoint_hash` recomputed, so that the change reaches the "
        "checkpoint reader); "
        "each copy loaded in a long-lived child process (memory limit, 20 s timeout, replaced "
        "after a crash, hang or memory kill); 300 mutation lists under dev, ci and triage, "
        "20000 under nightly; counts per outcome in the report; failing copies kept under "
        "`CONFORMANCE_HOSTILE_DIR` or the test's tmp path and named in the failure.",
    ),
    Clause(
        "LOAD-RESUME",
        "load",
        "A compiled, trained model saved with `include_optimizer=True` and loaded resumes "
        "training exactly: the next `train_on_batch` on the same batch gives the original's "
        "loss and metrics, and leaves the variables and optimizer slots where the original's "
        "own step leaves them (slots, `iterations`, learning-rate schedule, loss and metric "
        "configuration restored). Saved with `include_optimizer=False` it holds no optimizer "
        "state: it loads uncompiled (as tf_keras writes it: no training config without the "
        "optimizer) or compiled with a fresh optimizer of the same kind and the same loss and "
        "metrics.",
        "tensorflow/tensorflow#44670, #53064, #40342 and keras-team/tf-keras#70: models loaded "
        "from the SavedModel format resumed training with a reset optimizer (the loss jumps) "
        "and no warning.",
        "Drawn models (deterministic in training, float32, without lookup heads: the "
        "reference does not train restored lookup tables yet) compiled with one loss, loss weight "
        "and metric list per output (a registered custom metric among them) and an Adam, SGD "
        "with momentum or RMSprop optimizer (sometimes on a decaying schedule), trained one to "
        "three steps, saved both ways and loaded with the implementation: the metric names and "
        "values of one more step, then every variable and optimizer variable, against the "
        "original taking that step; `iterations` before it.",
    ),
    Clause(
        "LOAD-LEGACY",
        "legacy",
        "The loader reads every Keras SavedModel the format's own writers wrote (`tf.keras` of "
        "TensorFlow 2.12-2.15, tf_keras 2.16-2.21): the loaded model's outputs (with "
        "`training=False`, and `training=True` for deterministic models), its losses after a "
        "call and its variables equal what the writer recorded. It is rebuilt from its config "
        "where the classes rebuild, otherwise revived from the saved functions with a warning "
        "naming what was revived; a valid file is never an error.",
        "Old SavedModels stop loading in newer versions: keras-team/tf-keras#369 "
        "(keras-team/keras#17232, tensorflow/tensorflow#58485: the tutorial's TF 2.7 SavedModel "
        "fails in 2.8-2.10), tensorflow/tensorflow#45288 (saved in 2.2, a TypeError in "
        "`reconstruct_from_config` in 2.3), tensorflow/tensorflow#62363 (2.13 to 2.14), "
        "keras-team/keras#19089 (saved with TF 2.15, refused by Keras 3) and "
        "keras-team/keras#18709 (Keras 3 dropped the format's loader).",
        "Each file of the legacy corpus (`conformance/corpus/legacy`, or "
        "`CONFORMANCE_LEGACY_CORPUS`), one test per writer and case: loaded with the "
        "implementation's `load`, called on the recorded inputs in both modes, the total of "
        "its losses and every recorded variable value (bitwise) against the record. Revived "
        "(a `Revived*` layer in the model) needs a warning or log record saying so. The report "
        "counts per writer the files loaded by config, revived and failed. ci and dev load the "
        "real-world cases of 2.12, 2.15 and 2.21 and two spec cases of 2.21; nightly all.",
    ),
    Clause(
        "SAVE-ASSETS",
        "save",
        "Assets (vocabulary files of lookup layers) are saved under `assets/`, referenced "
        "relatively: `serving_default` works in a fresh process after the original vocabulary "
        "files are deleted, and saving over an existing model leaves no stale asset of the "
        "earlier save.",
        "A SavedModel that reads its vocabulary from where it was built breaks when that "
        "directory goes (tensorflow/tensorflow#46293, a fine-tuned model hard-referencing "
        "TF Hub's temporary vocab.txt; keras-team/keras#21751, lookup layers loading their "
        "vocabulary from the original path); assets lost or stale across saves "
        "(tensorflow/tensorflow#57806, #46456, #32770).",
        "Models with StringLookup and IntegerLookup layers whose vocabularies are files: the "
        "asset files under `assets/` hold the vocabularies, `saved_model.pb` names them "
        "relatively and `keras_metadata.pb` holds no absolute path of the originals; the "
        "originals deleted, plain `tf.saved_model.load` in a subprocess serves the original's "
        "outputs; a second model with another vocabulary saved over the first leaves only its "
        "own asset files and serves its own outputs.",
    ),
    Clause(
        "CONSUMER-TFLITE",
        "consumers",
        "The SavedModel converts with `tf.lite.TFLiteConverter.from_saved_model` "
        "(`serving_default`, default settings: TFLite built-in ops), and the converted model, run "
        "with `tf.lite.Interpreter`, keeps the serving input and output names and equals "
        "`serving_default`'s outputs within the consumer tolerances. A spec the converter "
        "cannot handle is reported as unsupported, with the converter's message, not failed.",
        "A saved model is only as good as where it can go next: mobile deployment goes through "
        "the TFLite converter, and renamed or reordered outputs break the apps that read them "
        "(keras-team/keras#19771). A conversion and its control take a few seconds, so the "
        "test walks 30 % of the profile's examples (at least 3: 6 at ci, 90 nightly).",
        "30 % of the profile's examples of the shared stream, saved once; converted and run on the "
        "drawn inputs; names against the contract's (SIG-SERVING's), values against "
        "`serving_default` with `tolerances.CONSUMER_TOLERANCES`. When a stage (convert, load, "
        "names, run, values) fails, a control (the model's call under a plain "
        "`tf.saved_model.save`, contract names) goes through the same stages: if it fails there "
        "too the example is tallied as unsupported by the converter (the report lists each with "
        "its message), else the clause fails. No example converted: skipped, saying so. TF 2.21's "
        "`tf.lite.Interpreter` has no Flex delegate, so TF Select ops are not an option.",
    ),
    Clause(
        "CONSUMER-ONNX",
        "consumers",
        "The SavedModel converts with tf2onnx (`python -m tf2onnx.convert --saved-model DIR "
        "--signature_def serving_default`, its default opset), and the ONNX model, run with "
        "onnxruntime, keeps the serving input and output names and equals `serving_default`'s "
        "outputs within the consumer tolerances. A spec the converter or runtime cannot handle "
        "is reported as unsupported, with its message, not failed.",
        "ONNX is how a Keras model reaches other runtimes and serving stacks; they address "
        "inputs and outputs by name (keras-team/keras#19458). Optional extra "
        "(`pip install -e .[consumers]`), skipped with that reason without it. A conversion is a "
        "fresh interpreter (10-20 s on 2 cores), so the test walks a quarter of the profile's "
        "examples (at least 3: 5 at ci, 75 nightly).",
        "As CONSUMER-TFLITE, with tf2onnx in a subprocess and an onnxruntime CPU session: a "
        "quarter of the profile's examples, the same names and values checks, the same control "
        "deciding between an unsupported spec and a failure of the implementation.",
    ),
)

CLAUSE_IDS = tuple(clause.id for clause in CLAUSES)
# Clauses that read the files through ``keras_api``: on files without it (a plain SavedModel)
# nothing of them can be checked, and they fail saying so without running their properties.
NEEDS_KERAS_API = frozenset(
    {
        "FORMAT-KERAS-API",
        "VARS-EXACT",
        "LAYERS-TREE",
        "CALL-INFERENCE",
        "CALL-TRAINING",
        "CALL-CONSISTENT",
        "LOSSES-REGULARIZATION",
        "LOSSES-ACTIVITY",
        "SAVE-OVERWRITE",
        "SAVE-ATOMIC",
        "SAVE-CONCURRENT",
        "LOAD-RESAVE",
    }
)
_BY_ID = {clause.id: clause for clause in CLAUSES}


def get_clause(clause_id):
    """The clause with that id; KeyError names the known ids."""
    try:
        return _BY_ID[clause_id]
    except KeyError:
        raise KeyError(
            f"unknown clause id {clause_id!r}; known ids: {', '.join(CLAUSE_IDS)}"
        ) from None


def parse_clause_list(text):
    """Parse ``ID,ID,...``; raise ValueError naming every unknown id."""
    ids = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [clause_id for clause_id in ids if clause_id not in _BY_ID]
    if unknown:
        raise ValueError(
            f"unknown clause id(s): {', '.join(unknown)}; known ids: {', '.join(CLAUSE_IDS)}"
        )
    return frozenset(ids)


def contract_markdown():
    """The contract document (``conformance/CONTRACT.md`` is this text)."""
    lines = [
        "# The Keras SavedModel contract",
        "",
        "Generated from `conformance/contract.py` by `python -m conformance contract`; "
        "a test keeps the two equal.",
        "Each clause has a stable id, what it requires, why it exists and how the suite "
        "checks it. On-disk clauses read the files through plain `tf.saved_model.load`; "
        "LOAD-* use the implementation's own loader.",
        "",
    ]
    for clause in CLAUSES:
        lines += [
            f"## {clause.id}",
            "",
            f"*Requires.* {clause.requires}",
            "",
            f"*Why.* {clause.why}",
            "",
            f"*Checked by* `conformance/clauses/test_{clause.group}.py`: {clause.checked_by}",
            "",
        ]
    return "\n".join(lines)
