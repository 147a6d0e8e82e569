/* `ukey-agent serve`: the daemon. */
#ifndef UKEY_SERVER_SERVE_H
#define UKEY_SERVER_SERVE_H

#include "util/config.h"

/* Runs until asked to stop (server/stop.h). Returns the process exit code. */
int serve_main(struct agent_config *cfg);

#endif
