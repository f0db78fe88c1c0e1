"""A test hook: pause a long job at a named step so a test can kill the process there.

Set CASEBRIDGE_TEST_PAUSE_AT=<step> (e.g. `purge.sealed`, `rotation.batch`); the job prints
`paused at <step>` to stderr and sleeps, and the test kills it with SIGKILL.  Unset, this
costs one dictionary lookup.
"""

from __future__ import annotations

import os
import sys
import time

ENV = "CASEBRIDGE_TEST_PAUSE_AT"


def reached(step: str) -> None:
    if os.environ.get(ENV) != step:
        return
    sys.stderr.write(f"paused at {step}\n")
    sys.stderr.flush()
    time.sleep(float(os.environ.get("CASEBRIDGE_TEST_PAUSE_SECONDS", "60")))
