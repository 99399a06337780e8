"""The suite under HypoFuzz (``hypothesis fuzz``, the ``fuzz`` extra and tox env).

HypoFuzz 25.11.1 carries the explain phase's comments of a shrunk failure over by an
attribute Hypothesis has since renamed (``slice_comments``; ``span_comments`` in the pinned
6.170.15), so its worker dies with an ``AttributeError`` on the first failure it finds, before
it saves the shrunk example: exactly when a campaign matters. Under ``hypothesis fuzz`` only,
the old name is made an alias of the new one. Remove this once a HypoFuzz release reads
``span_comments`` (``patch_needed`` is then false and nothing is done).
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
    """Alias ``slice_comments`` to ``span_comments`` when running under HypoFuzz and needed."""
    if not in_fuzz_run() or not patch_needed():
        return
    from hypothesis.internal.conjecture.data import ConjectureData, ConjectureResult

    def get(self):
        return self.span_comments

    def set_(self, value):
        self.span_comments = value

    ConjectureResult.slice_comments = property(get)
    ConjectureData.slice_comments = property(get, set_)
