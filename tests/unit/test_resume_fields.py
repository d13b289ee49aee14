"""The Resume form's fields from input models' JSON schemas: enums behind $refs become selects,
nested models JSON fields, defaults and descriptions kept, a $ref cycle does not loop."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, Field

from tideflow.input import run_input_subclass_from_type
from tideflow.server.orchestration.run_input import MAX_REPORTED_ERRORS, run_input_errors
from tideflow.server.ui.resume import input_fields


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    city: str


class Order(BaseModel):
    colour: Colour = Field(Colour.BLUE, description="Paint")
    address: Address
    note: str | None = None


def test_refs_are_inlined() -> None:
    fields = {
        f.name: f for f in input_fields(run_input_subclass_from_type(Order).model_json_schema())
    }
    assert fields["colour"].kind == "enum" and fields["colour"].options == ["red", "blue"]
    assert fields["colour"].value == "blue" and fields["colour"].description == "Paint"
    assert fields["address"].kind == "json" and fields["address"].required
    assert (
        fields["note"].kind == "string" and fields["note"].nullable and not fields["note"].required
    )


def test_a_ref_cycle_stops() -> None:
    schema = {"properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"$ref": "#/$defs/A"}}}
    assert [f.name for f in input_fields(schema)] == ["a"]


def test_run_input_errors_are_located_and_bounded() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    errors = run_input_errors(schema, {f"k{i}": "x" for i in range(100)})
    assert len(errors) == MAX_REPORTED_ERRORS and errors[0][0][0] == "run_input"
    bad_schema = run_input_errors({"type": 12}, {})
    assert "not valid" in bad_schema[0][1]
