# payconnect install / upgrade for a register PC (run as Administrator, from the unzipped folder):
#   powershell -ExecutionPolicy Bypass -File .\install.ps1 -Manifest printer-tap-gb18030-80mm `
#     -Server https://pay.example.com -LanInterface 192.168.1.20 -RegistrationCode ABCD-1234
#
# A thin wrapper: the install itself is `payconnect.cmd service install` (src/cli/service.ts), which runs
# in CI under Wine. It stops the running service, replaces %ProgramFiles%\payconnect, keeps
# %ProgramData%\payconnect (data, logs), validates the manifest, writes payconnect-service.conf, registers
# and starts the service "payconnect" and opens the firewall rule "payconnect-lan-udp" (UDP -PluginPort).
# The registration code is kept for the service alone and deleted once the plugin registered.
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
$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
  throw 'install.ps1 must run as Administrator: right-click PowerShell, "Run as administrator"'
}
$Here = Split-Path -Parent $MyInvocation.MyCommand.Path
$CliArgs = @('service', 'install', '--manifest', $Manifest, '--server', $Server, '--lan-interface', $LanInterface,
  '--port', $Port, '--lan-port', $LanPort, '--plugin-port', $PluginPort)
if ($RegistrationCode) { $CliArgs += @('--registration-code', $RegistrationCode) }
if ($LanBroadcast) { $CliArgs += @('--lan-broadcast', $LanBroadcast) }
& (Join-Path $Here 'payconnect.cmd') @CliArgs
exit $LASTEXITCODE
