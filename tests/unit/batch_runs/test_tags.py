"""Job tags and the run's trigger: bounded caller tags, reserved keys, internal trigger input."""

from datetime import UTC, datetime

import pytest

from batch_runs import InvalidRunRequest, load_settings
from batch_runs.request import RunRequest, parse_run_request
from batch_runs.tags import MAX_TAGS, job_tags, tags_problem, trigger_problem

EP = "https://ep.westeurope.inference.ml.azure.com/jobs"
NOW = datetime(2026, 11, 30, tzinfo=UTC)
SETTINGS = load_settings({"BATCH_ENDPOINT_URI": EP})
BASE = {"endpoint_input_uri": "azureml://datastores/ws/paths/in/"}


def parse(**body: object) -> RunRequest:
    return parse_run_request({**BASE, **body}, SETTINGS, run_id="run-1", now=NOW)


def test_tags_and_trigger_reach_the_job_beside_the_run_key():
    request = parse(tags={"team": "risk"}, trigger="batch")
    invocation = request.to_invocation("bs-key", "run-1")

    assert invocation.tags == {
        "team": "risk",
        "batch_run_key": "bs-key",
        "batch_run_id": "run-1",
        "batch_run_trigger": "batch",
    }
    assert invocation.properties == {"batch_run_key": "bs-key"}
    assert invocation.body(None)["properties"]["Tags"]["batch_run_trigger"] == "batch"


def test_a_run_without_trigger_was_started_by_a_parent_orchestration():
    request = parse()
    assert request.trigger == "sub-orchestration"
    assert request.to_invocation("k", "run-1").tags["batch_run_trigger"] == "sub-orchestration"


def test_tags_and_trigger_survive_the_durable_boundary():
    request = parse(tags={"team": "risk"}, trigger="blob")
    again = RunRequest.from_resolved(request.to_dict())
    assert again == request
    assert request.to_dict()["tags"] == {"team": "risk"}


@pytest.mark.parametrize(
    "tags",
    [
        {"k": 1},
        {"": "v"},
        {" k": "v"},
        {"k" * 129: "v"},
        {"k": "v" * 257},
        {"k": "a\u200bb"},  # zero-width: refused as in every other text field
        {"k\n": "v"},
        {"batch_run_id": "mine"},  # ours
        {f"k{i}": "v" for i in range(MAX_TAGS + 1)},
        ["team", "risk"],
        "team=risk",
    ],
)
def test_bad_tags_are_refused_naming_tags(tags):
    with pytest.raises(InvalidRunRequest) as exc:
        parse(tags=tags)
    assert [d.field for d in exc.value.details] == ["tags"]
    assert tags_problem(tags) is not None


def test_bounds_are_inclusive():
    tags = {f"{i:0>128}": "v" * 256 for i in range(MAX_TAGS)}
    assert tags_problem(tags) is None
    assert parse(tags=tags).tags == tags


@pytest.mark.parametrize("trigger", ["cli", "", None, 3, "HTTP"])
def test_an_unknown_trigger_is_refused_naming_trigger(trigger):
    with pytest.raises(InvalidRunRequest) as exc:
        parse(trigger=trigger)
    assert [d.field for d in exc.value.details] == ["trigger"]
    assert trigger_problem(trigger) is not None


def test_caller_tags_cannot_override_the_run_tags():
    tags = job_tags(
        run_key="k", run_id="r", trigger="http", tags={"x": "1"}, run_key_tag="batch_run_key"
    )
    assert tags["batch_run_id"] == "r"
    assert next(iter(tags)) == "x"
