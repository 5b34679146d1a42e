"""Offline checks of the azd template (azure.yaml, infra/, host.json variants, hooks) against the
app: settings, roles, webhook path, host.json per durable backend. No Bicep compiler is reachable
here, so these read the template as text; what they cannot show is listed in docs/deploy.md."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from batch_runs import blob_trigger_source, load_settings
from devhost.eventgrid import (
    BLOBS_EXTENSION,
    WEBHOOKS_PREFIX,
    extension_of,
    short_function_name,
)
from tests.deploy.infra_text import (
    DOCS,
    ROOT,
    RecordingEnviron,
    app_settings,
    bicep_files,
    documented_roles,
    indexed_functions,
    object_block,
    object_keys,
    param_defaults,
    read,
    role_assignments,
)

# Built-in role definition ids, from https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
BUILT_IN_ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Data Contributor": "ba92f115-3f6c-4b7a-8ff9-f2d0d7ab8a7a",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Durable Task Data Contributor": "0ad04412-c4d5-4796-b79c-f76d14c8d402",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
}
# What the issue requires at least (host storage for Durable, telemetry, the workspace, data).
REQUIRED_ROLES = {
    "Storage Blob Data Owner",
    "Storage Queue Data Contributor",
    "Storage Table Data Contributor",
    "Monitoring Metrics Publisher",
    "AzureML Data Scientist",
    "Storage Blob Data Contributor",
    "Durable Task Data Contributor",
}


def _settings_read_by_the_app() -> set[str]:
    env = RecordingEnviron()
    load_settings(env)
    blob_trigger_source(env)
    return env.read


def _host_expressions() -> set[str]:
    """``%SETTING%`` names the host resolves: host.json variants and indexed bindings."""
    names: set[str] = set()
    for path in [ROOT / "host.json", *sorted((ROOT / "infra" / "host").glob("*.json"))]:
        names |= set(re.findall(r"%([A-Za-z0-9_]+)%", path.read_text(encoding="utf-8")))
    for fn in indexed_functions().values():
        names |= set(re.findall(r"%([A-Za-z0-9_]+)%", json.dumps(fn)))
    return names


def _documented_settings() -> dict[str, str]:
    """docs/deploy.md's settings table: each name of the first column -> the rest of its row."""
    text = DOCS.read_text(encoding="utf-8")
    table = text[text.index("## App settings") :]
    table = table[: table.index("\n## ", 1)]
    rows: dict[str, str] = {}
    for line in table.splitlines():
        cells = line.split("|")
        if len(cells) > 3 and "`" in cells[1]:
            for name in re.findall(r"`([A-Za-z0-9_]+)`", cells[1]):
                rows[name] = "|".join(cells[2:])
    return rows


def test_every_setting_the_app_reads_is_set_by_the_template_or_documented_optional():
    read_by_app = _settings_read_by_the_app()
    set_by_template = set(app_settings())
    documented = _documented_settings()
    optional = {name for name, row in documented.items() if "optional, not set" in row}

    assert len(read_by_app) >= 20, read_by_app  # the recorder saw the settings module's reads
    assert read_by_app - set_by_template - optional == set()
    # and the doc table lists each one, so a reader finds every setting in one place
    assert read_by_app - set(documented) == set()


def test_every_host_expression_and_connection_is_set_by_the_template():
    settings = set(app_settings())
    host_json = json.loads(read("host.json"))
    dts_json = json.loads(read("infra/host/host.durableTaskScheduler.json"))
    connections = {
        host_json["extensions"]["durableTask"]["storageProvider"]["connectionName"],
        dts_json["extensions"]["durableTask"]["storageProvider"]["connectionStringName"],
    }
    for fn in indexed_functions().values():
        for binding in fn["bindings"]:
            if binding.get("connection"):
                connections.add(binding["connection"])

    assert _host_expressions() - settings == set()
    for name in connections:  # a connection string, or an identity-based setting collection
        assert name in settings or f"{name}__accountName" in settings, name
    identity = {k: v for k, v in app_settings().items() if k.startswith("AzureWebJobsStorage")}
    assert set(identity) == {
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
    }  # no keys, no connection string
    assert identity["AzureWebJobsStorage__credential"] == "'managedidentity'"


def test_template_defaults_are_valid_settings_for_the_app():
    main = read("infra/main.bicep")
    defaults = param_defaults(main)
    settings_block = object_keys(object_block(main, r"\n\s+settings:\s*\{"))
    env = {}
    for name, expression in settings_block.items():
        if expression.startswith("'"):
            env[name] = expression.strip("'")
        elif expression in defaults:
            env[name] = defaults[expression]
    env["BATCH_ENDPOINT_URI"] = "https://ep.westeurope.inference.ml.azure.com/jobs"  # required

    settings = load_settings(env)

    assert settings.auth_mode == "azure"
    assert settings.scoring_blob_source == "EventGrid"  # Flex Consumption's only blob source
    assert settings.poll_interval_seconds == 120


