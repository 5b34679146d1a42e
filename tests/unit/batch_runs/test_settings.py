"""Settings: every setting parsed good and bad, all problems collected, the env cache."""

import pytest

from batch_runs import Settings, SettingsError, get_settings, load_settings


def test_defaults_when_environment_is_empty() -> None:
    settings = load_settings({})

    assert settings == Settings()
    assert settings.batch_endpoint_uri is None
    assert settings.allowed_hosts == ("*.inference.ml.azure.com",)
    assert settings.auth_mode == "azure"
    assert settings.token_scope == "https://ml.azure.com/.default"
    assert settings.arm_endpoint == "https://management.azure.com"
    assert settings.arm_token_scope == "https://management.azure.com/.default"
    assert settings.azure_client_id is None
    assert (settings.poll_interval_seconds, settings.poll_interval_min) == (120, 10)
    assert settings.poll_interval_max == 3600
    assert (settings.run_timeout_seconds, settings.run_timeout_max_seconds) == (86400, 2592000)
    assert settings.output_uri_template.endswith("{date}/{run_id}/predictions.csv")
    assert settings.scoring_blob_path == "scoring-input/{name}"
    assert settings.scoring_schedule == "0 0 2 * * *"
    assert (settings.scheduled_input_uri, settings.scheduled_input_type) == (None, "UriFolder")
    assert settings.http_timeout == (5.0, 30.0)
    assert (settings.http_max_attempts, settings.http_retry_budget_seconds) == (3, 60.0)


def test_empty_strings_count_as_unset() -> None:
    env = {"BATCH_ENDPOINT_URI": "", "POLL_INTERVAL_SECONDS": "  ", "AZURE_CLIENT_ID": ""}

    assert load_settings(env) == Settings()


GOOD = [
    (
        "BATCH_ENDPOINT_URI",
        "https://ep.westeurope.inference.ml.azure.com/jobs",
        "batch_endpoint_uri",
        "https://ep.westeurope.inference.ml.azure.com/jobs",
    ),
    (
        "BATCH_ENDPOINT_ALLOWED_HOSTS",
        " A.Example.com , *.inference.ml.azure.com,127.0.0.1:5100 ,",
        "allowed_hosts",
        ("a.example.com", "*.inference.ml.azure.com", "127.0.0.1:5100"),
    ),
    ("BATCH_ENDPOINT_AUTH", "None", "auth_mode", "none"),
    (
        "AML_TOKEN_SCOPE",
        "https://ml.azure.cn/.default",
        "token_scope",
        "https://ml.azure.cn/.default",
    ),
    (
        "AML_ARM_ENDPOINT",
        "https://management.chinacloudapi.cn/",
        "arm_endpoint",
        "https://management.chinacloudapi.cn",
    ),
    ("AML_ARM_ENDPOINT", "http://127.0.0.1:5100", "arm_endpoint", "http://127.0.0.1:5100"),
    (
        "AML_ARM_TOKEN_SCOPE",
        "https://management.usgovcloudapi.net/.default",
        "arm_token_scope",
        "https://management.usgovcloudapi.net/.default",
    ),
    (
        "AZURE_CLIENT_ID",
        "00000000-0000-0000-0000-000000000001",
        "azure_client_id",
        "00000000-0000-0000-0000-000000000001",
    ),
    ("POLL_INTERVAL_SECONDS", "30", "poll_interval_seconds", 30),
    ("POLL_INTERVAL_MIN", "1", "poll_interval_min", 1),
    ("POLL_INTERVAL_MAX", "7200", "poll_interval_max", 7200),
    ("RUN_TIMEOUT_SECONDS", "3600", "run_timeout_seconds", 3600),
    ("RUN_TIMEOUT_MAX_SECONDS", "604800", "run_timeout_max_seconds", 604800),
    (
        "OUTPUT_URI_TEMPLATE",
        "azureml://datastores/out/paths/{source_name}/{timestamp}-{run_id}.csv",
        "output_uri_template",
        "azureml://datastores/out/paths/{source_name}/{timestamp}-{run_id}.csv",
    ),
    ("SCORING_BLOB_PATH", "incoming/{name}", "scoring_blob_path", "incoming/{name}"),
    ("SCORING_SCHEDULE", "0 */5 * * * 1-5", "scoring_schedule", "0 */5 * * * 1-5"),
    (
        "SCHEDULED_INPUT_URI",
        "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/",
        "scheduled_input_uri",
        "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/",
    ),
    ("SCHEDULED_INPUT_TYPE", "UriFile", "scheduled_input_type", "UriFile"),
    ("BATCH_ENDPOINT_HTTP_TIMEOUT_SECONDS", "2.5", "http_timeout_seconds", 2.5),
    ("BATCH_ENDPOINT_MAX_ATTEMPTS", "5", "http_max_attempts", 5),
    ("BATCH_ENDPOINT_RETRY_BUDGET_SECONDS", "0", "http_retry_budget_seconds", 0.0),
]


