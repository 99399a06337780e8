"""The adapter an implementation of the format plugs into the suite with.

Subclass ``Implementation`` (or write any object with the same attributes), then run
``pytest --pyargs conformance --conformance-impl=package.module:Attr``.
"""

import importlib

FRAMEWORKS = ("keras", "tf_keras")


class Implementation:
    """One implementation of the Keras SavedModel format under test.

    ``name`` is shown in reports. ``framework`` says which Keras the suite builds models with:
    ``"keras"`` (Keras 3) or ``"tf_keras"``. ``claims`` is the set of clause ids the
    implementation claims (``None``: all); the others are skipped as "not claimed".
    """

    name: str = "unnamed"
    framework: str = "keras"
    claims: frozenset[str] | None = None

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


# Built-in implementations by name; resolved lazily so that naming one imports nothing else.
BUILTIN = {
    "reference": "conformance.implementations:ReferenceImplementation",
    "tf_keras": "conformance.implementations:TfKerasLegacyImplementation",
    "keras_export": "conformance.implementations:KerasExportImplementation",
}


class ImplementationError(ValueError):
    """An implementation spec that does not resolve, or resolves to something unusable."""


def resolve_implementation(spec):
    """Turn a built-in name or ``package.module:Attr`` into an ``Implementation`` instance.

    ``Attr`` may be a class (instantiated without arguments) or an instance. Every failure is
    an ``ImplementationError`` that says what was tried.
    """
    target = BUILTIN.get(spec, spec)
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ImplementationError(
            f"--conformance-impl={spec!r} is neither a built-in name "
            f"({', '.join(sorted(BUILTIN))}) nor of the form package.module:Attr"
        )
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImplementationError(
            f"--conformance-impl={spec!r}: cannot import module {module_name!r}: {exc}"
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


def check_implementation(impl, spec="<instance>"):
    """Validate the adapter's attributes; return it unchanged."""
    from conformance.clauses import CLAUSE_IDS

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
    return impl
