/*
 * What the operating system says about, and does for, this process:
 * process.c on Linux and other POSIX systems, process_win.c on Windows.
 */
#ifndef UKEY_UTIL_PROCESS_H
#define UKEY_UTIL_PROCESS_H

#include <stddef.h>

/*
 * Call first in main(). On Windows *argv becomes the command line in UTF-8
 * (from the wide command line, not the ANSI code page; the strings live as
 * long as the process), and the console takes UTF-8 and colour escapes;
 * a process without a standard error (ukey-agentw.exe) logs to agent.log
 * in the user's state directory. Nothing to do on Linux.
 */
void process_init(int *argc, char ***argv);

/* 1 when the process may change the machine's settings: root (euid 0) on
 * Linux, an elevated administrator on Windows. */
int process_is_admin(void);

/* 1 when the user reads Chinese: LC_ALL or LANG says zh on Linux; the
 * user's display language on Windows. */
int process_lang_zh(void);

/* No crash dumps of this process, which may hold PINs and keys: no core
 * dumps and no ptrace attach on Linux; no Windows Error Reporting dumps and
 * no fault dialog on Windows. */
void process_no_dumps(void);

/* The usable size of heap block `p` (from malloc). */
size_t process_block_size(void *p);

#endif
