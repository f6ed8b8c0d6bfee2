/* The core speaks UTF-8; the database may not. Texts are converted on the way in, labels on the
 * way out. */
#include "gemmaclf_pg.h"

#include "mb/pg_wchar.h"
#include "utils/builtins.h"

const char *gcpg_text_utf8(text *t, size_t *len)
{
    const char *s = VARDATA_ANY(t);
    int n = VARSIZE_ANY_EXHDR(t);
    int enc = GetDatabaseEncoding();

    *len = (size_t)n;
    /* UTF-8 needs nothing; SQL_ASCII bytes are passed on and the core replaces invalid
     * UTF-8 with U+FFFD. */
    if (enc == PG_UTF8 || enc == PG_SQL_ASCII)
        return s;
    s = (const char *)pg_do_encoding_conversion((unsigned char *)s, n, enc, PG_UTF8);
    if (s != VARDATA_ANY(t))
        *len = strlen(s);
    return s;
}

text *gcpg_label_text(const char *label)
{
    char *s = pg_any_to_server(label, (int)strlen(label), PG_UTF8);

    return cstring_to_text(s);
}
