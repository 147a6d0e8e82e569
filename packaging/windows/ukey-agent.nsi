; ukey-agent for Windows: a per-user installer (NSIS 3, 64-bit Unicode).
; Built by the Windows build's `installer` target:
;   makensis -DVERSION=0.1.0 -DEXE=…\ukey-agent.exe -DEXEW=…\ukey-agentw.exe -DVERIFY_EXE=…\ukey-verify.exe
;            -DSRCDIR=<source>
;            -DOUTFILE=…\ukey-agent-setup.exe ukey-agent.nsi
; It installs into %LOCALAPPDATA%\Programs\ukey-agent without elevation,
; starts the agent at every log-on (HKCU Run "…\ukey-agentw.exe" serve:
; the same program built for the Windows subsystem, so no console window
; opens; ukey-agent.exe is the command line's),
; puts the agent's CA into the user's trust stores (`ukey-agent trust
; install`: on a real Windows the system asks the user to confirm the CA)
; and starts the agent. The uninstaller stops the agent, takes the CA out
; (`trust uninstall`) and removes the files, the state (the local CA and
; its key), the Run value and its own entry. /S makes either silent.

Unicode true
Target amd64-unicode
ManifestSupportedOS {8e0f7a12-bfb3-4fe8-b9a5-48fd50a15a9a} ; Windows 10 and 11

!macro Need NAME
  !ifndef ${NAME}
    !error "define ${NAME} (see the top of this file)"
  !endif
!macroend
!insertmacro Need VERSION
!insertmacro Need EXE
!insertmacro Need EXEW
!insertmacro Need VERIFY_EXE
!insertmacro Need SRCDIR
!insertmacro Need OUTFILE

!define PRODUCT "ukey-agent"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\ukey-agent"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"

Name "${PRODUCT} ${VERSION}"
OutFile "${OUTFILE}"
RequestExecutionLevel user
InstallDir "$LOCALAPPDATA\Programs\ukey-agent"
SetCompressor /SOLID lzma
ShowInstDetails show
ShowUninstDetails show

VIProductVersion "${VERSION}.0"
VIAddVersionKey /LANG=0 "ProductName" "${PRODUCT}"
VIAddVersionKey /LANG=0 "FileDescription" "ukey-agent 证书助手安装程序 / ukey-agent setup"
VIAddVersionKey /LANG=0 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=0 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=0 "LegalCopyright" "ukey-agent"

!include "MUI2.nsh"
!include "LogicLib.nsh"

!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "SimpChinese"
!insertmacro MUI_LANGUAGE "English"

; Asks a running agent (of this user) to stop: the stop command sets the
; agent's named stop event; an agent that was not running is not an error.
!macro StopAgent
  ${If} ${FileExists} "$INSTDIR\ukey-agent.exe"
    DetailPrint "正在停止证书助手 / Stopping ukey-agent"
    nsExec::ExecToLog '"$INSTDIR\ukey-agent.exe" stop'
    Pop $0
  ${EndIf}
!macroend

; Starts "ukey-agentw.exe serve" as a detached process: no window and
; none of the installer's standard handles,
; so whoever waits for the installer's output is not kept waiting by the
; agent. CreateProcessW with DETACHED_PROCESS; STARTUPINFOW is 104 bytes,
; PROCESS_INFORMATION 24, on 64-bit Windows.
!macro StartAgent
  System::Call "*(&i104) p .r1"
  System::Call "*$1(i 104)"
  System::Call "*(&i24) p .r2"
  System::Call 'kernel32::CreateProcessW(p 0, w `"$INSTDIR\ukey-agentw.exe" serve`, p 0, p 0, i 0, i 0x8, p 0, w "$INSTDIR", p r1, p r2) i .r0'
  ${If} $0 != 0
    System::Call "*$2(p .r3, p .r4)"
    System::Call "kernel32::CloseHandle(p r3)"
    System::Call "kernel32::CloseHandle(p r4)"
  ${Else}
    DetailPrint "证书助手没有启动，下次登录时会自动启动。 / ukey-agent did not start; it starts at the next log-on."
  ${EndIf}
  System::Free $1
  System::Free $2
!macroend

; Deletes an agent program, waiting up to 5 s for a stopping agent to let
; go of it.
!macro DeleteAgentExe NAME
  StrCpy $1 0
  ${DoWhile} ${FileExists} "$INSTDIR\${NAME}"
    Delete "$INSTDIR\${NAME}"
    ${If} ${FileExists} "$INSTDIR\${NAME}"
      IntOp $1 $1 + 1
      ${IfThen} $1 >= 20 ${|} ${ExitDo} ${|}
      Sleep 250
    ${EndIf}
  ${Loop}
!macroend

Section "ukey-agent"
  SetOutPath "$INSTDIR"
  !insertmacro StopAgent ; an upgrade replaces a running agent
  !insertmacro DeleteAgentExe ukey-agentw.exe
  !insertmacro DeleteAgentExe ukey-agent.exe
  File "/oname=ukey-agent.exe" "${EXE}"
  File "/oname=ukey-agentw.exe" "${EXEW}"
  File "/oname=ukey-verify.exe" "${VERIFY_EXE}" ; checks a login token as a portal does (support, tests)
  SetOutPath "$INSTDIR\certs"
  File "${SRCDIR}\certs\README.md"
  SetOutPath "$INSTDIR"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  WriteRegStr HKCU "${RUN_KEY}" "ukey-agent" '"$INSTDIR\ukey-agentw.exe" serve'
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "ukey-agent"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "ukey-agent"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" '"$INSTDIR\ukey-agent.exe"'
  WriteRegStr HKCU "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1

  ; The CA into the user's ROOT store (Chrome, Edge; Firefox through its
  ; enterprise-roots policy). Windows asks the user to confirm it; a "No"
  ; leaves the agent installed, and the diagnostics page says what to do.
  DetailPrint "正在安装助手的根证书 / Installing the agent's CA"
  nsExec::ExecToLog '"$INSTDIR\ukey-agent.exe" trust install'
  Pop $0
  ${If} $0 != 0
    DetailPrint "根证书没有装好（$0），可稍后运行“ukey-agent trust install”。 / The CA was not fully installed ($0); run $\"ukey-agent trust install$\" later."
  ${EndIf}

  !insertmacro StartAgent
SectionEnd

Section "Uninstall"
  !insertmacro StopAgent
  DetailPrint "正在删除助手的根证书 / Removing the agent's CA"
  nsExec::ExecToLog '"$INSTDIR\ukey-agent.exe" trust uninstall'
  Pop $0

  DeleteRegValue HKCU "${RUN_KEY}" "ukey-agent"
  DeleteRegKey HKCU "${UNINST_KEY}"
  !insertmacro DeleteAgentExe ukey-agentw.exe
  !insertmacro DeleteAgentExe ukey-agent.exe
  Delete "$INSTDIR\ukey-verify.exe"
  Delete "$INSTDIR\certs\README.md"
  RMDir "$INSTDIR\certs"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  ; The agent's state: the local CA, the TLS key, trust.json, caches.
  ; agent.json (in %APPDATA%\ukey-agent) is the user's and stays.
  RMDir /r "$LOCALAPPDATA\ukey-agent"
SectionEnd
