# payconnect uninstall (run as Administrator):
#   powershell -ExecutionPolicy Bypass -File "$env:ProgramFiles\payconnect\uninstall.ps1" [-RemoveData]
#
# A thin wrapper around `payconnect.cmd service uninstall` (src/cli/service.ts): the service "payconnect"
# is stopped and deleted, the firewall rule "payconnect-lan-udp" (by that exact name) and
# %ProgramFiles%\payconnect removed. %ProgramData%\payconnect (registration, order journal, logs) is kept
# unless -RemoveData.
param([switch]$RemoveData)
$ErrorActionPreference = 'Stop'
$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
  throw 'uninstall.ps1 must run as Administrator: right-click PowerShell, "Run as administrator"'
}
$Here = Split-Path -Parent $MyInvocation.MyCommand.Path
$CliArgs = @('service', 'uninstall')
if ($RemoveData) { $CliArgs += '--remove-data' }
# It deletes the folder this script is in: run from elsewhere.
Set-Location -LiteralPath $env:TEMP
& (Join-Path $Here 'payconnect.cmd') @CliArgs
exit $LASTEXITCODE
