"""Parameter schemas from signatures, and the server-side validator that checks runs against them."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import json
import uuid
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tideflow.parameters import docstring_descriptions, parameter_schema
from tideflow.schemas.parameters import MAX_PROBLEMS, parameter_names, validate_parameters


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Retry(BaseModel):
    count: int
    delay: float = 1.0


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    retry: Retry | None = None
    labels: dict[str, int] = {}


class Opaque:
    """Not something pydantic or JSON can describe."""


def etl(source: str, limit: int = 10, *, dry_run: bool = False) -> None:
    """Copy rows.

    Args:
        source: where rows come from,
            a URL.
        limit (int): at most this many.
        dry_run: only pretend.
    """


# ------------------------------------------------------------------------------- parameter_schema


def test_schema_of_a_simple_flow() -> None:
    schema = parameter_schema(etl)
    assert schema["type"] == "object" and schema["title"] == "Parameters"
    assert schema["required"] == ["source"]
    assert list(schema["properties"]) == ["source", "limit", "dry_run"]
    assert schema["properties"]["source"] == {
        "title": "source",
        "type": "string",
        "position": 0,
        "description": "where rows come from, a URL.",
    }
    assert schema["properties"]["limit"]["default"] == 10
    assert schema["properties"]["limit"]["description"] == "at most this many."
    assert schema["properties"]["dry_run"]["position"] == 2
    assert json.loads(json.dumps(schema)) == schema  # pure JSON, storable as is


def test_schema_types() -> None:
    def flow(
        a: int,
        b: float,
        c: bool,
        d: list[str],
        e: dict[str, int],
        f: int | None,
        g: Literal["x", "y"],
        h: Color,
        i: dt.datetime,
        j: Config,
        k: tuple[int, str],
        m: set[int],
        n: uuid.UUID,
        untyped,
    ) -> None: ...

    props = parameter_schema(flow)["properties"]
    assert props["a"]["type"] == "integer"
    assert props["b"]["type"] == "number"
    assert props["c"]["type"] == "boolean"
    assert props["d"]["items"] == {"type": "string"}
    assert props["e"]["additionalProperties"] == {"type": "integer"}
    assert {"type": "null"} in props["f"]["anyOf"]
    assert props["g"]["enum"] == ["x", "y"]
    assert props["h"]["$ref"] == "#/$defs/Color"
    assert props["i"]["format"] == "date-time"
    assert props["j"]["$ref"] == "#/$defs/Config"
    assert props["k"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert props["m"]["uniqueItems"] is True
    assert props["n"]["format"] == "uuid"
    assert props["untyped"] == {"title": "untyped", "position": 13}
    defs = parameter_schema(flow)["$defs"]
    assert set(defs) >= {"Color", "Config", "Retry"}
    assert parameter_schema(flow)["required"] == list(props)


def test_args_kwargs_unserialisable_defaults_and_opaque_types() -> None:
    def flow(
        x: int, *args: int, thing: Opaque = Opaque(), when=dt.datetime.now, **kwargs: str
    ) -> None: ...

    schema = parameter_schema(flow)
    props = schema["properties"]
    assert list(props) == ["x", "args", "thing", "when", "kwargs"]
    assert props["args"] == {
        "title": "args",
        "type": "array",
        "items": {"type": "integer"},
        "default": [],
        "position": 1,
    }
    assert (
        props["kwargs"]["additionalProperties"] == {"type": "string"}
        and props["kwargs"]["default"] == {}
    )
    assert props["thing"] == {"title": "thing", "position": 2}  # accepts anything, default left out
    assert "default" not in props["when"]
    assert schema["required"] == ["x"]


def test_names_clashing_with_pydantic_and_annotated_descriptions() -> None:
    def flow(
        json: int,
        model_config: str = "a",
        schema: Annotated[int, Field(description="from the hint", ge=1)] = 1,
    ) -> None: ...

    schema = parameter_schema(flow)
    assert list(schema["properties"]) == ["json", "model_config", "schema"]
    assert schema["properties"]["schema"]["description"] == "from the hint"
    assert validate_parameters(schema, {"json": 1, "schema": 0}) == [
        "parameter 'schema': expected a number >= 1, got integer 0"
    ]


def test_unresolvable_hints_accept_anything() -> None:
    def flow(a: NoSuchType, b: int = 1) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    props = parameter_schema(flow)["properties"]
    assert props["a"] == {"title": "a", "position": 0}
    assert props["b"]["type"] == "integer"


def test_docstring_styles() -> None:
    def sphinx(a, b):
        """Do.

        :param a: the a
            continued.
        :param int b: the b
        :returns: nothing
        """

    def numpy(a, b):
        """Do.

        Parameters
        ----------
        a : int
            the a
        b
            the b,
            two lines

        Returns
        -------
        None
        """

    assert docstring_descriptions(sphinx) == {"a": "the a continued.", "b": "the b"}
    assert docstring_descriptions(numpy) == {"a": "the a", "b": "the b, two lines"}
    assert docstring_descriptions(etl)["dry_run"] == "only pretend."
    assert docstring_descriptions(lambda: None) == {}


# ---------------------------------------------------------------------------- validate_parameters


SCHEMA = parameter_schema(etl)


@pytest.mark.parametrize(
    ("params", "problems"),
    [
        ({"source": "s3://x"}, []),
        ({"source": "s3://x", "limit": 5, "dry_run": True}, []),
        (
            {"source": "s3://x", "limt": 5},
            ["unknown parameter 'limt'; the flow takes: source, limit, dry_run"],
        ),
        (
            {"source": "s3://x", "limit": "abc"},
            ["parameter 'limit': expected integer, got string 'abc'"],
        ),
        (
            {"source": "s3://x", "limit": True},
            ["parameter 'limit': expected integer, got boolean true"],
        ),
        (
            {"source": "s3://x", "limit": 2.5},
            ["parameter 'limit': expected integer, got number 2.5"],
        ),
        ({"limit": 1}, ["missing required parameter 'source'"]),
        ({"source": None}, ["parameter 'source': expected string, got null"]),
        (
            {"source": "s", "dry_run": "yes"},
            ["parameter 'dry_run': expected boolean, got string 'yes'"],
        ),
    ],
)
def test_validation_messages(params: dict[str, Any], problems: list[str]) -> None:
    assert validate_parameters(SCHEMA, params) == problems


def test_partial_skips_required_and_no_schema_accepts_anything() -> None:
    assert validate_parameters(SCHEMA, {"limit": 1}, partial=True) == []
    assert validate_parameters({}, {"anything": object()}) == []
    empty = parameter_schema(lambda: None)
    assert validate_parameters(empty, {"x": 1}) == [
        "unknown parameter 'x'; the flow takes no parameters"
    ]


def flow_of_everything(
    color: Color = Color.RED,
    mode: Literal["fast", "slow"] = "fast",
    one: Literal["only"] = "only",
    maybe: int | None = None,
    either: int | str = 0,
    when: dt.datetime | None = None,
    day: dt.date | None = None,
    ident: uuid.UUID | None = None,
    config: Config | None = None,
    configs: list[Config] = [],  # noqa: B006
    pair: tuple[int, str] = (1, "a"),
    unique: set[int] = set(),  # noqa: B006
    ratio: float = 0.5,
    counts: dict[str, int] = {},  # noqa: B006
    nested: list[list[int]] = [],  # noqa: B006
) -> None: ...


EVERYTHING = parameter_schema(flow_of_everything)


@pytest.mark.parametrize(
    ("params", "problems"),
    [
        (
            {"color": "green"},
            ["parameter 'color': expected one of 'red', 'blue', got string 'green'"],
        ),
        (
            {"mode": "medium"},
            ["parameter 'mode': expected one of 'fast', 'slow', got string 'medium'"],
        ),
        ({"one": "other"}, ["parameter 'one': expected 'only', got string 'other'"]),
        ({"maybe": "x"}, ["parameter 'maybe': expected integer or null, got string 'x'"]),
        ({"either": [1]}, ["parameter 'either': expected integer or string, got array [1]"]),
        (
            {"when": "tomorrow"},
            ["parameter 'when': expected date-time string, got string 'tomorrow'"],
        ),
        (
            {"when": "2024-01-01"},
            ["parameter 'when': expected date-time string, got string '2024-01-01'"],
        ),
        ({"day": "2024-13-01"}, ["parameter 'day': expected date string, got string '2024-13-01'"]),
        (
            {"ident": "not-a-uuid"},
            ["parameter 'ident': expected uuid string, got string 'not-a-uuid'"],
        ),
        ({"config": {}}, ["parameter 'config': missing required field 'name'"]),
        ({"config": {"name": "a", "colour": 1}}, ["parameter 'config': unknown field 'colour'"]),
        (
            {"config": {"name": "a", "retry": {"count": "3"}}},
            ["parameter 'config.retry.count': expected integer, got string '3'"],
        ),
        ({"config": "a"}, ["parameter 'config': expected Config (object) or null, got string 'a'"]),
        (
            {"configs": [{"name": "a"}, {"name": 2}]},
            ["parameter 'configs[1].name': expected string, got integer 2"],
        ),
        ({"pair": [1, 2]}, ["parameter 'pair[1]': expected string, got integer 2"]),
        ({"pair": [1]}, ["parameter 'pair': expected at least 2 items, got 1"]),
        ({"pair": [1, "a", 3]}, ["parameter 'pair': expected at most 2 items, got 3"]),
        ({"unique": [1, 1]}, ["parameter 'unique': expected unique items, integer 1 repeats"]),
        ({"ratio": "0.5"}, ["parameter 'ratio': expected number, got string '0.5'"]),
        ({"ratio": False}, ["parameter 'ratio': expected number, got boolean false"]),
        (
            {"counts": {"a": 1, "b": "2"}},
            ["parameter 'counts.b': expected integer, got string '2'"],
        ),
        (
            {"nested": [[1], [2, "x"]]},
            ["parameter 'nested[1][1]': expected integer, got string 'x'"],
        ),
    ],
)
def test_validation_of_each_type(params: dict[str, Any], problems: list[str]) -> None:
    assert validate_parameters(EVERYTHING, params) == problems


def test_valid_values_of_each_type_pass() -> None:
    params = {
        "color": "blue",
        "mode": "slow",
        "one": "only",
        "maybe": None,
        "either": "text",
        "when": "2024-03-31T02:30:00+02:00",
        "day": "2024-02-29",
        "ident": str(uuid.uuid4()),
        "config": {"name": "a", "retry": {"count": 3, "delay": 2}, "labels": {"x": 1}},
        "configs": [],
        "pair": [1, "a"],
        "unique": [1, 2],
        "ratio": 1,
        "counts": {},
        "nested": [[], [1, 2]],
    }
    assert validate_parameters(EVERYTHING, params) == []


def test_problems_are_listed_for_each_parameter_and_capped() -> None:
    problems = validate_parameters(SCHEMA, {"source": 1, "limit": "x", "zzz": 0})
    assert problems == [
        "parameter 'source': expected string, got integer 1",
        "parameter 'limit': expected integer, got string 'x'",
        "unknown parameter 'zzz'; the flow takes: source, limit, dry_run",
    ]
    many = validate_parameters(EVERYTHING, {"nested": [["x"] * 50]})
    assert len(many) == MAX_PROBLEMS and many[-1] == "... and 31 more problems"


def test_long_values_are_shortened_in_messages() -> None:
    (problem,) = validate_parameters(SCHEMA, {"source": "s", "limit": "y" * 500})
    assert len(problem) < 120 and problem.endswith("...'")


def test_parameter_names_follow_positions() -> None:
    schema = {"properties": {"b": {"position": 1}, "a": {"position": 0}, "c": {}}}
    assert parameter_names(schema) == ["a", "b", "c"]
    assert parameter_names({}) == []


# ------------------------------------------------------------------------------------- round trip


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


@functools.cache
def _schema_of(annotation: Any) -> dict[str, Any]:
    def flow(x) -> None: ...

    flow.__annotations__ = {"x": annotation}
    return parameter_schema(flow)


def _pydantic_accepts(annotation: Any, value: Any) -> bool:
    """What the engine's pydantic check says about a JSON value, in strict JSON mode."""
    try:
        _adapter(annotation).validate_json(json.dumps(value), strict=True)
    except ValidationError:
        return False
    return True


