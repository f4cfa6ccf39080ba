# payconnect uninstall (run as Administrator):
#   powershell -ExecutionPolicy Bypass -File "$env:ProgramFiles\payconnect\uninstall.ps1" [-RemoveData]
#
# Removes what install.ps1 made: the service "payconnect" (stopped, then deleted), the firewall rule "payconnect-lan-udp"
# (by its exact name: no other rule is touched) and $env:ProgramFiles\payconnect. The data folder
# $env:ProgramData\payconnect (registration, order journal, logs) is kept unless -RemoveData is given.
param([switch]$RemoveData)
$ErrorActionPreference = 'Stop'
$ServiceName = 'payconnect'
$RuleName = 'payconnect-lan-udp'
$InstallDir = Join-Path $env:ProgramFiles 'payconnect'
$DataRoot = Join-Path $env:ProgramData 'payconnect'

# Stop-Service waits while the wrapper stops node.exe (Ctrl+C; terminated after 10 s); then it is deleted.
if (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue) {
  Stop-Service -Name $ServiceName -Force
  & sc.exe delete $ServiceName | Out-Null
}
# An install from before the service ran the plugin as a scheduled task of the same name.
if (Get-ScheduledTask -TaskName $ServiceName -ErrorAction SilentlyContinue) {
  Stop-ScheduledTask -TaskName $ServiceName
  Unregister-ScheduledTask -TaskName $ServiceName -Confirm:$false
}
Get-Process -Name node -ErrorAction SilentlyContinue |
  Where-Object { $_.Path -eq (Join-Path $InstallDir 'node.exe') } | Stop-Process -Force
Remove-NetFirewallRule -Name $RuleName -ErrorAction SilentlyContinue
# This script may run from inside the folder it deletes: leave it first.
Set-Location -LiteralPath $env:TEMP
if (Test-Path -LiteralPath $InstallDir) { Remove-Item -LiteralPath $InstallDir -Recurse -Force }
if ($RemoveData) {
  if (Test-Path -LiteralPath $DataRoot) { Remove-Item -LiteralPath $DataRoot -Recurse -Force }
  Write-Host "payconnect removed, with its data"
} else {
  Write-Host "payconnect removed; its data is kept in $DataRoot (-RemoveData deletes it)"
}
