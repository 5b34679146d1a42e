# azd postdeploy hook (Windows): same as postdeploy.sh.
$ErrorActionPreference = 'Stop'
$webhookPath = '/runtime/webhooks/blobs'
$functionName = 'Host.Functions.start_run_on_blob'
$subscriptionName = 'scoring-blob-created'
$source = if ($env:SCORING_BLOB_SOURCE) { $env:SCORING_BLOB_SOURCE } else { 'EventGrid' }
if ($source -ne 'EventGrid') { Write-Host "SCORING_BLOB_SOURCE=${source}: no Event Grid subscription needed"; exit 0 }
$key = ''
for ($attempt = 1; $attempt -le 20 -and -not $key; $attempt++) {
  $key = az functionapp keys list -g $env:AZURE_RESOURCE_GROUP -n $env:AZURE_FUNCTION_APP_NAME --query 'systemKeys.blobs_extension' -o tsv 2>$null
  if (-not $key) { Write-Host "waiting for the blobs_extension key (attempt $attempt/20)"; Start-Sleep -Seconds 15 }
}
if (-not $key) { throw 'no blobs_extension system key: see docs/deploy.md, Troubleshooting' }
$endpoint = "$($env:SERVICE_APP_URI)$($webhookPath)?functionName=$($functionName)&code=$key"
az eventgrid system-topic event-subscription create --name $subscriptionName `
  --resource-group $env:AZURE_RESOURCE_GROUP --system-topic-name $env:EVENT_GRID_SYSTEM_TOPIC_NAME `
  --endpoint-type webhook --endpoint $endpoint --included-event-types Microsoft.Storage.BlobCreated `
  --subject-begins-with "/blobServices/default/containers/$($env:SCORING_BLOB_CONTAINER)/" --output none
Write-Host "Event Grid subscription $subscriptionName created"
