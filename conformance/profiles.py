"""Hypothesis profiles of the suite: ``dev``, ``ci`` and ``nightly``.

Registered when the plugin is imported, so ``--hypothesis-profile=ci`` works in any session.
Without that option the suite loads ``ci`` when ``CI=true`` and ``dev`` otherwise, and only
in sessions that collect suite tests (see ``stream``): other projects' settings are left alone.
"""

import os

from hypothesis import HealthCheck, Phase, settings

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


def default_profile_name():
    return "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"


def current_profile_name():
    return settings.get_current_profile_name()