ANNOTATIONS: list[Any] = [
    int,
    float,
    str,
    bool,
    int | None,
    int | str,
    list[int],
    list[str] | None,
    dict[str, float],
    Literal["a", "b", 3],
    Color,
    dt.datetime,
    tuple[int, str],
    Retry,
    Config,
    list[Retry],
    dict[str, Retry | None],
]

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(-5, 5, allow_nan=False)
    | st.sampled_from(["a", "b", "red", "blue", "x", "2024-01-01T00:00:00Z", "2024-01-01", ""])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["count", "delay", "name", "retry", "labels", "k"]), inner, max_size=3
        )
    ),
    max_leaves=8,
)


def _value_for(annotation: Any) -> st.SearchStrategy[Any]:
    """Values near what the annotation takes, so that both valid and invalid ones come up."""
    retry = st.fixed_dictionaries(
        {"count": st.integers() | st.text(max_size=2)},
        optional={"delay": st.floats(allow_nan=False) | st.none()},
    )
    config = st.fixed_dictionaries(
        {"name": st.text(max_size=3) | st.integers()},
        optional={
            "retry": retry | st.none() | JSON_VALUES,
            "labels": st.dictionaries(st.text(max_size=2), st.integers() | st.booleans()),
            "extra": st.integers(),
        },
    )
    near = {
        Retry: retry,
        Config: config,
        list[Retry]: st.lists(retry | JSON_VALUES, max_size=3),
        dict[str, Retry | None]: st.dictionaries(
            st.text(max_size=2), retry | st.none() | JSON_VALUES, max_size=3
        ),
        tuple[int, str]: st.tuples(st.integers(), st.text(max_size=2)).map(list)
        | st.lists(st.integers() | st.text(max_size=2), max_size=3),
        dict[str, float]: st.dictionaries(
            st.text(max_size=2), st.floats(allow_nan=False) | SCALARS
        ),
        dt.datetime: st.datetimes().map(lambda d: d.isoformat())
        | st.text(max_size=12)
        | JSON_VALUES,
    }
    return st.one_of(SCALARS, near.get(annotation, st.lists(SCALARS, max_size=3)), JSON_VALUES)


@pytest.mark.parametrize("annotation", ANNOTATIONS, ids=str)
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_validator_agrees_with_pydantic(annotation: Any, data: st.DataObject) -> None:
    value = data.draw(_value_for(annotation))
    problems = validate_parameters(_schema_of(annotation), {"x": value})
    assert (problems == []) == _pydantic_accepts(annotation, value), (value, problems)
    named = [p for p in problems if not p.startswith("... and ")]  # the cap line
    assert all(p.startswith(("parameter 'x", 'parameter "x')) for p in named)
