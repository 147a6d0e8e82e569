/* Fuzz target: the deployment profile parser (profile/profile.h, issue 18). */
#include "profile/profile.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/ukey-fuzz-profile-XXXXXX", err[1024];
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    profile_check_file(path, err, sizeof err);
    unlink(path);
    return 0;
}
