"""The read API against its own OpenAPI document, with schemathesis: generated requests, valid
and invalid, to a real daemon on loopback; no 5xx, every answer as documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.daemon_support import live_daemon
from tests.test_api_calls import a_call, fill
from tests.test_api_microsip import PROGRAM, microsip_folder

# (path, examples per generation mode): bounded, so that the whole file runs in well under a
# minute on a loaded machine.
READ_OPERATIONS = [
    ("/api/v1/calls", 40),
    ("/api/v1/calls.csv", 15),
    ("/api/v1/calls/{call_id}", 15),
    ("/api/v1/events", 25),
    ("/api/v1/status", 2),
    ("/api/v1/history", 2),
    ("/api/v1/contacts", 15),
    ("/api/v1/lookup", 15),
]
# Operations whose every parameter takes any text (or that have none): no request to them is
# invalid by the schema, so only valid ones are generated.
ANY_TEXT = {"/api/v1/calls/{call_id}", "/api/v1/status", "/api/v1/history"}
CASES = [
    (path, examples, mode)
    for path, examples in READ_OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or path not in ANY_TEXT
]


# A schema cannot say "a `next` this API gave" or "a date that exists": such values pass the
# schema and are refused (422) all the same, as they must be.
UNCHECKABLE = [positive_data_acceptance]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A daemon with calls, events, an ini and contacts: (its URL, the token header)."""
    root = tmp_path_factory.mktemp("api-schema")
    folder = microsip_folder(root)
    home = root / "home"
    fill(home, [a_call(n) for n in range(30)])
    with live_daemon(home, ini=folder / "microsip.ini", hook_program=PROGRAM) as daemon:
        host, port = daemon.wait_listening()
        yield f"http://{host}:{port}", {"Authorization": f"Bearer {token_of(home)}"}


def token_of(home: Path) -> str:
    return (home / "token").read_text().strip()


@pytest.fixture(scope="module")
def schema(served: tuple[str, dict[str, str]]) -> schemathesis.schemas.BaseSchema:
    url, auth = served
    document = httpx2.get(f"{url}/api/v1/openapi.json", headers=auth, timeout=30).json()
    return schemathesis.openapi.from_dict(document)


def test_the_document_describes_every_read_route(schema: schemathesis.schemas.BaseSchema) -> None:
    paths = schema.raw_schema["paths"]
    for path, _ in READ_OPERATIONS:
        operation = paths[path]["get"]
        assert operation["summary"] and operation["description"], path
        assert {"401", "422"} <= set(operation["responses"]), path
        # The one-line refusal, not FastAPI's list of errors.
        assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorDetail"
        }


@pytest.mark.slow
@pytest.mark.parametrize(("path", "examples", "mode"), CASES)
def test_no_5xx_and_every_answer_as_documented(
    schema: schemathesis.schemas.BaseSchema,
    served: tuple[str, dict[str, str]],
    path: str,
    examples: int,
    mode: GenerationMode,
) -> None:
    url, auth = served
    operation = schema[path]["GET"]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy(generation_mode=mode))
        case.call_and_validate(base_url=url, headers=auth, excluded_checks=UNCHECKABLE)

    check()
