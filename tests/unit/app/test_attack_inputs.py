"""Bad-input attacks on the batch routes and the folder sources (security pass 3).

Each test first failed against the code it names; see the commit that added it."""

import asyncio
import json

import azure.functions as func
import pytest

from tests.unit.app.fake_client import FakeDurableClient
from triggers import http_batches

URL = "http://127.0.0.1:7071/api/batches"


def _call(decorated, *args):
    fn = decorated.build().get_user_function().client_function
    return asyncio.run(fn(*args))


def _get(batch_id: str, params: dict[str, str]) -> func.HttpRequest:
    return func.HttpRequest(
        method="GET",
        url=f"{URL}/{batch_id}",
        body=b"",
        route_params={"instance_id": batch_id},
        params=params,
    )


@pytest.mark.usefixtures("app_settings")
@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("children_from", "\u00b2"),  # SUPERSCRIPT TWO: str.isdigit() but int() refuses it
        ("children_top", "\u00b9"),
        ("children_from", "\u0661"),  # ARABIC-INDIC ONE: int() reads it, but it is no ASCII
        ("children_from", "1" * 5000),  # int() refuses more than 4300 digits
        ("children_top", "0" * 4000 + "5"),
        ("children_from", " 1"),
        ("children_top", "+5"),
    ],
)
def test_odd_paging_values_are_400_naming_the_parameter(
    client: FakeDurableClient, name: str, raw: str
):
    client.add("batch-x", name="batch_endpoint_batch", runtime_status="Running")
    resp = _call(http_batches.get_batch_http, _get("batch-x", {name: raw}), client)
    assert resp.status_code == 400, resp.get_body()
    assert json.loads(resp.get_body())["error"]["details"][0]["field"] == name
