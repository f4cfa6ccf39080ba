# payconnect install / upgrade for a register PC (run as Administrator, from the unzipped folder):
#   powershell -ExecutionPolicy Bypass -File .\install.ps1 -Manifest printer-tap-gb18030-80mm `
#     -Server https://pay.example.com -LanInterface 192.168.1.20 -RegistrationCode ABCD-1234
#
# - Program files go to $env:ProgramFiles\payconnect (replaced on upgrade).
# - Data (registration, order journal) and logs stay in $env:ProgramData\payconnect: never deleted here, so
#   an upgrade keeps the plugin registered and its journal.
# - The plugin runs as the scheduled task "payconnect" (at startup, as SYSTEM, restarted when it exits):
#   Node is not a Windows service binary; docs/decisions.md says why a task and not a service wrapper.
# - One inbound firewall rule, "payconnect-lan-udp", for the plugin's LAN port (UDP 47811), which the
#   mobile POS units answer to. The local API (TCP 8701) listens on 127.0.0.1 only: no rule.
param(
  [Parameter(Mandatory = $true)][string]$Manifest,        # a name from app\manifests (without .yaml) or a path
  [Parameter(Mandatory = $true)][string]$Server,          # the payment server URL
  [Parameter(Mandatory = $true)][string]$LanInterface,    # this PC's address on the shop network
  [string]$RegistrationCode = '',                         # needed on the first install only
  [string]$LanBroadcast = '',                             # default: derived by payconnect
  [int]$Port = 8701,                                      # local API and status page (127.0.0.1)
  [int]$LanPort = 47810,                                  # the units' UDP port
  [int]$PluginPort = 47811                                # the plugin's UDP port (firewall rule)
)
$ErrorActionPreference = 'Stop'
$TaskName = 'payconnect'
$RuleName = 'payconnect-lan-udp'
$InstallDir = Join-Path $env:ProgramFiles 'payconnect'
$DataRoot = Join-Path $env:ProgramData 'payconnect'
$DataDir = Join-Path $DataRoot 'data'
$LogDir = Join-Path $DataRoot 'logs'
$Here = Split-Path -Parent $MyInvocation.MyCommand.Path

$ManifestPath = if (Test-Path -LiteralPath $Manifest) { (Resolve-Path -LiteralPath $Manifest).Path } `
  else { Join-Path $InstallDir "app\manifests\$Manifest.yaml" }

# Upgrade: stop the running plugin before its files are replaced.
if (Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue) {
  Stop-ScheduledTask -TaskName $TaskName
  Unregister-ScheduledTask -TaskName $TaskName -Confirm:$false
}
# Stopping the task ends its cmd.exe; the node.exe it started is ended here (the journal is written
# before every state change, so this loses nothing).
Get-Process -Name node -ErrorAction SilentlyContinue |
  Where-Object { $_.Path -eq (Join-Path $InstallDir 'node.exe') } | Stop-Process -Force
if (Test-Path -LiteralPath $InstallDir) { Remove-Item -LiteralPath $InstallDir -Recurse -Force }
New-Item -ItemType Directory -Force -Path $InstallDir, $DataDir, $LogDir | Out-Null
Copy-Item -Path (Join-Path $Here '*') -Destination $InstallDir -Recurse -Force
if (-not (Test-Path -LiteralPath $ManifestPath)) { throw "no manifest $ManifestPath (see app\manifests)" }
& (Join-Path $InstallDir 'payconnect.cmd') manifest validate $ManifestPath
if ($LASTEXITCODE -ne 0) { throw "manifest $ManifestPath is not valid" }

# What the task runs: the plugin with this install's options, its output appended to the log.
$PluginArgs = @('plugin', '--manifest', "`"$ManifestPath`"", '--server', $Server, '--port', $Port,
  '--data', "`"$DataDir`"", '--lan-interface', $LanInterface, '--lan-port', $LanPort,
  '--plugin-port', $PluginPort)
if ($RegistrationCode) { $PluginArgs += @('--registration-code', $RegistrationCode) }
if ($LanBroadcast) { $PluginArgs += @('--lan-broadcast', $LanBroadcast) }
$RunCmd = Join-Path $DataRoot 'run-plugin.cmd'
Set-Content -LiteralPath $RunCmd -Encoding ASCII -Value @(
  '@echo off',
  "call `"$InstallDir\payconnect.cmd`" $($PluginArgs -join ' ') >> `"$LogDir\plugin.log`" 2>&1"
)

$Action = New-ScheduledTaskAction -Execute 'cmd.exe' -Argument "/d /c `"$RunCmd`""
$Trigger = New-ScheduledTaskTrigger -AtStartup
$Principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
$Settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::Zero) -RestartCount 999 `
  -RestartInterval (New-TimeSpan -Minutes 1) -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
  -StartWhenAvailable
Register-ScheduledTask -TaskName $TaskName -Action $Action -Trigger $Trigger -Principal $Principal `
  -Settings $Settings -Description 'payconnect plugin for this register' | Out-Null

Remove-NetFirewallRule -Name $RuleName -ErrorAction SilentlyContinue
New-NetFirewallRule -Name $RuleName -DisplayName 'payconnect LAN (mobile POS units)' -Direction Inbound `
  -Protocol UDP -LocalPort $PluginPort -Action Allow -Profile Any `
  -Program (Join-Path $InstallDir 'node.exe') | Out-Null

Start-ScheduledTask -TaskName $TaskName
Write-Host "payconnect installed in $InstallDir; data in $DataDir; log $LogDir\plugin.log"
Write-Host "status page: http://127.0.0.1:$Port/"