def test_the_parameters_file_maps_azd_environment_values_to_every_parameter_it_names():
    params = json.loads(read("infra/main.parameters.json"))["parameters"]
    declared = set(re.findall(r"^param\s+(\w+)\s", read("infra/main.bicep"), re.M))

    assert set(params) <= declared
    required = {m for m in re.findall(r"^param\s+(\w+)\s+\w+\s*$", read("infra/main.bicep"), re.M)}
    assert required <= set(params)
    for name, value in params.items():
        assert re.fullmatch(r"\$\{[A-Z_]+(=[^{}]*)?\}", value["value"]), name


def test_every_documented_role_is_assigned_by_its_built_in_id_and_every_assignment_documented():
    documented = documented_roles()
    assigned = {role for _, _, role in role_assignments()}

    assert set(documented) >= REQUIRED_ROLES
    for name, role_id in documented.items():
        assert BUILT_IN_ROLES.get(name) == role_id, name
        assert role_id in assigned, f"{name} is documented but not assigned"
    assert assigned <= set(documented.values()), "an assignment is missing from docs/deploy.md"


def test_role_assignments_are_idempotent_and_name_their_principal_type():
    for name, text in bicep_files().items():
        for m in re.finditer(
            r"^resource\s+(\w+)\s+'Microsoft\.Authorization/roleAssignments@", text, re.M
        ):
            body = object_block(text[m.start() :], r"=\s*(?:if\s*\([^\n]*\)\s*)?\{")
            assert re.search(r"name:\s*guid\(", body), (name, m.group(1))
            principal = re.search(r"principalType:\s*'(ServicePrincipal|User)'", body)
            assert principal, (name, m.group(1))


def test_flex_consumption_python_311_with_a_user_assigned_identity():
    site = read("infra/modules/function-app.bicep")
    assert "name: 'FC1'" in site
    assert "tier: 'FlexConsumption'" in site
    assert re.search(r"runtime:\s*\{\s*name: 'python'\s*version: '3.11'", site)
    assert "type: 'UserAssigned'" in site
    assert "keyVaultReferenceIdentity: identityId" in site
    app = read("infra/app.bicep")
    assert "DisableLocalAuth: true" in app  # telemetry with Entra tokens only
    assert "WorkspaceResourceId: logAnalytics.id" in app
    assert "allowSharedKeyAccess: false" in app


def test_the_postdeploy_hook_subscribes_the_blob_extension_webhook_of_the_indexed_function():
    fns = indexed_functions()
    (blob,) = [
        name for name, fn in fns.items() if any(b["type"] == "blobTrigger" for b in fn["bindings"])
    ]
    for hook in ("infra/hooks/postdeploy.sh", "infra/hooks/postdeploy.ps1"):
        text = read(hook)
        assert re.search(
            r"webhookPath = '/runtime/webhooks/blobs'|WEBHOOK_PATH=\"/runtime/"
            r"webhooks/blobs\"",
            text,
        ), hook
        assert f"Host.Functions.{blob}" in text, hook
        assert "Microsoft.Storage.BlobCreated" in text, hook
        assert "blobs_extension" in text, hook


_DEVHOST_BLOB_TRIGGERS = """
import json
from pathlib import Path
from devhost.app_loader import load_app
index = load_app(Path("."))
print(json.dumps([[s.function_name, s.source, s.event_grid] for s in index.blob_triggers]))
"""


