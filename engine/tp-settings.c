/* tp-settings.c — a run's effective settings, stored and compared
 * (tp-settings.h). */
#include "config.h"

#include <string.h>

#include "tp-settings.h"

static void
set(GKeyFile *out, const char *group, const char *key, const char *value)
{
    g_autofree char *name = g_strconcat(group, ".", key, NULL);

    g_key_file_set_string(out, TP_SETTINGS_GROUP, name, value);
}

void
tp_settings_add_params(GKeyFile *out, const char *group, const TpParamSpec *specs,
                       const TpParams *params)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    for (guint i = 0; specs != NULL && specs[i].key != NULL; i++) {
        const TpParamSpec *spec = &specs[i];
        switch (spec->type) {
        case TP_PARAM_INT:
            g_snprintf(buf, sizeof(buf), "%" G_GINT64_FORMAT,
                       tp_params_get_int(params, spec->key));
            set(out, group, spec->key, buf);
            break;
        case TP_PARAM_DOUBLE:
            set(out, group, spec->key,
                g_ascii_formatd(buf, sizeof(buf), "%.15g", tp_params_get_double(params, spec->key)));
            break;
        case TP_PARAM_BOOLEAN:
            set(out, group, spec->key,
                tp_params_get_boolean(params, spec->key) ? "true" : "false");
            break;
        default:
            set(out, group, spec->key, tp_params_get_string(params, spec->key));
            break;
        }
    }
}

void
tp_settings_add_group(GKeyFile *out, GKeyFile *in, const char *group)
{
    g_auto(GStrv) keys = g_key_file_get_keys(in, group, NULL, NULL);

    for (int i = 0; keys != NULL && keys[i] != NULL; i++) {
        g_autofree char *value = g_key_file_get_string(in, group, keys[i], NULL);
        set(out, group, keys[i], value ? g_strstrip(value) : "");
    }
}

void
tp_settings_copy(GKeyFile *out, GKeyFile *in)
{
    g_auto(GStrv) keys = g_key_file_get_keys(in, TP_SETTINGS_GROUP, NULL, NULL);

    for (int i = 0; keys != NULL && keys[i] != NULL; i++) {
        g_autofree char *value = g_key_file_get_value(in, TP_SETTINGS_GROUP, keys[i], NULL);
        g_key_file_set_value(out, TP_SETTINGS_GROUP, keys[i], value);
    }
}

/* "GROUP.KEY" as "[GROUP] KEY" (the group is everything before the last
 * dot: keys have none, groups may). */
static char *
spelled(const char *name)
{
    const char *dot = strrchr(name, '.');

    return dot ? g_strdup_printf("[%.*s] %s", (int)(dot - name), name, dot + 1) : g_strdup(name);
}

static void
compare(GString *out, GKeyFile *a, GKeyFile *b, gboolean a_is_saved)
{
    g_auto(GStrv) keys = g_key_file_get_keys(a, TP_SETTINGS_GROUP, NULL, NULL);

    for (int i = 0; keys != NULL && keys[i] != NULL; i++) {
        g_autofree char *va = g_key_file_get_string(a, TP_SETTINGS_GROUP, keys[i], NULL);
        g_autofree char *vb = g_key_file_get_string(b, TP_SETTINGS_GROUP, keys[i], NULL);
        g_autofree char *name = NULL;
        if (vb != NULL && (!a_is_saved || g_str_equal(va, vb)))
            continue; /* both: compared once, from the saved side */
        name = spelled(keys[i]);
        if (vb == NULL)
            g_string_append_printf(out, "%s%s: %s %s, unset %s", out->len ? "; " : "", name,
                                   va, a_is_saved ? "in the checkpoint" : "now",
                                   a_is_saved ? "now" : "in the checkpoint");
        else
            g_string_append_printf(out, "%s%s: %s in the checkpoint, %s now",
                                   out->len ? "; " : "", name, va, vb);
    }
}

char *
tp_settings_diff(GKeyFile *saved, GKeyFile *now)
{
    g_autoptr(GString) out = g_string_new(NULL);

    compare(out, saved, now, TRUE);
    compare(out, now, saved, FALSE);
    return out->len ? g_strdup(out->str) : NULL;
}
