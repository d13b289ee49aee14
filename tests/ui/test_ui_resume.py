"""The paused run's page in a real browser: a Resume form built from the input model's JSON schema
(defaults, enums as selects, descriptions, required), the server's 422 shown at the field, and a
valid input resuming the run, whose pause_flow_run call answers it."""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

from playwright.sync_api import Page, expect
from pydantic import Field
from ui_helpers import Snap, unique

from tideflow import flow, pause_flow_run
from tideflow.client import SyncClient
from tideflow.input import RunInput
from tideflow.schemas import FlowRunFilter, StateType


class Review(RunInput):
    reviewer: str = Field(description="Who signs off")
    approved: bool = True
    level: Literal["low", "high"] = "high"
    copies: int = Field(2, ge=1, description="How many to print")


def test_resume_form_from_the_input_schema(page: Page, client: SyncClient, snap: Snap) -> None:
    name = unique("ui-gate")
    box: dict[str, Any] = {}
    form = Review.with_initial_data(description="## Check the invoice\nThen **sign**.")

    @flow(name=name)
    def gate() -> dict[str, Any]:
        answer = pause_flow_run(wait_for_input=form, timeout=120, poll_interval=0.1)
        return answer.model_dump()

    thread = threading.Thread(target=lambda: box.setdefault("value", gate()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while True:
        runs = client.read_flow_runs(FlowRunFilter(flow_name=[name]))
        if runs and runs[0].state_type is StateType.PAUSED:
            break
        assert time.monotonic() < deadline, "the run did not pause"
        time.sleep(0.05)
    run = runs[0]

    page.goto(f"/runs/{run.id}")
    card = page.locator("#resume-card")
    expect(card.locator("#resume-title")).to_have_text("Paused: waiting for input")
    expect(page.locator("#resume-description h2")).to_have_text("Check the invoice")
    expect(page.locator("#resume-description strong")).to_have_text("sign")
    expect(page.locator("#param-reviewer")).to_have_value("")
    expect(page.locator("#hint-reviewer")).to_contain_text("required")
    expect(page.locator("#hint-reviewer")).to_contain_text("Who signs off")
    expect(page.locator("[data-param=reviewer] .required")).to_be_visible()
    expect(page.locator("#param-approved")).to_be_checked()
    level = page.locator("select#param-level")
    expect(level).to_have_value("high")
    assert level.locator("option").all_inner_texts() == ["(default)", "low", "high"]
    expect(page.locator("#param-copies")).to_have_value("2")
    expect(page.locator("#hint-copies")).to_contain_text("How many to print")
    snap(page, "run-resume-form")

    # The server checks the input: a missing field and a value below its minimum, named.
    page.locator("#param-copies").fill("0")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#err-reviewer")).to_contain_text("'reviewer' is a required property")
    expect(page.locator("#err-copies")).to_contain_text("less than the minimum of 1")
    expect(page.locator("#param-reviewer")).to_have_attribute("aria-invalid", "true")
    assert client.read_flow_run(run.id).state_type is StateType.PAUSED

    page.locator("#param-reviewer").fill("ada")
    page.locator("#param-copies").fill("3")
    level.select_option("low")
    page.locator("#param-approved").uncheck()
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#resume-card")).to_have_count(0)
    thread.join(30)
    assert box["value"] == {"reviewer": "ada", "approved": False, "level": "low", "copies": 3}


def test_a_pause_without_input_has_a_plain_resume_button(page: Page, client: SyncClient) -> None:
    name = unique("ui-hold")
    done = threading.Event()

    @flow(name=name)
    def hold() -> None:
        pause_flow_run(timeout=120, poll_interval=0.1)
        done.set()

    threading.Thread(target=hold, daemon=True).start()
    deadline = time.monotonic() + 30
    while True:
        runs = client.read_flow_runs(FlowRunFilter(flow_name=[name]))
        if runs and runs[0].state_type is StateType.PAUSED:
            break
        assert time.monotonic() < deadline, "the run did not pause"
        time.sleep(0.05)
    page.goto(f"/runs/{runs[0].id}")
    expect(page.locator("#resume-title")).to_have_text("Paused")
    page.get_by_role("button", name="Resume").click()
    assert done.wait(30)
