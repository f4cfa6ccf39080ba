@echo off
rem payconnect on Windows: Node.js 22 for Windows (node.exe beside this file) runs the app in app\.
rem   payconnect.cmd plugin --help       payconnect.cmd manifest list
rem The journals use Node's built-in node:sqlite (no native SQLite addon is shipped).
setlocal
set "PAYCONNECT_SQLITE=node"
"%~dp0node.exe" "%~dp0app\bin\payconnect.js" %*
exit /b %ERRORLEVEL%
