# payconnect uninstall (run as Administrator):
#   powershell -ExecutionPolicy Bypass -File "$env:ProgramFiles\payconnect\uninstall.ps1" [-RemoveData]
#
# Removes what install.ps1 made: the scheduled task "payconnect", the firewall rule "payconnect-lan-udp"
# (by its exact name: no other rule is touched) and $env:ProgramFiles\payconnect. The data folder
# $env:ProgramData\payconnect (registration, order journal, logs) is kept unless -RemoveData is given.
param([switch]$RemoveData)
$ErrorActionPreference = 'Stop'
$TaskName = 'payconnect'
$RuleName = 'payconnect-lan-udp'
$InstallDir = Join-Path $env:ProgramFiles 'payconnect'
$DataRoot = Join-Path $env:ProgramData 'payconnect'

if (Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue) {
  Stop-ScheduledTask -TaskName $TaskName
  Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false
}
# Stopping the task ends its cmd.exe; the node.exe it started is ended here (the journal is written
# before every state change, so this loses nothing).
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
