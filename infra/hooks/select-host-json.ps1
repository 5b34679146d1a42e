# azd prepackage hook (Windows): same as select-host-json.sh.
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '../..')
$backend = if ($env:DURABLE_BACKEND) { $env:DURABLE_BACKEND } else { 'azureStorage' }
$variant = "infra/host/host.$backend.json"
if (-not (Test-Path $variant)) { throw "DURABLE_BACKEND=${backend}: no $variant (expected azureStorage or durableTaskScheduler)" }
if ((Get-FileHash $variant).Hash -eq (Get-FileHash host.json).Hash) {
  Write-Host "host.json already matches DURABLE_BACKEND=$backend"
} else {
  Copy-Item $variant host.json -Force
  Write-Host "host.json replaced by $variant for DURABLE_BACKEND=$backend"
}
