/* tp-normalization.c — the input normalization a user states
 * (tp-normalization.h). */
#include "config.h"

#include <math.h>

#include "tp-normalization.h"

float *
tp_normalization_parse(const char *text, int channels, gboolean positive, GError **error)
{
    g_auto(GStrv) words = NULL;
    g_autofree float *out = NULL;
    int n;

    g_return_val_if_fail(text != NULL && channels > 0, NULL);

    words = g_strsplit(text, ",", -1);
    n = (int)g_strv_length(words);
    if (n != 1 && n != channels) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "'%s' has %d values; the model takes %d input channels (give %d, or one for "
                    "all)",
                    text, n, channels, channels);
        return NULL;
    }
    out = g_new(float, channels);
    for (int c = 0; c < n; c++) {
        const char *word = g_strstrip(words[c]);
        char *end;
        double v = g_ascii_strtod(word, &end);

        if (*word == '\0' || *end != '\0' || !isfinite(v) || (positive && !(v > 0))) {
            g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                        "'%s' is not a %s number", word, positive ? "positive" : "finite");
            return NULL;
        }
        out[c] = (float)v;
    }
    for (int c = n; c < channels; c++)
        out[c] = out[0];
    return g_steal_pointer(&out);
}

/* The value of group's key as parse() reads it; NULL with an error naming it. */
static float *
read_key(GKeyFile *keyfile, const char *group, const char *key, int channels, const char *source,
         GError **error)
{
    g_autofree char *text = g_key_file_get_string(keyfile, group, key, error);
    float *values = text ? tp_normalization_parse(text, channels, g_str_equal(key, "std"), error)
                         : NULL;

    if (values == NULL)
        g_prefix_error(error, "%s: [%s] %s: ", source, group, key);
    return values;
}

gboolean
tp_normalization_apply_keys(TpModel *model, GKeyFile *keyfile, const char *group,
                            const char *source, GError **error)
{
    const int channels = tp_model_get_shape(model, 0)->dim[0];
    gboolean has_mean = g_key_file_has_key(keyfile, group, "mean", NULL);
    gboolean has_std = g_key_file_has_key(keyfile, group, "std", NULL);
    g_autofree float *mean = NULL;
    g_autofree float *std = NULL;

    if (!has_mean && !has_std)
        return TRUE;
    if (has_mean != has_std) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                    "%s: [%s] %s: missing (mean and std go together: --mean and --std)", source,
                    group, has_mean ? "std" : "mean");
        return FALSE;
    }
    if (!(mean = read_key(keyfile, group, "mean", channels, source, error)) ||
        !(std = read_key(keyfile, group, "std", channels, source, error)))
        return FALSE;
    tp_model_set_normalization(model, mean, std);
    return TRUE;
}

char *
tp_normalization_missing_message(const TpModel *model, const char *path)
{
    const float *mean, *std;

    if (tp_model_get_normalization(model, &mean, &std))
        return NULL;
    return g_strdup_printf("%s records no input normalization, so its inputs are pixels in 0..1; "
                           "if it was trained on normalized inputs, give --mean and --std (or "
                           "[model] mean and std), e.g. --mean 0.2860 --std 0.3530",
                           path);
}
