"""schemathesis against the API's own OpenAPI document: no 5xx, and every answer
matches the schema it promises, with a real key, database and broker behind it.

Bounded (a few dozen examples per operation) so the suite stays fast; run it longer
with ``HAUL_FUZZ_EXAMPLES=500 just test tests/integration/test_api_fuzz.py``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from service.api.app import create_app
from service.settings import Settings

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient
    from schemathesis import Case

EXAMPLES = int(os.environ.get("HAUL_FUZZ_EXAMPLES", "25"))

#: The document only: building the app connects to nothing.
_document = create_app(Settings(_env_file=None)).openapi_schema.to_schema()  # type: ignore[call-arg]
# Event streams never end on their own; tests/e2e/test_events.py covers them.
schema = schemathesis.openapi.from_dict(_document).exclude(path_regex=r"/events$")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_keeps_its_schema_and_never_fails_inside(
    case: Case, api: TestClient[Litestar], auth: dict[str, str]
) -> None:
    kwargs = case.as_transport_kwargs(headers=auth)
    kwargs.pop("base_url", None)
    kwargs.pop("cookies", None)  # the API reads no cookies
    if isinstance(kwargs.get("data"), bytes | str):
        kwargs["content"] = kwargs.pop("data")
    response = api.request(**kwargs)
    case.validate_response(
        response,
        headers=auth,
        excluded_checks=[
            # The API judges meaning the schema cannot state (a URL's scheme and address,
            # an opaque cursor): a documented 4xx for schema-valid input is not a bug.
            checks.positive_data_acceptance,
            # Litestar's automatic OPTIONS answers ``Allow: GET, OPTIONS`` for /v1/jobs,
            # which also takes POST: a framework quirk, noted in docs/security.md.
            checks.allow_header_conformance,
        ],
    )
