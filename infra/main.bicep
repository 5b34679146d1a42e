// azd entry point: a resource group with the Flex Consumption function app and what it needs,
// plus role assignments on the existing Azure ML workspace and data storage accounts.
// Written against the Azure-Samples Flex Consumption azd quickstarts and the Durable Task
// Scheduler samples; never compiled here (no Bicep compiler offline). See docs/deploy.md.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('azd environment name; used to name the resource group and make names unique.')
param environmentName string

@minLength(1)
@description('Region of the app, its storage, monitoring and (optionally) the scheduler.')
@metadata({ azd: { type: 'location' } })
param location string

@description('Resource group to create or reuse; default rg-<environmentName>.')
param resourceGroupName string = ''

@description('Object id of the user running azd (AZURE_PRINCIPAL_ID); gets the scheduler dashboard role. Empty: none.')
param principalId string = ''

// ---------------------------------------------------------------------------------------------
// Azure ML: the existing workspace and the storage the batch endpoint reads and writes
// ---------------------------------------------------------------------------------------------

@description('ARM id of the existing Azure ML workspace: /subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.MachineLearningServices/workspaces/<name>. Any resource group, same tenant.')
param amlWorkspaceId string

@description('Comma-separated ARM ids of the storage accounts behind the datastores the jobs read and write (e.g. the workspace default storage). Each gets Storage Blob Data Contributor.')
param dataStorageAccountIds string = ''


// ---------------------------------------------------------------------------------------------
// App settings (names in docs/deploy.md; the settings module batch_endpoint/_settings.py is
// the source of truth, and tests/deploy checks that every setting it reads is set here)
// ---------------------------------------------------------------------------------------------

@description('BATCH_ENDPOINT_URI: scoring URI of the batch endpoint, https://<endpoint>.<region>.inference.ml.azure.com/jobs (ADF: endpoint_uri).')
param batchEndpointUri string

@description('BATCH_ENDPOINT_ALLOWED_HOSTS: hosts allowed to receive the token.')
param batchEndpointAllowedHosts string = '*.inference.ml.azure.com'

@description('SCHEDULED_INPUT_URI: what the timer scores (ADF: endpoint_input_uri). Empty: the timer does nothing.')
param scheduledInputUri string = ''

@allowed([ 'UriFolder', 'UriFile' ])
@description('SCHEDULED_INPUT_TYPE (ADF: endpoint_input_type).')
param scheduledInputType string = 'UriFolder'

@description('SCORING_SCHEDULE: six-field NCRONTAB (UTC).')
param scoringSchedule string = '0 0 2 * * *'

@description('SCORING_BLOB_PATH: <container>/<pattern> watched by the blob trigger on the host storage account. Empty: scoring-input/{name}.')
param scoringBlobPath string = 'scoring-input/{name}'

@allowed([ 'EventGrid', 'LogsAndContainerScan' ])
@description('SCORING_BLOB_SOURCE: Flex Consumption supports only EventGrid.')
param scoringBlobSource string = 'EventGrid'

@description('SCORING_BLOB_MODE: file (each blob starts a run) or folder-marker (a marker blob starts one UriFolder run over its folder).')
@allowed(['file', 'folder-marker'])
param scoringBlobMode string = 'file'

@description('SCORING_MARKER_NAME: the marker blob name in folder-marker mode.')
param scoringMarkerName string = '_READY'

@description('POLL_INTERVAL_SECONDS (ADF: poll_interval).')
param pollIntervalSeconds string = '120'

@description('POLL_INTERVAL_MIN, POLL_INTERVAL_MAX: bounds for a run\'s poll_interval.')
param pollIntervalMin string = '10'
param pollIntervalMax string = '3600'

@allowed([ 'fixed', 'backoff', 'predictive' ])
@description('POLL_POLICY: default poll policy of every run (run parameter poll_policy).')
param pollPolicy string = 'fixed'

@description('RUN_TIMEOUT_SECONDS: default deadline of a run; RUN_TIMEOUT_MAX_SECONDS: the largest a caller may ask.')
param runTimeoutSeconds string = '86400'
param runTimeoutMaxSeconds string = '2592000'

@description('OUTPUT_URI_TEMPLATE: default output path (ADF: endpoint_output_uri). Empty: the app default.')
param outputUriTemplate string = ''

@description('AML_TOKEN_SCOPE: data-plane token scope (sovereign clouds differ).')
param amlTokenScope string = 'https://ml.azure.com/.default'

