"""The API contract under fuzzing: schemathesis against a real server's /api/openapi.json finds no
server error, no status code, content type or body that the document does not describe, and leaves
the server answering.

Bounded and reproducible: a fixed seed, derandomized generation and a fixed number of fuzzed examples
per operation, besides schemathesis's examples and coverage phases (boundary values, negative input);
about two to three minutes on SQLite on a busy 2-core machine. Every finding fails the test with its
operation, check and a curl command to reproduce it; nothing is excluded.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.engine import StopReason, events, from_schema

from tideflow.testing import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SEED = 20261203
EXAMPLES_PER_OPERATION = {"sqlite": 15, "postgres": 5}
# The floor for CI on SQLite; PostgreSQL runs fewer examples to keep the time bounded.
MIN_CASES = {"sqlite": 3000, "postgres": 1000}

CONFIG: dict[str, Any] = {
    "seed": SEED,
    "generation": {"deterministic": True, "mode": "all"},  # positive and negative input
    "phases": {  # stateful off: it needs links the document does not declare
        "examples": {"enabled": True},
        "coverage": {"enabled": True},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
    },
    # Body-less POSTs (pause, resume) need JSON or our client header, as from any program.
    "headers": {"X-Tideflow-Client": "schemathesis"},
    # A request the server takes this long to answer is a finding of its own (a wedged server).
    "request-timeout": 10,
    "workers": 1,
}


def _findings(scenario: events.ScenarioFinished) -> list[str]:
    out = []
    for case_id, checks in scenario.recorder.checks.items():
        for check in checks:
            if check.status.value != "failure" or check.failure_info is None:
                continue
            failure = check.failure_info.failure
            curl = scenario.recorder.cases[case_id].value.as_curl_command()
            message = " ".join(str(failure.message).split())[:400]
            interaction = scenario.recorder.interactions.get(case_id)
            answer = ""
            if interaction is not None and interaction.response is not None:
                got = interaction.response
                answer = (
                    f"\n    answer: {got.status_code} {got.content[:300].decode(errors='replace')}"
                )
            out.append(
                f"{scenario.label} [{scenario.phase.value}] {check.name}: {failure.title}: "
                f"{message}{answer}\n    reproduce: {curl[:600]}"
            )
    return out


def _fuzz(server: ServerProcess, examples: int) -> tuple[list[str], events.EngineFinished, int]:
    """Run schemathesis once: findings, the final event, and how many requests it sent."""
    config = schemathesis.Config.from_dict(
        {**CONFIG, "generation": {**CONFIG["generation"], "max-examples": examples}}
    )
    schema = schemathesis.openapi.from_url(f"{server.api_url}/openapi.json", config=config)
    schema.config.update(base_url=server.api_url.removesuffix("/api"))
    findings: list[str] = []
    finished: events.EngineFinished | None = None
    requests = 0
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            requests += len(event.recorder.interactions)
            findings += _findings(event)
        elif isinstance(event, events.NonFatalError):
            findings.append(f"{event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished):
            finished = event
    assert finished is not None
    return findings, finished, requests


def _count(api: httpx.Client, path: str) -> int:
    response = api.post(path, json={})
    assert response.status_code == 200, response.text
    return int(response.json())


# Hypothesis warns when it builds the repr of a large generated body (a batch of task-run reports);
# the suite turns warnings into errors, which schemathesis then reports as a runtime error of the
# *generator*, not of the server. Schemathesis ignores the same warning in its stateful phase.
@pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)
@pytest.mark.parametrize("database_kind", ["sqlite", "postgres"])
def test_fuzzing_finds_no_server_error_and_no_contract_mismatch(
    database_kind: str, database_url: str
) -> None:
    with ServerProcess(database_url) as server:
        started = time.monotonic()
        findings, finished, requests = _fuzz(server, EXAMPLES_PER_OPERATION[database_kind])
        print(f"\nschemathesis [{database_kind}]: {requests} cases (requests) in "
              f"{time.monotonic() - started:.0f} s, {len(findings)} findings")  # fmt: skip
        assert requests >= MIN_CASES[database_kind]  # it did fuzz

        # Whatever the fuzz stored (deployments with schedules, automations with actions), the
        # server still answers promptly and is not busy feeding itself.
        with httpx.Client(base_url=server.api_url, timeout=10) as api:
            started = time.monotonic()
            assert api.get("/health").status_code == 200
            assert time.monotonic() - started < 5
            runs = _count(api, "/flow_runs/count")
            time.sleep(5)
            later = _count(api, "/flow_runs/count")
            assert later - runs < 100, f"{later - runs} runs created in 5 s after the fuzz"
            assert server.proc is not None and server.proc.poll() is None

        # The server's own lines (not traceback frames) say which error each 500 was.
        log = "\n".join(line for line in server.output_tail(400).splitlines() if line[:1].strip())

    assert finished.stop_reason is StopReason.COMPLETED
    assert not findings, (
        f"{len(findings)} findings:\n" + "\n".join(findings) + f"\nserver log:\n{log[-3000:]}"
    )
