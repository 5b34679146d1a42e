// Durable Task Scheduler (Microsoft.DurableTask) with one task hub, and the Durable Task Data
// Contributor role for the app identity (and, when given, the deploying user, for the dashboard).
// Shapes follow Azure-Samples/Durable-Task-Scheduler (samples/durable-functions/python).
param name string
param location string
param tags object
@allowed([ 'Consumption', 'Dedicated' ])
param skuName string
param capacity int
@description('Task hub name; the app reads it from TASKHUB_NAME (host.json hubName).')
param taskHubName string
param appPrincipalId string
@description('Object id of the deploying user; empty: no dashboard role.')
param userPrincipalId string

// Durable Task Data Contributor: start, query and run orchestrations and activities in the hub.
var durableTaskDataContributor = '0ad04412-c4d5-4796-b79c-f76d14c8d402'

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    ipAllowlist: [ '0.0.0.0/0' ] // access is by Entra identity; narrow this for private setups
    sku: skuName == 'Dedicated' ? {
      name: skuName
      capacity: capacity
    } : {
      name: skuName
    }
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

resource appAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scheduler.id, appPrincipalId, durableTaskDataContributor)
  scope: scheduler
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource userAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(scheduler.id, userPrincipalId, durableTaskDataContributor)
  scope: scheduler
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
    principalId: userPrincipalId
    principalType: 'User'
  }
}

output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
