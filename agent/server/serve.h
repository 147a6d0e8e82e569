/* `ukey-agent serve`: the daemon. */
#ifndef UKEY_SERVER_SERVE_H
#define UKEY_SERVER_SERVE_H

#include "util/config.h"

/* Runs until SIGINT/SIGTERM. Returns the process exit code. */
int serve_main(struct agent_config *cfg);

#endif
