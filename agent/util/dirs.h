/*
 * Where the agent's files are by default, on each platform (dirs.c for
 * Linux and other POSIX systems, dirs_win.c for Windows). Paths are UTF-8.
 *
 *                 Linux                                 Windows
 *   user config   $XDG_CONFIG_HOME/ukey-agent,          %APPDATA%\ukey-agent
 *                 else ~/.config/ukey-agent
 *   user state    $XDG_DATA_HOME/ukey-agent,            %LOCALAPPDATA%\ukey-agent
 *                 else ~/.local/share/ukey-agent
 *   system config /etc/ukey-agent                       %ProgramData%\ukey-agent
 *   shipped certs UKEY_CERTS_DIR (build time)           <directory of ukey-agent.exe>\certs
 *   profiles      UKEY_PROFILES_DIR (build time)        <directory of ukey-agent.exe>\profiles
 *
 * On Windows the environment variable is used when it is set (as XDG_* on
 * Linux), else the known folder (SHGetKnownFolderPath).
 */
#ifndef UKEY_UTIL_DIRS_H
#define UKEY_UTIL_DIRS_H

enum dirs_kind {
    DIRS_USER_CONFIG,
    DIRS_USER_STATE,
    DIRS_SYSTEM_CONFIG,
};

/* The directory of `kind` (a new string the caller frees), or NULL when it
 * cannot be known (no HOME) or out of memory. */
char *dirs_get(enum dirs_kind kind);

/* The shipped trust anchors and deployment profiles: strings that live as
 * long as the process. */
const char *dirs_certs(void);
const char *dirs_profiles(void);

/* The user's home directory ($HOME; %USERPROFILE%), or NULL: only to mask
 * it in reports. Lives until the environment changes. */
const char *dirs_home(void);

#endif