@description('AML_ARM_ENDPOINT and AML_ARM_TOKEN_SCOPE: ARM endpoint and scope for job cancel.')
param amlArmEndpoint string = 'https://management.azure.com'
param amlArmTokenScope string = 'https://management.azure.com/.default'

@description('BATCH_ENDPOINT_HTTP_TIMEOUT_SECONDS, BATCH_ENDPOINT_MAX_ATTEMPTS, BATCH_ENDPOINT_RETRY_BUDGET_SECONDS.')
param httpTimeoutSeconds string = '30'
param httpMaxAttempts string = '3'
param httpRetryBudgetSeconds string = '60'

@description('CANCEL_GRACE_SECONDS: after a cancel the run polls this long for the job to end.')
param cancelGraceSeconds string = '900'

@description('MAX_ACTIVE_JOBS_PER_ENDPOINT: at most this many active jobs per endpoint; empty = no cap.')
param maxActiveJobsPerEndpoint string = ''

@description('NOTIFY_QUEUE: Storage queue (on the app\'s storage account) that receives every run ending\'s JSON summary; empty = off.')
param notifyQueue string = ''

@description('RUN_RETENTION_DAYS: finished runs older than this many days are purged.')
param runRetentionDays string = '30'

@description('RETENTION_SCHEDULE: six-field NCRONTAB (UTC) of the purge_old_runs timer.')
param retentionSchedule string = '0 30 3 * * *'

@description('RECONCILE_SCHEDULE: six-field NCRONTAB (UTC) of the reconcile_jobs timer (orphaned jobs).')
param reconcileSchedule string = '0 */15 * * * *'

@description('TASKHUB_NAME: letters and digits. Change it to deploy an incompatible orchestrator without draining (docs/deploy.md).')
param taskHubName string = 'batchscoring'

// ---------------------------------------------------------------------------------------------
// Durable backend
// ---------------------------------------------------------------------------------------------

@allowed([ 'azureStorage', 'durableTaskScheduler' ])
@description('azureStorage: queues and tables in the host storage account. durableTaskScheduler: Microsoft\'s managed backend.')
param durableBackend string = 'azureStorage'

@allowed([ 'Consumption', 'Dedicated' ])
param schedulerSkuName string = 'Consumption'

@description('Capacity units for the Dedicated SKU (1-3).')
@minValue(1)
@maxValue(3)
param schedulerCapacity int = 1

// ---------------------------------------------------------------------------------------------
// Identity used for Azure ML: the app's user-assigned managed identity, or a service principal
// ---------------------------------------------------------------------------------------------

@description('Service principal mode: its application (client) id. Empty: the managed identity is used.')
param servicePrincipalClientId string = ''

@description('Service principal mode: its object id (enterprise application), for the Azure ML and storage role assignments.')
param servicePrincipalObjectId string = ''

@description('Service principal mode: Key Vault secret URI holding the client secret (https://<vault>.vault.azure.net/secrets/<name>). Never the secret itself.')
param servicePrincipalSecretUri string = ''

@description('Service principal mode: ARM id of that Key Vault (RBAC mode); the app identity gets Key Vault Secrets User on it. Empty: grant access yourself.')
param keyVaultId string = ''

// ---------------------------------------------------------------------------------------------
// Function app sizing
// ---------------------------------------------------------------------------------------------

@allowed([ 512, 2048, 4096 ])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

