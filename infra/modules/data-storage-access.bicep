// Role on a storage account behind the datastores the batch jobs read and write. Batch endpoint
// jobs read credential-less datastores and https inputs with the invoker's identity (and the
// compute cluster's), and write outputs the same way: read + write on blobs, nothing more.
param storageAccountName string
@description('Object id of the identity that calls Azure ML (the app identity or the service principal).')
param principalId string

var storageBlobDataContributor = 'ba92f115-3f6c-4b7a-8ff9-f2d0d7ab8a7a'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobContributorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, storageBlobDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
