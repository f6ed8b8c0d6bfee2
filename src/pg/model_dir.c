/* Where the model is: gemmaclf.model_path names a directory, or, when empty, the model installed
 * with the extension. Checked here so a wrong setting gets a reason, not a core parse error.
 * A path longer than MAXPGPATH - 1 bytes is refused, never shortened. */
#include "gemmaclf_pg.h"

#include <sys/stat.h>

#include "miscadmin.h"

#include "classifier/model_locate.h"

/* The bundled model: $sharedir/extension/gemmaclf_models/<default>. */
static bool bundled_model(char *out, size_t cap)
{
    char share[MAXPGPATH], root[MAXPGPATH + 32];

    get_share_path(my_exec_path, share);
    snprintf(root, sizeof root, "%s/extension/gemmaclf_models", share);
    return gc_find_model_in(root, out, cap) != 0;
}

bool gcpg_model_dir(const char *setting, char *out, size_t cap, const char **why)
{
    struct stat st;
    char cfg[MAXPGPATH + 16];

    if (!setting || !*setting) {
        if (bundled_model(out, cap))
            return true;
        *why = "no model is installed with the extension and gemmaclf.model_path is empty";
        return false;
    }
    /* Never cut: a cut path names another directory (a parent, or another model). */
    if (strlen(setting) >= cap) {
        *why = psprintf("the path is %zu bytes long, more than the %zu bytes a path may have",
                        strlen(setting), cap - 1);
        return false;
    }
    strlcpy(out, setting, cap);
    if (!is_absolute_path(out)) {
        *why = "gemmaclf.model_path must be an absolute path";
        return false;
    }
    if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode)) {
        *why = "the model directory does not exist";
        return false;
    }
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    if (stat(cfg, &st) != 0) {
        *why = "the model directory holds no config.json";
        return false;
    }
    return true;
}
