/* Fuzz target: the agent.json loader (security.md 8.7 item 8). */
#include "fuzz_data.h"
#include "util/config.h"

static void load(const char *path)
{
    char err[512];
    struct agent_config cfg;
    config_defaults(&cfg);
    config_load(&cfg, path, err, sizeof err);
    config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_as_file(data, size, load);
    return 0;
}
