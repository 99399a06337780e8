"""The adapter an implementation of the format plugs into the suite with.

Subclass ``Implementation`` (or write any object with the same attributes), then run
``pytest --pyargs conformance --conformance-impl=package.module:Attr``.
"""

import importlib
import os
import sys

FRAMEWORKS = ("keras", "tf_keras")


class Implementation:
    """One implementation of the Keras SavedModel format under test.

    ``name`` is shown in reports. ``framework`` says which Keras the suite builds models with:
    ``"keras"`` (Keras 3) or ``"tf_keras"``. ``claims`` is the set of clause ids the
    implementation claims (``None``: all); the others are skipped as "not claimed", with the
    reason ``not_claimed`` gives for the clause (clause id -> reason), shown in the skip, the
    report and the matrix.

    ``supports`` narrows the models drawn for it, with the knobs of
    ``strategies.model_specs``: ``{"kinds": [...], "topologies": [...], "dtypes": [...],
    "max_layers": n}`` (``None``: everything). An implementation without, say, RNN support
    is then tested on everything else; fixed specs it does not support (the corpus) are
    skipped saying why. As with ``model_specs``, Flatten, Dense, Reshape and Activation may
    still appear as adapters between the kinds listed.

    Only ``save`` must be overridden; ``load`` may raise ``NotImplementedError``.
    An implementation that cannot take a live model (one in another process,
    ``conformance.remote.ProcessImplementation``) also has ``save_spec(spec, path)``, which
    builds the spec itself, saves it and returns a stand-in of the original, and
    ``save_unchanged(spec, data, path)``, which checks SAVE-NO-MUTATION on its side and returns
    what changed; the suite uses them when present.
    ``load_errors`` is the tuple of exception types ``load`` raises for bad files (its error
    family; LOAD-HOSTILE requires a refusal to be one of them).
    """

    name: str = "unnamed"
    framework: str = "keras"
    claims: frozenset[str] | None = None
    not_claimed: dict[str, str] = {}
    supports: dict | None = None
    load_errors: tuple = (Exception,)

    def save(self, model, path, *, overwrite=True, include_optimizer=True, signatures=None):
        """Write ``model`` to the directory ``path`` in the Keras SavedModel format."""
        raise NotImplementedError

    def load(self, path):
        """Revive a model from ``path`` with the implementation's own loader.

        Raise ``NotImplementedError`` when the implementation has no loader: the LOAD-*
        clauses are then skipped with that reason.
        """
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r} framework={self.framework}>"


SUPPORT_KNOBS = (
    "kinds", "topologies", "dtypes", "max_layers", "frozen", "open_dims", "mixed_precision"
)
# What model_specs may add between the kinds an implementation lists.
ADAPTER_KINDS = ("Flatten", "Dense", "Reshape", "Activation")


def unsupported_reason(impl, spec):
    """Why ``impl`` does not support the fixed ``spec`` (its ``supports``), or None."""
    outside = outside_supports(getattr(impl, "supports", None), spec)
    return f"{impl.name} does not support {outside}" if outside else None


def outside_supports(supports, spec):
    """What of ``spec`` lies outside ``supports`` (model_specs knobs), in words, or None."""
    supports = supports or {}
    kinds = supports.get("kinds")
    if kinds is not None:
        extra = sorted(set(spec.kinds()) - set(kinds) - set(ADAPTER_KINDS))
        if extra:
            return f"the layer kinds {', '.join(extra)}"
    topologies = supports.get("topologies")
    if topologies is not None and spec.topology not in topologies:
        return f"the {spec.topology} topology"
    dtypes = supports.get("dtypes")
    if dtypes is not None and spec.dtype not in dtypes:
        return f"the dtype {spec.dtype}"
    if supports.get("frozen") is False and spec.frozen_nodes():
        return "non-trainable (frozen) layers"
    if supports.get("open_dims") is False and spec.open_inputs():
        return "open (None) input dimensions"
    if supports.get("mixed_precision") is False and spec.mixed_layers():
        return "mixed-precision layers"
    return None


# Built-in implementations by name; resolved lazily so that naming one imports nothing else.
BUILTIN = {
    "reference": "conformance.implementations:ReferenceImplementation",
    "tf_keras": "conformance.implementations:TfKerasLegacyImplementation",
    "keras_export": "conformance.implementations:KerasExportImplementation",
}


class ImplementationError(ValueError):
    """An implementation spec that does not resolve, or resolves to something unusable."""


