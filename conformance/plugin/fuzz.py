"""The suite under HypoFuzz (``hypothesis fuzz``, the ``fuzz`` extra and tox env).

Two adaptations of HypoFuzz 25.11.1, made under ``hypothesis fuzz`` only (``configure``, from
the plugin's ``pytest_configure``, which HypoFuzz's collection runs in its parent and in each
worker before the worker starts fuzzing):

- It carries the explain phase's comments of a shrunk failure over by an attribute Hypothesis
  has since renamed (``slice_comments``; ``span_comments`` in the pinned 6.170.15), so its
  worker dies with an ``AttributeError`` on the first failure it finds, before it saves the
  shrunk example: exactly when a campaign matters. The old name becomes an alias of the new.
- Its hub stops the campaign when, at a check every 60 s, no worker has said which tests it
  can still fuzz; a worker says so only after a batch of 100 inputs on one test, minutes for
  the suite's properties (a model built and saved per input). The hub then printed "Found a
  failing input for every test!" after a minute with no failure, and stopped. The worker now
  says it also when it takes its tests, before the batch.

Remove each once a HypoFuzz release no longer needs it (the checks then do nothing).
"""


def in_fuzz_run():
    try:
        from hypofuzz.detection import in_hypofuzz_run
    except ImportError:
        return False
    return in_hypofuzz_run()


def patch_needed():
    from hypothesis.internal.conjecture.data import ConjectureData, ConjectureResult

    return not hasattr(ConjectureResult, "slice_comments") and not hasattr(
        ConjectureData, "slice_comments"
    )


def configure():
    """Under HypoFuzz only: the ``slice_comments`` alias and the early report of a worker's
    tests, each where needed."""
    if not in_fuzz_run():
        return
    if patch_needed():
        alias_slice_comments()
    report_valid_targets_early()


def report_valid_targets_early():
    from hypofuzz.hypofuzz import FuzzWorker

    update = FuzzWorker._update_targets
    if getattr(update, "_conformance_early", False):
        return

    def _update_targets(self, nodeids):
        update(self, nodeids)
        self.shared_state["worker_state"]["valid_nodeids"] = [
            target.nodeid for target in self.valid_targets
        ]

    _update_targets._conformance_early = True
    FuzzWorker._update_targets = _update_targets


def alias_slice_comments():
    from hypothesis.internal.conjecture.data import ConjectureData, ConjectureResult

    def get(self):
        return self.span_comments

    def set_(self, value):
        self.span_comments = value

    ConjectureResult.slice_comments = property(get)
    ConjectureData.slice_comments = property(get, set_)
