"""The contract cases against the emulator (both profiles, in ``make test``) and live (opt-in).

``make contract-test`` runs ``pytest -m live tests/contract``: only :func:`test_live`, which
skips with one line unless ``AML_LIVE_ENDPOINT_URI`` and ``AML_WORKSPACE_ID`` are set.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.contract.cases import CASES
from tests.contract.target import Target

CASE_IDS = [case.__name__ for case in CASES]


def _run(case: Callable[[Target], None], target: Target) -> None:
    try:
        case(target)
    finally:
        target.cleanup()  # nothing left running, no fault left armed for the next case


@pytest.mark.integration
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_emulator(case: Callable[[Target], None], emulator_target: Target) -> None:
    _run(case, emulator_target)


@pytest.mark.live
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_live(case: Callable[[Target], None], live_target: Target) -> None:
    _run(case, live_target)