def test_devhost_serves_the_webhook_path_the_template_subscribes():
    """The hooks subscribe ``<app>/runtime/webhooks/blobs?functionName=Host.Functions.<fn>``;
    devhost routes that path to the blobs extension's handler (``devhost.eventgrid``, as
    Azure/azure-functions-host ``HostController.cs`` lines 479-496 at 89dc438d), resolves
    ``functionName`` to the indexed blob trigger, and with ``SCORING_BLOB_SOURCE=EventGrid`` indexes
    that trigger as an Event Grid one (delivered, not polled). The e2e test
    ``tests/e2e/test_eventgrid_blob.py`` delivers to this path."""
    (blob,) = [
        name
        for name, fn in indexed_functions().items()
        if any(b["type"] == "blobTrigger" for b in fn["bindings"])
    ]
    for hook in ("infra/hooks/postdeploy.sh", "infra/hooks/postdeploy.ps1"):
        text = read(hook)
        path = re.search(r"(?:webhookPath = '|WEBHOOK_PATH=\")([^'\"]+)", text)
        function = re.search(r"(?:functionName = '|FUNCTION_NAME=\")([^'\"]+)", text)
        assert path, hook
        assert function, hook

        assert path.group(1) == f"{WEBHOOKS_PREFIX}{BLOBS_EXTENSION}", hook
        assert extension_of(path.group(1)) == BLOBS_EXTENSION, hook
        assert function.group(1) == f"Host.Functions.{blob}", hook
        assert short_function_name(function.group(1)) == blob, hook

    out = subprocess.run(
        [sys.executable, "-c", _DEVHOST_BLOB_TRIGGERS],
        cwd=ROOT,
        env={**os.environ, "SCORING_BLOB_SOURCE": "EventGrid", "SCORING_BLOB_PATH": "c/{name}"},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert json.loads(out.splitlines()[-1]) == [[blob, "EventGrid", True]]


BUNDLE_ID = "Microsoft.Azure.Functions.ExtensionBundle"


def _bundle_range(spec: str) -> tuple[int, int]:
    m = re.fullmatch(r"\[(\d+)\.[\d*.]*,\s*(\d+)\.0\.0\)", spec)
    assert m, spec
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize(
    ("backend", "provider"),
    [
        ("azureStorage", {"connectionName": "AzureWebJobsStorage"}),
        (
            "durableTaskScheduler",
            {
                "type": "azureManaged",
                "connectionStringName": "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",
            },
        ),
    ],
)
def test_host_json_per_backend_is_valid_for_the_extension_bundle_range(backend, provider):
    host = json.loads(read(f"infra/host/host.{backend}.json"))
    durable = host["extensions"]["durableTask"]

    assert host["version"] == "2.0"
    # The GA bundle 4.x carries Durable Functions extension 3.x with the azureStorage provider
    # and the azureManaged (Durable Task Scheduler) provider; Microsoft's Python DTS sample
    # (Azure-Samples/Durable-Task-Scheduler, samples/durable-functions/python/hello-cities) uses
    # the same id and range. Not the Preview bundle, not v3 (no azureManaged), not open-ended.
    assert host["extensionBundle"]["id"] == BUNDLE_ID
    assert _bundle_range(host["extensionBundle"]["version"]) == (4, 5)
    assert durable["storageProvider"] == provider
    assert durable["hubName"] == "%TASKHUB_NAME%"
    assert set(durable) <= {
        "hubName",
        "storageProvider",
        "maxConcurrentActivityFunctions",
        "maxConcurrentOrchestratorFunctions",
        "tracing",
    }


def test_host_json_variants_differ_only_in_the_storage_provider_and_the_root_is_azure_storage():
    azure_storage = json.loads(read("infra/host/host.azureStorage.json"))
    scheduler = json.loads(read("infra/host/host.durableTaskScheduler.json"))
    for host in (azure_storage, scheduler):
        host["extensions"]["durableTask"].pop("storageProvider")
        host["logging"]["logLevel"].pop("DurableTask.AzureStorage", None)

    assert azure_storage == scheduler
    assert read("host.json") == read("infra/host/host.azureStorage.json")


def test_task_hub_default_is_valid_for_both_backends():
    default = param_defaults(read("infra/main.bicep"))["taskHubName"]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,44}", default)  # Azure Storage task hub rule
    assert re.fullmatch(r"[A-Za-z0-9-]{3,64}", default)  # Microsoft.DurableTask/taskHubs name


def test_the_scheduler_connection_uses_the_app_identity():
    setting = app_settings()["DURABLE_TASK_SCHEDULER_CONNECTION_STRING"]
    assert "Authentication=ManagedIdentity" in setting
    assert "ClientID=${identity.properties.clientId}" in setting


def test_service_principal_secret_is_only_ever_a_key_vault_reference():
    secret = app_settings()["AZURE_CLIENT_SECRET"]
    assert secret == "'@Microsoft.KeyVault(SecretUri=${servicePrincipalSecretUri})'"
    main = read("infra/main.bicep")
    assert not re.search(r"param\s+\w*[Ss]ecret\w*\s+string\s*=\s*'[^']+'", main)
    assert "@secure()" not in main  # no secret value is a parameter at all


def test_azure_yaml_deploys_the_repository_root_as_a_python_function_app():
    text = read("azure.yaml")
    assert re.search(r"project:\s*\.\s*\n\s*language:\s*python\s*\n\s*host:\s*function", text)
    for hook in re.findall(r"run:\s*\./(\S+)", text):
        assert (ROOT / hook).is_file(), hook
    assert Path(ROOT / "infra" / "main.bicep").is_file()