// ---------------------------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var usesServicePrincipal = !empty(servicePrincipalClientId)
// azd maps an unset environment value to '' (and "${VAR=default}" cannot hold braces).
var blobPath = empty(scoringBlobPath) ? 'scoring-input/{name}' : scoringBlobPath
var amlParts = split(amlWorkspaceId, '/')
var dataStorageIds = empty(trim(dataStorageAccountIds)) ? [] : split(replace(dataStorageAccountIds, ' ', ''), ',')
// A module's scope is evaluated even when its condition is false: never split an empty id.
var keyVaultParts = split(!empty(keyVaultId) ? keyVaultId : '/subscriptions/${subscription().subscriptionId}/resourceGroups/unused/providers/Microsoft.KeyVault/vaults/unused', '/')

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'app.bicep' = {
  name: 'app'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    principalId: principalId
    durableBackend: durableBackend
    schedulerSkuName: schedulerSkuName
    schedulerCapacity: schedulerCapacity
    taskHubName: taskHubName
    scoringBlobPath: blobPath
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    usesServicePrincipal: usesServicePrincipal
    servicePrincipalObjectId: servicePrincipalObjectId
    settings: {
      BATCH_ENDPOINT_URI: batchEndpointUri
      BATCH_ENDPOINT_ALLOWED_HOSTS: batchEndpointAllowedHosts
      BATCH_ENDPOINT_AUTH: 'azure'
      AML_TOKEN_SCOPE: amlTokenScope
      AML_ARM_ENDPOINT: amlArmEndpoint
      AML_ARM_TOKEN_SCOPE: amlArmTokenScope
      AML_WORKSPACE_ID: amlWorkspaceId
      POLL_INTERVAL_SECONDS: pollIntervalSeconds
      POLL_INTERVAL_MIN: pollIntervalMin
      POLL_INTERVAL_MAX: pollIntervalMax
      POLL_POLICY: pollPolicy
      RUN_TIMEOUT_SECONDS: runTimeoutSeconds
      RUN_TIMEOUT_MAX_SECONDS: runTimeoutMaxSeconds
      OUTPUT_URI_TEMPLATE: outputUriTemplate
      SCORING_BLOB_PATH: blobPath
      SCORING_BLOB_SOURCE: scoringBlobSource
      SCORING_BLOB_MODE: scoringBlobMode
      SCORING_MARKER_NAME: scoringMarkerName
      SCORING_SCHEDULE: scoringSchedule
      SCHEDULED_INPUT_URI: scheduledInputUri
      SCHEDULED_INPUT_TYPE: scheduledInputType
      BATCH_ENDPOINT_HTTP_TIMEOUT_SECONDS: httpTimeoutSeconds
      BATCH_ENDPOINT_MAX_ATTEMPTS: httpMaxAttempts
      BATCH_ENDPOINT_RETRY_BUDGET_SECONDS: httpRetryBudgetSeconds
      CANCEL_GRACE_SECONDS: cancelGraceSeconds
      RUN_RETENTION_DAYS: runRetentionDays
      MAX_ACTIVE_JOBS_PER_ENDPOINT: maxActiveJobsPerEndpoint
      NOTIFY_QUEUE: notifyQueue
      RETENTION_SCHEDULE: retentionSchedule
      RECONCILE_SCHEDULE: reconcileSchedule
      // The host reads request bodies up to this size before the app sees them (default 100 MB);
      // the app refuses run requests over 64 KiB anyway, Event Grid deliveries stay well under.
      FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '1048576'
    }
    // azure-identity's EnvironmentCredential (first in DefaultAzureCredential's chain) reads these;
    // the secret is a Key Vault reference that the platform resolves with the app's identity.
    servicePrincipalSettings: usesServicePrincipal ? {
      AZURE_TENANT_ID: tenant().tenantId
      AZURE_CLIENT_ID: servicePrincipalClientId
      AZURE_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${servicePrincipalSecretUri})'
    } : {}
  }
}

// The identity that calls Azure ML: the service principal when configured, else the app identity.
var amlPrincipalId = usesServicePrincipal ? servicePrincipalObjectId : app.outputs.identityPrincipalId

module amlAccess 'modules/aml-workspace-access.bicep' = {
  name: 'aml-workspace-access-${resourceToken}'
  scope: resourceGroup(amlParts[2], amlParts[4])
  params: {
    workspaceName: last(amlParts)
    principalId: amlPrincipalId
  }
}

module dataAccess 'modules/data-storage-access.bicep' = [for (id, i) in dataStorageIds: {
  name: 'data-storage-access-${resourceToken}-${i}'
  scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
  params: {
    storageAccountName: last(split(id, '/'))
    principalId: amlPrincipalId
  }
}]

module keyVaultAccess 'modules/key-vault-access.bicep' = if (usesServicePrincipal && !empty(keyVaultId)) {
  name: 'key-vault-access-${resourceToken}'
  scope: resourceGroup(keyVaultParts[2], keyVaultParts[4])
  params: {
    keyVaultName: last(keyVaultParts)
    principalId: app.outputs.identityPrincipalId
  }
}

// Outputs become azd environment values (used by the hooks and printed by azd).
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output SERVICE_APP_URI string = app.outputs.functionAppUri
output AZURE_STORAGE_ACCOUNT_NAME string = app.outputs.storageAccountName
output EVENT_GRID_SYSTEM_TOPIC_NAME string = app.outputs.systemTopicName
output SCORING_BLOB_CONTAINER string = app.outputs.scoringContainerName
output SCORING_BLOB_SOURCE string = scoringBlobSource
output DURABLE_BACKEND string = durableBackend
output DURABLE_TASK_SCHEDULER_ENDPOINT string = app.outputs.schedulerEndpoint
output TASKHUB_NAME string = taskHubName