def resolve_implementation(spec, search_path=()):
    """Turn a built-in name or ``package.module:Attr`` into an ``Implementation`` instance;
    ``python:/path/to/bin/python:TARGET`` runs TARGET in that interpreter instead
    (``conformance.remote``).

    ``Attr`` may be a class (instantiated without arguments) or an instance. A module that is
    not importable as it stands is looked for in the working directory and in
    ``search_path`` (the plugin passes pytest's rootdir): an adapter file beside the user's
    tests imports as written, in the suite's workers and subprocesses too. Every failure is an
    ``ImplementationError`` that says what was tried.
    """
    if spec.startswith("python:"):
        # Another interpreter: the implementation runs in a worker (docs/out-of-process.md).
        from conformance.remote import process_implementation

        return check_implementation(process_implementation(spec), spec)
    target = BUILTIN.get(spec, spec)
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ImplementationError(
            f"--conformance-impl={spec!r} is neither a built-in name "
            f"({', '.join(sorted(BUILTIN))}) nor of the form package.module:Attr "
            "(or python:/path/to/bin/python:TARGET for another interpreter)"
        )
    try:
        obj = _import_adapter(module_name, [os.getcwd(), *map(str, search_path)])
    except ImportError as exc:
        raise ImplementationError(
            f"--conformance-impl={spec!r}: cannot import module {module_name!r}: {exc} "
            f"(looked in sys.path, the working directory {os.getcwd()}"
            + "".join(f", {p}" for p in search_path)
            + ")"
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImplementationError(
                f"--conformance-impl={spec!r}: module {module_name!r} has no attribute "
                f"{attr_path!r}"
            ) from None
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:
            raise ImplementationError(
                f"--conformance-impl={spec!r}: {attr_path}() failed: {type(exc).__name__}: {exc}"
            ) from exc
    return check_implementation(obj, spec)


def _import_adapter(module_name, directories):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = module_name.partition(".")[0]
        if exc.name != top:
            raise  # the adapter was found; something it imports is missing
        for directory in directories:
            here = os.path.join(directory, top)
            if os.path.exists(here + ".py") or os.path.isdir(here):
                if directory not in sys.path:
                    sys.path.insert(0, directory)
                # Child processes the suite starts (SAVE-ATOMIC, LOAD-CORRUPT) import it too.
                paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
                if directory not in paths:
                    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [directory, *paths]))
                return importlib.import_module(module_name)
        raise


def check_implementation(impl, spec="<instance>"):
    """Validate the adapter's attributes; return it unchanged."""
    from conformance.contract import CLAUSE_IDS

    missing = [attr for attr in ("name", "save", "load") if not hasattr(impl, attr)]
    if missing:
        raise ImplementationError(
            f"--conformance-impl={spec!r}: {impl!r} lacks {', '.join(missing)}"
        )
    framework = getattr(impl, "framework", "keras")
    if framework not in FRAMEWORKS:
        raise ImplementationError(
            f"--conformance-impl={spec!r}: framework must be one of {FRAMEWORKS}, not {framework!r}"
        )
    claims = getattr(impl, "claims", None)
    if claims is not None:
        unknown = sorted(set(claims) - set(CLAUSE_IDS))
        if unknown:
            raise ImplementationError(
                f"--conformance-impl={spec!r}: claims unknown clause id(s) {unknown}"
            )
    not_claimed = getattr(impl, "not_claimed", None) or {}
    unknown = sorted(set(not_claimed) - set(CLAUSE_IDS))
    if unknown:
        raise ImplementationError(
            f"--conformance-impl={spec!r}: not_claimed names unknown clause id(s) {unknown}"
        )
    _check_supports(impl, spec)
    if getattr(type(impl), "save", None) is Implementation.save:
        raise ImplementationError(
            f"--conformance-impl={spec!r}: {type(impl).__name__} does not override "
            "Implementation.save: every clause needs it"
        )
    return impl


def _check_supports(impl, spec):
    supports = getattr(impl, "supports", None)
    if supports is None:
        return
    if not isinstance(supports, dict):
        raise ImplementationError(
            f"--conformance-impl={spec!r}: supports must be a dict of model_specs knobs "
            f"({', '.join(SUPPORT_KNOBS)}), not {type(supports).__name__}"
        )
    unknown = sorted(set(supports) - set(SUPPORT_KNOBS))
    if unknown:
        raise ImplementationError(
            f"--conformance-impl={spec!r}: supports has unknown knobs {unknown}; "
            f"known: {', '.join(SUPPORT_KNOBS)}"
        )
    from strategies.catalog import REGISTRY
    from strategies.spec import TOPOLOGIES

    for knob, known in (("kinds", REGISTRY), ("topologies", TOPOLOGIES)):
        bad = sorted(set(supports.get(knob) or ()) - set(known))
        if bad:
            raise ImplementationError(
                f"--conformance-impl={spec!r}: supports[{knob!r}] names unknown {knob} {bad}"
            )
