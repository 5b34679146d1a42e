#!/bin/sh
# azd prepackage hook: host.json must name the storage provider of the durable backend that
# infra/main.bicep provisioned (DURABLE_BACKEND), because the scale controller reads host.json
# from the package (app-setting overrides of the provider are not honoured by it:
# Azure/azure-functions-durable-extension#2622). Copies infra/host/host.<backend>.json over
# host.json when they differ and says so (the change shows in `git diff`).
set -eu
cd "$(dirname "$0")/../.."
backend="${DURABLE_BACKEND:-azureStorage}"
variant="infra/host/host.${backend}.json"
if [ ! -f "$variant" ]; then
  echo "DURABLE_BACKEND=${backend}: no ${variant} (expected azureStorage or durableTaskScheduler)" >&2
  exit 1
fi
if cmp -s "$variant" host.json; then
  echo "host.json already matches DURABLE_BACKEND=${backend}"
else
  cp "$variant" host.json
  echo "host.json replaced by ${variant} for DURABLE_BACKEND=${backend} (commit it, or run again after switching back)"
fi
