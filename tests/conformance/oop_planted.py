"""Adapters that break the worker they run in (tests/conformance/test_out_of_process.py).

Loaded INSIDE a worker (``conformance/worker.py``) as
``python:PYTHON:tests.conformance.oop_planted:Misbehaving``; they import only the reference.
"""

import os
import sys
import time

COUNTER_ENV_VAR = "OOP_PLANTED_COUNTER"
SEQUENCE_ENV_VAR = "OOP_PLANTED_SEQUENCE"


class Misbehaving:
    """The reference, except for the first saves across all its workers (counted in the file
    ``$OOP_PLANTED_COUNTER``): ``$OOP_PLANTED_SEQUENCE`` (default ``crash,hang,garbage``) says
    what each does: kill the worker, hang it, write a line that is not a reply where replies
    go, or ask a question on stdin (as tf_keras' overwrite prompt does). Every later save is
    the reference's."""

    name = "misbehaving"
    framework = "keras"

    def save(self, model, path, *, overwrite=True, include_optimizer=True, signatures=None):
        counter = os.environ[COUNTER_ENV_VAR]
        done = int(open(counter).read() or 0) if os.path.exists(counter) else 0
        with open(counter, "w") as f:
            f.write(str(done + 1))
        sequence = os.environ.get(SEQUENCE_ENV_VAR, "crash,hang,garbage").split(",")
        how = sequence[done] if done < len(sequence) else "save"
        if how == "crash":
            os._exit(17)
        if how == "hang":
            time.sleep(3600)
        if how == "asks":
            input("overwrite? [y/n] ")  # must read end-of-file, not the next request
        if how == "garbage":
            replies = sys.modules["__main__"].REPLIES
            replies.write("Saving model... done!\n")
            replies.flush()
            time.sleep(3600)
        import reference_impl

        reference_impl.save(model, path, overwrite=overwrite, include_optimizer=include_optimizer)

    def load(self, path):
        import reference_impl

        return reference_impl.load(path)
