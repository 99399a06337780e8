"""How the suite's properties draw examples: the Hypothesis profiles and the example streams.

The read-only clause tests draw ``(spec, data)`` from one strategy with one seed, so in a
worker they walk the same specs and one save per spec serves them all (the case cache of
``plugin.example``). The ``nightly`` profile draws fresh examples every run instead.

The profiles ``dev``, ``ci``, ``nightly`` and ``triage`` are registered only in sessions that
run the suite (``register``, called by the plugin), so a project's own profiles of those names
are left alone elsewhere. The plugin then loads the suite's default profile (``dev``, or
``ci`` under ``CI=true``) unless one was chosen, before the clause modules are imported:
``@given`` takes its settings when it decorates.
"""

import os

from hypothesis import HealthCheck, Phase, example, given, reject, seed, settings
from hypothesis import strategies as st

SHARED_SEED = 20261125

# Building and saving a model takes a second or more: no deadline, and the fixtures the
# suite hands to properties (the implementation, a tmp path factory) are meant to be shared.
SUITE_HEALTH_CHECKS = [
    HealthCheck.too_slow,
    HealthCheck.function_scoped_fixture,
    HealthCheck.data_too_large,
]
_COMMON = dict(deadline=None, suppress_health_check=SUITE_HEALTH_CHECKS, print_blob=True)

PROFILES = {
    "dev": dict(max_examples=5, **_COMMON),
    "ci": dict(max_examples=20, derandomize=True, database=None, **_COMMON),
    "nightly": dict(max_examples=300, **_COMMON),
    # The ci examples without shrinking: finds which clauses fail, fast (a failing example
    # costs a save per shrink step). Rerun a failure with `ci` for its minimal spec.
    "triage": dict(
        max_examples=20,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        report_multiple_bugs=False,
        **_COMMON,
    ),
}


def register():
    for name, values in PROFILES.items():
        settings.register_profile(name, **values)


def pin_local_constants():
    """Make draws depend on the seed alone: empty Hypothesis' pool of "local constants".

    Hypothesis (since 6.131, HypothesisWorks/hypothesis#4356) draws now and then a literal
    found in the source of the non-test modules imported so far, and the project is one of
    them when installed editable. Which modules are imported differs between
    ``pytest --pyargs conformance`` and the repository's ``pytest``, and from test to test,
    so a derandomized property drew different examples in the two sessions (SIG-DYNAMIC's
    15th ci example). Private API: returns False, and changes nothing, where it has moved.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a Hypothesis without the module
        return False
    if not (
        hasattr(providers, "_get_local_constants")
        and hasattr(providers, "Constants")
        and hasattr(providers, "CONSTANTS_CACHE")
    ):
        return False
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()
    return True


def default_profile_name():
    return "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"


def current_profile_name():
    return settings.get_current_profile_name()


def suite_profile_name(config):
    """The profile the suite's tests are decorated under, on workers and controller alike."""
    chosen = config.getoption("hypothesis_profile", default=None)
    if chosen:
        return chosen
    current = settings.get_current_profile_name()
    return default_profile_name() if current.startswith("default") else current


def load_default_profile():
    """Load the suite's default profile unless the session chose one."""
    if current_profile_name().startswith("default"):
        settings.load_profile(default_profile_name())


# The implementation's ``supports`` (model_specs knobs), set by the plugin once it knows the
# implementation; read when an example is drawn, after the tests were decorated.
_SUPPORTED = {}


def draw_for(supports):
    """Draw only models the implementation under test supports from now on."""
    _SUPPORTED.clear()
    _SUPPORTED.update(supports or {})


@st.composite
def examples(draw, **knobs):
    """Strategy of ``(spec, data)``: a drawn model spec and inputs for it."""
    import strategies

    merged = {**_SUPPORTED, **knobs}
    if "kinds" in _SUPPORTED and "kinds" in knobs:  # a clause's kinds within the supported
        merged["kinds"] = [k for k in knobs["kinds"] if k in set(_SUPPORTED["kinds"])]
    spec = draw(strategies.model_specs(**merged))
    return spec, draw(strategies.input_data(spec))


class FirstExample:
    """Every suite property's explicit first example: the first corpus spec the implementation
    supports (spec-00 is one Dense layer), with its corpus inputs.

    An implementation that fails a clause on the simplest model fails there at once, unshrunk
    (the model is minimal already), and the property stops; one that passes goes on to the
    drawn examples. Resolved when the test unpacks it, once the implementation is known.
    ``open_dims``: the smallest corpus spec with every input axis opened that the layers take
    (a property on open axes has nothing to check on a closed model).
    """

    def __init__(self, open_dims=False):
        self.open_dims = open_dims

    def _resolve(self):
        from conformance import corpus
        from conformance.api import outside_supports

        specs = [spec for _, spec in corpus.corpus_specs()]
        if self.open_dims:
            from strategies.opendims import draw_open_dims

            opened = [draw_open_dims(None, spec, every=True) for spec in specs]
            specs = sorted(
                (s for s in opened if s.open_inputs()), key=lambda s: len(s.nodes)
            )  # stable: corpus order among equals
        for spec in specs:
            if outside_supports(_SUPPORTED, spec) is None:
                return spec, corpus.corpus_inputs(spec)
        reject()  # no corpus spec within the implementation's supports: drawn examples only

    def __iter__(self):
        return iter(self._resolve())

    def __repr__(self):
        if self.open_dims:
            return "FirstExample(the smallest corpus spec with open axes, within the supports)"
        return "FirstExample(the first corpus spec the implementation supports)"


