"""The clauses of the Keras SavedModel contract: stable ids, what each requires, and why.

The ids are public: implementations name them in ``claims``, users in
``--conformance-clauses`` and in xfails files, reports key on them. Add ids; never rename.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Clause:
    id: str
    group: str  # the test module that checks it: conformance/test_<group>.py
    requires: str
    why: str

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
    ),
    Clause(
        "VARS-EXACT",
        "variables",
        "Every model variable is saved once, bitwise equal, with the same shape and dtype; "
        "the trainable / non-trainable partition and order are the model's.",
        "Fine-tuning a reloaded model needs the same trainable set; a variable saved twice "
        "silently diverges after restore.",
    ),
    Clause(
        "LAYERS-TREE",
        "variables",
        "`keras_api.layers` mirrors the sub-layers (count and order); a shared layer is one "
        "saved object.",
        "Revival rebuilds the layer graph from this list; a duplicated shared layer doubles "
        "its weights.",
    ),
    Clause(
        "CALL-INFERENCE",
        "calls",
        "The saved `__call__` and `serving_default`, with training=False, equal the "
        "original's output on drawn inputs.",
        "The first thing a user checks; keras-team/keras#20985 (exported outputs differ).",
    ),
    Clause(
        "CALL-TRAINING",
        "calls",
        "With training=True, deterministic layers (BatchNormalization, ...) equal the "
        "original in training mode; both modes are callable.",
        "tensorflow/tensorflow#60855: the training mode is lost on export.",
    ),
    Clause(
        "CALL-CONSISTENT",
        "calls",
        "For every layer, `__call__(x)` == `call_and_return_conditional_losses(x)[0]` == "
        "`call_and_return_all_conditional_losses(x)[0]`.",
        "All call functions of a layer are traced from the same inputs; a loader may use any "
        "of them.",
    ),
    Clause(
        "LOSSES-REGULARIZATION",
        "losses",
        "The zero-argument `regularization_losses` evaluate to the original's "
        "weight-regularization losses; per layer, `layer_regularization_losses` likewise.",
        "Fine-tuning a reloaded model without its regularizers trains a different objective.",
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
    ),
    Clause(
        "SIG-SERVING",
        "signatures",
        "`serving_default` inputs are named after the model's inputs with equal dtypes and "
        "batch dimension None; outputs are keyed by the model's output names; it runs in a "
        "process that never imports Keras.",
        "keras-team/keras#19771 and #19458 (output names lost: serving configs break), "
        "tensorflow/tensorflow#33641.",
    ),
    Clause(
        "SIG-STABLE",
        "signatures",
        "The canonical signature fingerprint is identical across re-saves, processes with "
        "different PYTHONHASHSEED and xdist workers, and equals the golden value for the "
        "corpus specs.",
        "tensorflow/tensorflow#54067 and #48157: signatures that depend on the process or on "
        "how often a model was built break caches and serving configs.",
    ),
    Clause(
        "SAVE-UNBUILT",
        "save",
        "An unbuilt layer or an input-less model saves, with a warning naming it, and "
        "without call functions.",
        "Saving must not fail for a model that is partly built; the user must be told what "
        "was skipped.",
    ),
    Clause(
        "SAVE-OVERWRITE",
        "save",
        "overwrite=False on an existing path leaves it byte-identical (the answer is no, or "
        "FileExistsError); overwrite=True replaces it.",
        "Losing a trained model to an accidental save is unrecoverable.",
    ),
    Clause(
        "SAVE-OPTIMIZER",
        "save",
        "include_optimizer=False writes no optimizer variables and leaves `model.optimizer` "
        "unchanged; True round-trips them.",
        "Serving exports must not carry optimizer slots; resumed training needs them.",
    ),
    Clause(
        "SAVE-SIGNATURES",
        "save",
        "A `signatures=` mapping is written as given.",
        "Serving systems address signatures by key.",
    ),
    Clause(
        "SAVE-NO-MUTATION",
        "save",
        "After save the model is unchanged: outputs, losses, variables, trainable flags, "
        "optimizer.",
        "Tracing for save swaps call functions and resets losses; a leak changes training "
        "after a checkpoint.",
    ),
    Clause(
        "SAVE-ATOMIC",
        "durability",
        "A save killed at a random moment leaves at the path either the previous model, "
        "intact and loadable, or the complete new one.",
        "Preemptible training jobs are killed mid-checkpoint.",
    ),
    Clause(
        "SAVE-CONCURRENT",
        "durability",
        "Saves of different models to different paths from several threads give the same "
        "results as one by one.",
        "Hyper-parameter searches save from worker threads.",
    ),
    Clause(
        "LOAD-REVIVE",
        "load",
        "The implementation's loader returns a model callable with `training=`, with the same "
        "outputs, losses and variables, that a gradient step can fine-tune.",
        "keras-team/tf-keras#642, keras-team/keras#20813: loaded models that cannot be used.",
    ),
    Clause(
        "LOAD-RESAVE",
        "load",
        "A loaded model saved again round-trips with equal outputs and equal signature "
        "fingerprint.",
        "Models are loaded, fine-tuned and saved again in pipelines.",
    ),
    Clause(
        "LOAD-CORRUPT",
        "load",
        "Truncated, bit-flipped or missing files and malformed metadata give a clear "
        "exception, never a crash or a hang.",
        "A partial download must not crash a serving process.",
    ),
)

CLAUSE_IDS = tuple(clause.id for clause in CLAUSES)
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