@pytest.mark.parametrize(("env_name", "raw", "field", "expected"), GOOD)
def test_each_setting_is_parsed(env_name: str, raw: str, field: str, expected: object) -> None:
    settings = load_settings({env_name: raw})

    assert getattr(settings, field) == expected


BAD = [
    ("BATCH_ENDPOINT_URI", "http://ep.example.com/jobs", "https"),
    ("BATCH_ENDPOINT_URI", "https://ep.westeurope.inference.ml.azure.com/score", "/jobs"),
    ("BATCH_ENDPOINT_URI", "https://evil.example.com/jobs", "BATCH_ENDPOINT_ALLOWED_HOSTS"),
    ("BATCH_ENDPOINT_ALLOWED_HOSTS", "*", "too broad"),
    ("BATCH_ENDPOINT_ALLOWED_HOSTS", "a.com, *", "too broad"),
    ("BATCH_ENDPOINT_ALLOWED_HOSTS", "a.*.com", "'*'"),
    ("BATCH_ENDPOINT_ALLOWED_HOSTS", "*.com", "too broad"),
    ("BATCH_ENDPOINT_ALLOWED_HOSTS", "host:0", "port"),
    ("BATCH_ENDPOINT_ALLOWED_HOSTS", "host:http", "port"),
    ("BATCH_ENDPOINT_ALLOWED_HOSTS", " , ", "at least one"),
    ("BATCH_ENDPOINT_ALLOWED_HOSTS", "bad host", "valid host"),
    ("BATCH_ENDPOINT_AUTH", "key", "azure, none"),
    ("AML_TOKEN_SCOPE", "https://ml.azure.com/.default other", "scope"),
    ("AML_ARM_TOKEN_SCOPE", "a b", "scope"),
    ("AML_ARM_ENDPOINT", "http://management.azure.com", "https"),
    ("AML_ARM_ENDPOINT", "https://management.azure.com/sub/path", "no path"),
    ("POLL_INTERVAL_SECONDS", "abc", "integer"),
    ("POLL_INTERVAL_SECONDS", "5", "POLL_INTERVAL_MIN"),
    ("POLL_INTERVAL_SECONDS", "4000", "POLL_INTERVAL_MAX"),
    ("POLL_INTERVAL_MIN", "0", ">= 1"),
    ("POLL_INTERVAL_MIN", "200", "POLL_INTERVAL_MIN..POLL_INTERVAL_MAX"),
    ("POLL_INTERVAL_MAX", "60", "POLL_INTERVAL_MIN..POLL_INTERVAL_MAX"),
    ("POLL_INTERVAL_MAX", "1.5", "integer"),
    ("RUN_TIMEOUT_SECONDS", "0", ">= 1"),
    ("RUN_TIMEOUT_SECONDS", "99999999", "RUN_TIMEOUT_MAX_SECONDS"),
    ("RUN_TIMEOUT_SECONDS", "60", "POLL_INTERVAL_SECONDS"),
    ("RUN_TIMEOUT_MAX_SECONDS", "3600", "RUN_TIMEOUT_MAX_SECONDS"),
    ("RUN_TIMEOUT_MAX_SECONDS", "x", "integer"),
    ("OUTPUT_URI_TEMPLATE", "azureml://datastores/a/paths/{nope}/x.csv", "{nope}"),
    ("OUTPUT_URI_TEMPLATE", "azureml://datastores/a/paths/{run_id/x.csv", "invalid"),
    ("OUTPUT_URI_TEMPLATE", "azureml://datastores/a/paths/{run_id}/", "file"),
    ("OUTPUT_URI_TEMPLATE", "https://acct.blob.core.windows.net/c/{run_id}.csv", "azureml://"),
    ("SCORING_BLOB_PATH", "no-slash", "<container>/<path pattern>"),
    ("SCORING_SCHEDULE", "0 2 * * *", "six fields"),
    ("SCORING_SCHEDULE", "0 0 2 * * * *", "six fields"),
    ("SCHEDULED_INPUT_URI", "/tmp/data", "local paths"),
    ("SCHEDULED_INPUT_URI", "https://a1b2c3.blob.core.windows.net/c/d?sv=x&sig=y", "SAS"),
    ("SCHEDULED_INPUT_TYPE", "urifolder", "UriFolder, UriFile"),
    ("BATCH_ENDPOINT_HTTP_TIMEOUT_SECONDS", "0", "between"),
    ("BATCH_ENDPOINT_HTTP_TIMEOUT_SECONDS", "nan", "between"),
    ("BATCH_ENDPOINT_HTTP_TIMEOUT_SECONDS", "fast", "number"),
    ("BATCH_ENDPOINT_MAX_ATTEMPTS", "0", "between 1 and 10"),
    ("BATCH_ENDPOINT_MAX_ATTEMPTS", "11", "between 1 and 10"),
    ("BATCH_ENDPOINT_RETRY_BUDGET_SECONDS", "-1", "between"),
]


