"""How the suite's properties draw examples, and the shared example stream.

The read-only clause tests draw ``(spec, data)`` from the same strategy with the same seed, so
in a worker they walk the same specs and one save per spec serves them all
(``cases.CaseCache``). The ``nightly`` profile draws fresh examples every run instead;
reproduce those with the ``--hypothesis-seed`` printed in its report.

Importing this module (which only the suite's test modules do) loads the suite's default
Hypothesis profile unless one was chosen, before the tests are decorated: ``@given`` takes
its settings when it decorates.
"""

from hypothesis import given, seed, settings

from conformance import profiles
from conformance.cases import examples

SHARED_SEED = 20261125

if settings.get_current_profile_name().startswith("default"):
    settings.load_profile(profiles.default_profile_name())


def _suite_settings(test):
    # Whatever profile is active, the suite's properties need no deadline and share fixtures.
    return settings(deadline=None, suppress_health_check=profiles.SUITE_HEALTH_CHECKS)(test)


def shared_examples(**knobs):
    """Decorator: ``@given(example=examples(**knobs))`` on the shared stream."""

    def decorate(test):
        test = _suite_settings(given(example=examples(**knobs))(test))
        if settings.get_current_profile_name() != "nightly":
            test = seed(SHARED_SEED)(test)
        return test

    return decorate


def fresh_examples(**knobs):
    """Decorator: ``@given(example=examples(**knobs))`` with the test's own examples."""

    def decorate(test):
        return _suite_settings(given(example=examples(**knobs))(test))

    return decorate