FIRST_EXAMPLE = FirstExample()
FIRST_OPEN_EXAMPLE = FirstExample(open_dims=True)

# Which zoo models the properties with ``zoo`` take as explicit examples: "first", "all" or
# "none" (``--conformance-zoo``); None: all under nightly, else the first (a save takes 8-23 s
# with the reference on 2 cores, the first is the cheapest). Under "first" only the one
# property with ``zoo="first"`` takes it; ``zoo="all"`` properties take the zoo only under
# "all".
_ZOO = {"choice": None}


def zoo_for(choice):
    _ZOO["choice"] = choice


def zoo_choice():
    if _ZOO["choice"] is not None:
        return _ZOO["choice"]
    return "all" if current_profile_name() == "nightly" else "first"


class ZooExample:
    """The zoo model at ``index`` (``conformance/corpus/zoo.json``) with its corpus inputs, as
    an explicit example; rejected (Hypothesis skips it) when the zoo choice leaves it out or
    the implementation does not support it. Resolved when the test unpacks it."""

    def __init__(self, index, takes="first"):
        self.index = index
        self.takes = takes  # the property's zoo: "first" (the one CI property) or "all"

    def _resolve(self):
        from conformance import corpus
        from conformance.api import outside_supports

        choice = zoo_choice()
        names = corpus.zoo_names()
        left_out = choice == "none" or (
            choice == "first" and (self.index > 0 or self.takes != "first")
        )
        if left_out or self.index >= len(names):
            reject()
        spec = corpus.zoo_spec(names[self.index])
        if outside_supports(_SUPPORTED, spec) is not None:
            reject()
        return spec, corpus.corpus_inputs(spec)

    def __iter__(self):
        return iter(self._resolve())

    def __repr__(self):
        return f"ZooExample({self.index}: conformance/corpus/zoo.json)"


def _with_zoo_examples(test, takes):
    from conformance import corpus

    # Hypothesis runs explicit examples last-applied first: the first corpus example (applied
    # after these), then the zoo cheapest first.
    for index in reversed(range(len(corpus.zoo_names()))):
        test = example(example=ZooExample(index, takes))(test)
    return test


def _with_first_example(test, zoo=False, open_dims=False):
    if zoo:
        test = _with_zoo_examples(test, "first" if zoo is True or zoo == "first" else "all")
    return example(example=FIRST_OPEN_EXAMPLE if open_dims else FIRST_EXAMPLE)(test)


def _suite_settings(test, **values):
    # Whatever profile is active, the suite's properties need no deadline and share fixtures.
    return settings(deadline=None, suppress_health_check=SUITE_HEALTH_CHECKS, **values)(test)


def _on_shared_stream(test):
    return test if current_profile_name() == "nightly" else seed(SHARED_SEED)(test)


def shared_examples(zoo=False, **knobs):
    """Decorator: ``@given(example=examples(**knobs))`` on the shared stream; ``zoo`` adds
    the zoo's models (``zoo_choice``) as explicit examples after the first one: ``"first"``
    (or True) for the one property that takes the first model in every profile, ``"all"``
    for those that take the zoo only when all of it is chosen (nightly)."""

    def decorate(test):
        test = _with_first_example(given(example=examples(**knobs))(test), zoo=zoo)
        return _on_shared_stream(_suite_settings(test))

    return decorate


def fresh_examples(share=None, **knobs):
    """Decorator: ``@given(example=examples(**knobs))`` with the test's own examples.

    ``share``: a property whose every example trains or saves several models walks that share
    of the profile's examples (at least ``MIN_SHARED``), except under nightly, which takes
    them all: its cost in CI stays small, and the nightly draws the rest.
    """

    def decorate(test):
        values = {}
        if share is not None and current_profile_name() != "nightly":
            values["max_examples"] = max(MIN_SHARED, round(settings().max_examples * share))
        first = _with_first_example(
            given(example=examples(**knobs))(test), open_dims=bool(knobs.get("open_dims"))
        )
        return _suite_settings(first, **values)

    return decorate


MIN_SHARED = 3


def share_of_examples(share, minimum):
    """Decorator: the shared stream with ``share`` of the profile's examples (at least
    ``minimum``); applied when the test runs, so the active profile decides the count."""

    def decorate(check):
        count = max(minimum, round(settings().max_examples * share))
        check = _with_first_example(given(example=examples())(check))
        return _on_shared_stream(_suite_settings(check, max_examples=count))

    return decorate
