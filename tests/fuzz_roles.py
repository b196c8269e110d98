"""schemathesis hooks for tests/test_fuzz_api.py (loaded through SCHEMATHESIS_HOOKS): every case
generated for the first role is sent again, unchanged, as each other role.

The cases depend only on the API's schema and the seed, never on who sends them, so one
generation serves every role: generating is most of the fuzzer's own time, and one run per role
made the same cases three times. Each role's answers are counted by status class and written,
when the run ends, where GOVERN_FUZZ_TALLY says, so that the test can tell that every role was
really asked.
"""

from __future__ import annotations

import atexit
import json
import os
from collections import Counter

import schemathesis
from schemathesis.core.failures import ServerError

# {role: bearer token} of the roles that repeat each case.
OTHERS: dict[str, str] = json.loads(os.environ.get("GOVERN_FUZZ_OTHERS", "{}"))
TALLY: dict[str, Counter] = {role: Counter() for role in OTHERS}


@schemathesis.check
def no_other_role_gets_a_server_error(ctx, response, case) -> None:
    for role, token in OTHERS.items():
        answer = case.call(headers={"Authorization": f"Bearer {token}"})
        TALLY[role][f"{answer.status_code // 100}xx"] += 1
        if answer.status_code >= 500:
            raise ServerError(
                operation=f"{case.operation.label} (as {role})", status_code=answer.status_code
            )


@atexit.register
def _write_tally() -> None:
    if path := os.environ.get("GOVERN_FUZZ_TALLY"):
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({role: dict(counts) for role, counts in TALLY.items()}, fh)
