#include "classifier/model_locate.h"

#include "common/file_read.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int has_config(const char *dir)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s/config.json", dir);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int from_default_file(const char *root, char *out, size_t cap)
{
    char p[4096], *name;
    size_t len;
    snprintf(p, sizeof p, "%s/DEFAULT", root);
    if (gc_read_file(p, 256, &name, &len, NULL) != GC_OK) /* a regular file of one line */
        return 0;
    name[strcspn(name, "\r\n")] = '\0';
    int ok = name[0] && !strchr(name, '/') &&
             snprintf(out, cap, "%s/%s", root, name) < (int)cap && has_config(out);
    free(name);
    return ok;
}

int gc_find_model_in(const char *root, char *out, size_t cap)
{
    if (from_default_file(root, out, cap))
        return 1;
    struct dirent **list = NULL;
    int n = scandir(root, &list, NULL, alphasort), found = 0;
    for (int i = 0; i < n; i++) {
        if (!found && list[i]->d_name[0] != '.' &&
            snprintf(out, cap, "%s/%s", root, list[i]->d_name) < (int)cap && has_config(out))
            found = 1;
        free(list[i]);
    }
    free(list);
    return found;
}
