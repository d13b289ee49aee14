"""The decorator keeps the wrapped function's signature for type checkers (mypy on a sample)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = """
from tideflow.flows import flow

@flow
def add(a: int, b: int = 2) -> int:
    return a + b

@flow(retries=1)
async def aadd(a: int) -> int:
    return a

reveal_type(add)
reveal_type(add(1))
reveal_type(aadd(1))
reveal_type(add.fn)
reveal_type(add.with_options(name="y"))
add("x")
"""


@pytest.mark.slow
def test_mypy_sees_the_flow_signature(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(SAMPLE)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
         "--disable-error-code", "unused-coroutine", str(sample)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    lines = [line.split(": ", 1)[1] for line in proc.stdout.splitlines()]
    assert lines == [
        'note: Revealed type is "tideflow.flows.Flow[[a: int, b: int =], int]"',
        'note: Revealed type is "int"',
        'note: Revealed type is "typing.Coroutine[Any, Any, int]"',
        'note: Revealed type is "def (a: int, b: int =) -> int"',
        'note: Revealed type is "tideflow.flows.Flow[[a: int, b: int =], int]"',
        'error: Argument 1 to "__call__" of "Flow" has incompatible type "str"; expected "int"  [arg-type]',
    ], proc.stdout + proc.stderr
