// Everything in the app's resource group: identity, host storage, monitoring, the Flex
// Consumption function app, the optional Durable Task Scheduler, the Event Grid system topic on
// the host storage account, and the role assignments inside this resource group.
targetScope = 'resourceGroup'

param location string
param tags object
param resourceToken string
param principalId string
@allowed([ 'azureStorage', 'durableTaskScheduler' ])
param durableBackend string
param schedulerSkuName string
param schedulerCapacity int
param taskHubName string
param scoringBlobPath string
param instanceMemoryMB int
param maximumInstanceCount int
param usesServicePrincipal bool
param servicePrincipalObjectId string

@description('App settings read by the app code (batch_endpoint/_settings.py), set by main.bicep.')
param settings object

@description('AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET (Key Vault reference) in service principal mode; empty otherwise.')
param servicePrincipalSettings object

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
// Durable Functions on identity-based AzureWebJobsStorage: blob (leases, blob trigger receipts,
// deployment package), queue (control and work-item queues, blob trigger queue) and table
// (history and instances).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
// Service principal mode: the job reads blob-triggered inputs from the host storage account
// with the invoker's identity.
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
// Application Insights with local authentication disabled: telemetry is sent with Entra tokens.
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
// Durable Task Scheduler roles: modules/durable-task-scheduler.bicep.

var usesScheduler = durableBackend == 'durableTaskScheduler'
var functionAppName = 'func-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var scoringContainerName = split(scoringBlobPath, '/')[0]

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${resourceToken}'
  location: location
  tags: tags
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // identity-based connections only: no keys anywhere
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }

  resource blobServices 'blobServices' = {
    name: 'default'

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: { publicAccess: 'None' }
    }

    resource scoringContainer 'containers' = {
      name: scoringContainerName
      properties: { publicAccess: 'None' }
    }
  }
}

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true // Entra authentication for telemetry (APPLICATIONINSIGHTS_AUTHENTICATION_STRING)
  }
}

module scheduler 'modules/durable-task-scheduler.bicep' = if (usesScheduler) {
  name: 'durable-task-scheduler'
  params: {
    name: 'dts-${resourceToken}'
    location: location
    tags: tags
    skuName: schedulerSkuName
    capacity: schedulerCapacity
    taskHubName: taskHubName
    appPrincipalId: identity.properties.principalId
    userPrincipalId: principalId
  }
}

var hostSettings = {
  // Identity-based AzureWebJobsStorage: no connection string, no key.
  AzureWebJobsStorage__accountName: storage.name
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.properties.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  TASKHUB_NAME: taskHubName
  // DefaultAzureCredential's managed identity (overridden by the service principal's id in SP mode).
  AZURE_CLIENT_ID: identity.properties.clientId
}

var schedulerSettings = usesScheduler ? {
  DURABLE_TASK_SCHEDULER_CONNECTION_STRING: 'Endpoint=${scheduler.outputs.endpoint};Authentication=ManagedIdentity;ClientID=${identity.properties.clientId}'
} : {}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  params: {
    name: functionAppName
    location: location
    tags: union(tags, { 'azd-service-name': 'app' })
    identityId: identity.id
    deploymentContainerUrl: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    appSettings: union(settings, hostSettings, schedulerSettings, servicePrincipalSettings)
  }
  dependsOn: [
    // The host needs its storage roles before it starts, or its first start fails.
    blobOwnerAssignment
    queueContributorAssignment
    tableContributorAssignment
    metricsPublisherAssignment
    storage::blobServices::deploymentContainer
  ]
}

resource blobOwnerAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueContributorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableContributorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource metricsPublisherAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource spBlobReaderAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (usesServicePrincipal) {
  name: guid(storage.id, servicePrincipalObjectId, storageBlobDataReader)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: servicePrincipalObjectId
    principalType: 'ServicePrincipal'
  }
}

// Event Grid system topic for the host storage account. The subscription to the blob extension's
// webhook is created by infra/hooks/postdeploy.sh: it needs the blobs_extension system key, which
// exists only after the code is deployed.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: 'evgt-${resourceToken}'
  location: location
  tags: tags
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output identityPrincipalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
output functionAppName string = functionApp.outputs.name
output functionAppUri string = functionApp.outputs.uri
output storageAccountName string = storage.name
output systemTopicName string = systemTopic.name
output scoringContainerName string = scoringContainerName
output schedulerEndpoint string = usesScheduler ? scheduler.outputs.endpoint : ''
