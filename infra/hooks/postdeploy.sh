#!/bin/sh
# azd postdeploy hook: with SCORING_BLOB_SOURCE=EventGrid, subscribe the host storage account's
# Event Grid system topic (created by infra/app.bicep) to the blob extension's webhook:
#   https://<app>/runtime/webhooks/blobs?functionName=Host.Functions.start_run_on_blob&code=<blobs_extension key>
# The blobs_extension system key exists only once the code is deployed and the host has indexed
# the EventGrid-source blob trigger, hence a hook after deploy. Event Grid validates the endpoint
# with a SubscriptionValidationEvent that the blob extension answers. Idempotent (PUT).
# Needs the Azure CLI, signed in (az login) to the same subscription as azd.
set -eu
: "${AZURE_FUNCTION_APP_NAME:?run through azd (azd deploy / azd up)}"
: "${AZURE_RESOURCE_GROUP:?}"
: "${SERVICE_APP_URI:?}"
: "${EVENT_GRID_SYSTEM_TOPIC_NAME:?}"
: "${SCORING_BLOB_CONTAINER:?}"

WEBHOOK_PATH="/runtime/webhooks/blobs"
FUNCTION_NAME="Host.Functions.start_run_on_blob"
SUBSCRIPTION_NAME="scoring-blob-created"

if [ "${SCORING_BLOB_SOURCE:-EventGrid}" != "EventGrid" ]; then
  echo "SCORING_BLOB_SOURCE=${SCORING_BLOB_SOURCE}: no Event Grid subscription needed"
  exit 0
fi
command -v az >/dev/null 2>&1 || { echo "the Azure CLI (az) is required for the Event Grid subscription" >&2; exit 1; }

key=""
attempt=0
while [ -z "$key" ] && [ "$attempt" -lt 20 ]; do
  attempt=$((attempt + 1))
  key=$(az functionapp keys list -g "$AZURE_RESOURCE_GROUP" -n "$AZURE_FUNCTION_APP_NAME" \
        --query "systemKeys.blobs_extension" -o tsv 2>/dev/null || true)
  [ -n "$key" ] || { echo "waiting for the blobs_extension key (host starting, attempt ${attempt}/20)"; sleep 15; }
done
[ -n "$key" ] || { echo "no blobs_extension system key: is the blob trigger indexed with source EventGrid? see docs/deploy.md, Troubleshooting" >&2; exit 1; }

endpoint="${SERVICE_APP_URI}${WEBHOOK_PATH}?functionName=${FUNCTION_NAME}&code=${key}"
az eventgrid system-topic event-subscription create \
  --name "$SUBSCRIPTION_NAME" \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --system-topic-name "$EVENT_GRID_SYSTEM_TOPIC_NAME" \
  --endpoint-type webhook \
  --endpoint "$endpoint" \
  --included-event-types Microsoft.Storage.BlobCreated \
  --subject-begins-with "/blobServices/default/containers/${SCORING_BLOB_CONTAINER}/" \
  --output none
echo "Event Grid subscription ${SUBSCRIPTION_NAME}: BlobCreated in ${SCORING_BLOB_CONTAINER}/ -> ${SERVICE_APP_URI}${WEBHOOK_PATH}?functionName=${FUNCTION_NAME}"
