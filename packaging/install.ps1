# payconnect install / upgrade for a register PC (run as Administrator, from the unzipped folder):
#   powershell -ExecutionPolicy Bypass -File .\install.ps1 -Manifest printer-tap-gb18030-80mm `
#     -Server https://pay.example.com -LanInterface 192.168.1.20 -RegistrationCode ABCD-1234
#
# - Program files go to $env:ProgramFiles\payconnect (replaced on upgrade).
# - Data (registration, order journal) and logs stay in $env:ProgramData\payconnect: never deleted here, so
#   an upgrade keeps the plugin registered and its journal.
# - The plugin runs as the Windows service "payconnect" (automatic start, LocalSystem): payconnect-service.exe
#   (native/service) answers the service control manager and runs node.exe with the app, restarting it when
#   it exits (1 s, doubling to 60 s) and stopping it with Ctrl+C; the service itself is restarted by the
#   service control manager if the wrapper fails. Its settings: payconnect-service.conf, written here.
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
$ServiceName = 'payconnect'
$RuleName = 'payconnect-lan-udp'
$InstallDir = Join-Path $env:ProgramFiles 'payconnect'
$DataRoot = Join-Path $env:ProgramData 'payconnect'
$DataDir = Join-Path $DataRoot 'data'
$LogDir = Join-Path $DataRoot 'logs'
$Here = Split-Path -Parent $MyInvocation.MyCommand.Path

$ManifestPath = if (Test-Path -LiteralPath $Manifest) { (Resolve-Path -LiteralPath $Manifest).Path } `
  else { Join-Path $InstallDir "app\manifests\$Manifest.yaml" }

# Upgrade: stop the running plugin before its files are replaced. Stop-Service waits while the wrapper stops
# node.exe (Ctrl+C, the plugin closes; terminated after 10 s).
$Service = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
if ($Service) { Stop-Service -Name $ServiceName -Force }
# An install from before the service ran the plugin as a scheduled task of the same name: remove it, and
# end the node.exe it started (the journal is written before every state change, so this loses nothing).
if (Get-ScheduledTask -TaskName $ServiceName -ErrorAction SilentlyContinue) {
  Stop-ScheduledTask -TaskName $ServiceName
  Unregister-ScheduledTask -TaskName $ServiceName -Confirm:$false
}
Get-Process -Name node -ErrorAction SilentlyContinue |
  Where-Object { $_.Path -eq (Join-Path $InstallDir 'node.exe') } | Stop-Process -Force
if (Test-Path -LiteralPath $InstallDir) { Remove-Item -LiteralPath $InstallDir -Recurse -Force }
New-Item -ItemType Directory -Force -Path $InstallDir, $DataDir, $LogDir | Out-Null
Copy-Item -Path (Join-Path $Here '*') -Destination $InstallDir -Recurse -Force
if (-not (Test-Path -LiteralPath $ManifestPath)) { throw "no manifest $ManifestPath (see app\manifests)" }
& (Join-Path $InstallDir 'payconnect.cmd') manifest validate $ManifestPath
if ($LASTEXITCODE -ne 0) { throw "manifest $ManifestPath is not valid" }

# What the service runs: payconnect-service.conf next to payconnect-service.exe, the log file and then the
# plugin's arguments one a line (no command-line quoting), UTF-8.
$PluginArgs = @('--manifest', $ManifestPath, '--server', $Server, '--port', $Port,
  '--data', $DataDir, '--lan-interface', $LanInterface, '--lan-port', $LanPort,
  '--plugin-port', $PluginPort)
if ($RegistrationCode) { $PluginArgs += @('--registration-code', $RegistrationCode) }
if ($LanBroadcast) { $PluginArgs += @('--lan-broadcast', $LanBroadcast) }
$Conf = @('# written by install.ps1; read by payconnect-service.exe when the service starts',
  "log=$LogDir\plugin.log") + ($PluginArgs | ForEach-Object { "arg=$_" })
Set-Content -LiteralPath (Join-Path $InstallDir 'payconnect-service.conf') -Encoding UTF8 -Value $Conf

$BinPath = "`"$(Join-Path $InstallDir 'payconnect-service.exe')`""
if (-not $Service) {
  New-Service -Name $ServiceName -BinaryPathName $BinPath -StartupType Automatic `
    -DisplayName 'payconnect' -Description 'payconnect plugin for this register' | Out-Null
}
# If the wrapper itself fails: restart the service after 5 s, 10 s, then every 60 s; the count resets daily.
& sc.exe failure $ServiceName reset= 86400 actions= restart/5000/restart/10000/restart/60000 | Out-Null
if ($LASTEXITCODE -ne 0) { throw "sc.exe failure $ServiceName failed ($LASTEXITCODE)" }

Remove-NetFirewallRule -Name $RuleName -ErrorAction SilentlyContinue
New-NetFirewallRule -Name $RuleName -DisplayName 'payconnect LAN (mobile POS units)' -Direction Inbound `
  -Protocol UDP -LocalPort $PluginPort -Action Allow -Profile Any `
  -Program (Join-Path $InstallDir 'node.exe') | Out-Null

Start-Service -Name $ServiceName
Write-Host "payconnect installed in $InstallDir; data in $DataDir; log $LogDir\plugin.log"
Write-Host "status page: http://127.0.0.1:$Port/"