@pytest.mark.parametrize(("env_name", "raw", "expected_text"), BAD)
def test_each_bad_setting_is_named_with_the_reason(
    env_name: str, raw: str, expected_text: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({env_name: raw})

    message = str(caught.value)
    assert env_name in message
    assert expected_text in message
    assert isinstance(caught.value, ValueError)


def test_every_problem_is_collected_in_one_error() -> None:
    env = {
        "BATCH_ENDPOINT_AUTH": "magic",
        "POLL_INTERVAL_SECONDS": "x",
        "OUTPUT_URI_TEMPLATE": "azureml://datastores/a/paths/{what}.csv",
        "SCORING_SCHEDULE": "daily",
        "BATCH_ENDPOINT_MAX_ATTEMPTS": "-3",
    }

    with pytest.raises(SettingsError) as caught:
        load_settings(env)

    named = {p.split(" ", 1)[0] for p in caught.value.problems}
    assert named == set(env)


def test_sas_in_a_setting_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"SCHEDULED_INPUT_URI": "https://acct.example.com/c/d?sig=SECRETSIG"})

    assert "SECRETSIG" not in str(caught.value)


def test_auth_none_refuses_a_remote_default_endpoint() -> None:
    env = {
        "BATCH_ENDPOINT_AUTH": "none",
        "BATCH_ENDPOINT_URI": "https://ep.westeurope.inference.ml.azure.com/jobs",
    }

    with pytest.raises(SettingsError, match=r"BATCH_ENDPOINT_URI.*loopback"):
        load_settings(env)


def test_offline_stack_settings_load() -> None:
    env = {
        "BATCH_ENDPOINT_AUTH": "none",
        "BATCH_ENDPOINT_ALLOWED_HOSTS": "127.0.0.1:5100,localhost",
        "BATCH_ENDPOINT_URI": "http://127.0.0.1:5100/endpoints/heart-classifier/jobs",
        "POLL_INTERVAL_MIN": "1",
        "POLL_INTERVAL_SECONDS": "2",
    }

    settings = load_settings(env)

    assert settings.batch_endpoint_uri == "http://127.0.0.1:5100/endpoints/heart-classifier/jobs"
    assert settings.poll_interval_seconds == 2


def test_settings_are_frozen() -> None:
    settings = load_settings({})

    with pytest.raises(AttributeError):
        settings.auth_mode = "none"  # type: ignore[misc]


def test_get_settings_reads_os_environ_once(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "45")
    try:
        first = get_settings()
        monkeypatch.setenv("POLL_INTERVAL_SECONDS", "50")
        second = get_settings()
    finally:
        get_settings.cache_clear()

    assert first.poll_interval_seconds == 45
    assert second is first
