/* Where `v4c run` finds the bundled model when neither -m nor $V4C_MODEL is
 * given: models/default next to the binary's parent directories (a build
 * directory inside the repository) or under the current directory. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static int has_model(const char *dir) {
    char path[PATH_MAX + 64];
    struct stat st;
    snprintf(path, sizeof path, "%s/config.json", dir);
    return stat(path, &st) == 0;
}

const char *cli_default_model(void) {
    static char found[PATH_MAX];
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 3; up++) { /* <bin dir>/.., ../.., ../../.. */
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            if (strlen(exe) + sizeof "/models/default" > sizeof found) break;
            memcpy(found, exe, strlen(exe));
            memcpy(found + strlen(exe), "/models/default", sizeof "/models/default");
            if (has_model(found)) return found;
        }
    }
    snprintf(found, sizeof found, "models/default");
    return has_model(found) ? found : NULL;
}
