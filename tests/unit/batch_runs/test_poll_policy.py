"""``poll_policy`` (run parameter) and ``POLL_POLICY`` (setting): choices, defaults, the
compatibility with ``poll_backoff``, and the wire shape that crosses the Durable boundary."""

import pytest

from batch_runs import InvalidRunRequest, RunRequest, SettingsError, load_settings
from tests.unit.batch_runs.test_request import minimal, parse


def test_default_is_fixed_and_a_fixed_run_keeps_the_first_release_shape() -> None:
    request = parse(minimal())

    assert (request.poll_policy, request.poll_backoff) == ("fixed", 1.0)
    assert "poll_policy" not in request.to_dict()
    assert RunRequest.from_resolved(request.to_dict()) == request


@pytest.mark.parametrize("given", ["predictive", "Predictive", "PREDICTIVE"])
def test_predictive_is_chosen_per_run_in_any_case(given: str) -> None:
    request = parse(minimal(poll_policy=given))

    assert request.poll_policy == "predictive"
    assert request.to_dict()["poll_policy"] == "predictive"
    assert RunRequest.from_resolved(request.to_dict()) == request


def test_the_setting_chooses_the_policy_when_the_run_does_not() -> None:
    settings = load_settings({"POLL_POLICY": "predictive"})

    assert parse(minimal(), settings).poll_policy == "predictive"
    assert parse(minimal(poll_policy="fixed"), settings).poll_policy == "fixed"


def test_a_backoff_factor_alone_still_means_backoff_as_before() -> None:
    settings = load_settings({"POLL_POLICY": "predictive"})
    request = parse(minimal(poll_interval=30, poll_backoff=1.5), settings)

    assert (request.poll_policy, request.poll_backoff) == ("backoff", 1.5)


def test_backoff_without_a_factor_grows_by_the_default_factor() -> None:
    request = parse(minimal(poll_policy="backoff"))

    assert (request.poll_policy, request.poll_backoff) == ("backoff", 2.0)
    assert RunRequest.from_resolved(request.to_dict()) == request


def test_a_history_written_before_poll_policy_reads_its_backoff_back() -> None:
    old = {**parse(minimal(poll_interval=30, poll_backoff=1.5)).to_dict()}
    old.pop("poll_policy")

    assert RunRequest.from_resolved(old).poll_policy == "backoff"


@pytest.mark.parametrize("value", ["sometimes", "fixed ", 3, True, "x" * 300])
def test_a_bad_poll_policy_is_refused_naming_it(value: object) -> None:
    with pytest.raises(InvalidRunRequest) as caught:
        parse(minimal(poll_policy=value))

    assert [d.field for d in caught.value.details] == ["poll_policy"]
    assert caught.value.details[0].message.startswith("poll_policy ")


@pytest.mark.parametrize("policy", ["fixed", "predictive"])
def test_a_backoff_factor_with_another_policy_is_refused(policy: str) -> None:
    with pytest.raises(InvalidRunRequest) as caught:
        parse(minimal(poll_interval=30, poll_backoff=2, poll_policy=policy))

    assert [d.field for d in caught.value.details] == ["poll_backoff"]
    assert policy in caught.value.details[0].message


def test_a_request_rebuilt_with_an_unknown_policy_is_refused() -> None:
    data = {**parse(minimal()).to_dict(), "poll_policy": "eager"}

    with pytest.raises(InvalidRunRequest) as caught:
        RunRequest.from_resolved(data)
    assert [d.field for d in caught.value.details] == ["poll_policy"]


def test_the_setting_is_validated_naming_it() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"POLL_POLICY": "eager"})

    assert "POLL_POLICY" in str(caught.value)
    assert load_settings({"POLL_POLICY": " Backoff "}).poll_policy == "backoff"
