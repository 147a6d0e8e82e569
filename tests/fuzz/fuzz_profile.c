/* Fuzz target: the deployment profile parser (profile/profile.h, issue 18). */
#include "fuzz_data.h"
#include "profile/profile.h"

static void check(const char *path)
{
    char err[1024];
    profile_check_file(path, err, sizeof err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_as_file(data, size, check);
    return 0;
}
