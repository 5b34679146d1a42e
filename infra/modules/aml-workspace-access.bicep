// Role on the existing Azure ML workspace (deployed into the workspace's resource group, which
// may differ from the app's). AzureML Data Scientist is the built-in role that covers what the
// app does there: read batch endpoints and deployments, submit jobs to them
// (batchEndpoints/jobs/write, batchEndpoints/deployments/jobs/write, experiments/runs/submit),
// read and write datastores (datastores/*, incl. listsecrets), read jobs and cancel them
// (jobs/cancel/action). It does not allow creating compute or changing the workspace.
param workspaceName string
@description('Object id of the identity that calls Azure ML (the app identity or the service principal).')
param principalId string

var azureMLDataScientist = 'f6c7c914-8db3-469d-8ca1-694a8f32e121'

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource dataScientistAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, azureMLDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', azureMLDataScientist)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
