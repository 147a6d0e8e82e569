/* Fuzz target: the agent.json loader (security.md 8.7 item 8). */
#include "util/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/ukey-fuzz-config-XXXXXX", err[512];
    struct agent_config cfg;
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    config_defaults(&cfg);
    config_load(&cfg, path, err, sizeof err);
    config_free(&cfg);
    unlink(path);
    return 0;
}
