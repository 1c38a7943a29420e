/* tp-params.c — checked plugin parameters: a TpParamSpec table turned into
 * typed values, read from a keyfile group or set from command-line strings.
 * Every message names where the value came from, the key and what is valid. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tp-params.h"

G_DEFINE_QUARK(tp_params_error, tp_params_error)

typedef union {
    gint64 i;
    double d;
    gboolean b;
    char *s;
} TpValue;

struct _TpParams {
    const TpParamSpec *specs;
    guint n;
    TpValue *values;
};

static const char *
type_name(TpParamType type)
{
    switch (type) {
    case TP_PARAM_INT:
        return "integer";
    case TP_PARAM_DOUBLE:
        return "number";
    case TP_PARAM_BOOLEAN:
        return "boolean";
    case TP_PARAM_STRING:
        return "string";
    case TP_PARAM_CHOICE:
        return "choice";
    }
    return NULL;
}

guint
tp_param_specs_count(const TpParamSpec *specs)
{
    guint n = 0;

    while (specs != NULL && specs[n].key != NULL)
        n++;
    return n;
}

static gboolean
key_is_valid(const char *key)
{
    if (*key == '\0')
        return FALSE;
    for (const char *p = key; *p; p++)
        if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '-')
            return FALSE;
    return TRUE;
}

static gboolean
choice_is_valid(const char *choices, const char *value)
{
    g_auto(GStrv) words = g_strsplit(choices, "|", -1);

    return g_strv_contains((const char *const *)words, value);
}

/* Parses `text` as a value of spec's type and range into *out (a new string
 * for STRING and CHOICE). The error says what is wrong without a location;
 * callers prefix it. */
static gboolean
parse_value(const TpParamSpec *spec, const char *text, TpValue *out, GError **error)
{
    char *end = NULL;

    switch (spec->type) {
    case TP_PARAM_INT: {
        errno = 0;
        gint64 v = g_ascii_strtoll(text, &end, 10);
        if (*text == '\0' || *end != '\0' || errno != 0) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_VALUE,
                        "'%s' is not an integer (valid: an integer from %.17g to %.17g)", text,
                        spec->min, spec->max);
            return FALSE;
        }
        if ((double)v < spec->min || (double)v > spec->max) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_VALUE,
                        "%" G_GINT64_FORMAT " is out of range (valid: %.17g to %.17g)", v,
                        spec->min, spec->max);
            return FALSE;
        }
        out->i = v;
        return TRUE;
    }
    case TP_PARAM_DOUBLE: {
        errno = 0;
        double v = g_ascii_strtod(text, &end);
        if (*text == '\0' || *end != '\0' || errno != 0 || !isfinite(v)) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_VALUE,
                        "'%s' is not a number (valid: %.17g to %.17g)", text, spec->min, spec->max);
            return FALSE;
        }
        if (v < spec->min || v > spec->max) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_VALUE,
                        "%g is out of range (valid: %.17g to %.17g)", v, spec->min, spec->max);
            return FALSE;
        }
        out->d = v;
        return TRUE;
    }
    case TP_PARAM_BOOLEAN:
        if (g_str_equal(text, "true")) {
            out->b = TRUE;
            return TRUE;
        }
        if (g_str_equal(text, "false")) {
            out->b = FALSE;
            return TRUE;
        }
        g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_VALUE,
                    "'%s' is not a boolean (valid: true or false)", text);
        return FALSE;
    case TP_PARAM_CHOICE:
        if (!choice_is_valid(spec->choices, text)) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_VALUE, "'%s' is not one of %s",
                        text, spec->choices);
            return FALSE;
        }
        out->s = g_strdup(text);
        return TRUE;
    case TP_PARAM_STRING:
        if (!g_utf8_validate(text, -1, NULL)) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_VALUE,
                        "the value is not valid UTF-8");
            return FALSE;
        }
        out->s = g_strdup(text);
        return TRUE;
    }
    g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_SPEC, "unknown type %d",
                (int)spec->type);
    return FALSE;
}

static gboolean
is_string_type(TpParamType type)
{
    return type == TP_PARAM_STRING || type == TP_PARAM_CHOICE;
}

gboolean
tp_param_specs_check(const TpParamSpec *specs, GError **error)
{
    guint n = tp_param_specs_count(specs);

    for (guint i = 0; i < n; i++) {
        const TpParamSpec *spec = &specs[i];
        g_autoptr(GError) local = NULL;
        TpValue value;

        if (!key_is_valid(spec->key)) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_SPEC,
                        "parameter '%s': a key is lower-case letters, digits and '-'", spec->key);
            return FALSE;
        }
        for (guint j = 0; j < i; j++) {
            if (g_str_equal(specs[j].key, spec->key)) {
                g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_SPEC,
                            "parameter '%s' is declared twice", spec->key);
                return FALSE;
            }
        }
        if (type_name(spec->type) == NULL) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_SPEC,
                        "parameter '%s' has unknown type %d", spec->key, (int)spec->type);
            return FALSE;
        }
        if (spec->type == TP_PARAM_CHOICE && (spec->choices == NULL || *spec->choices == '\0')) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_SPEC,
                        "parameter '%s' is a choice but lists no choices", spec->key);
            return FALSE;
        }
        if ((spec->type == TP_PARAM_INT || spec->type == TP_PARAM_DOUBLE) &&
            !(spec->min <= spec->max)) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_SPEC,
                        "parameter '%s' has an empty range", spec->key);
            return FALSE;
        }
        if (spec->default_value == NULL || spec->help == NULL) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_SPEC,
                        "parameter '%s' lacks a default value or help text", spec->key);
            return FALSE;
        }
        if (!parse_value(spec, spec->default_value, &value, &local)) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_SPEC,
                        "parameter '%s', default value: %s", spec->key, local->message);
            return FALSE;
        }
        if (is_string_type(spec->type))
            g_free(value.s);
    }
    return TRUE;
}

void
tp_param_specs_describe(const TpParamSpec *specs, const char *indent, GString *out)
{
    guint n = tp_param_specs_count(specs);

    for (guint i = 0; i < n; i++) {
        const TpParamSpec *spec = &specs[i];
        g_autofree char *valid = NULL;

        if (spec->type == TP_PARAM_INT || spec->type == TP_PARAM_DOUBLE)
            valid = g_strdup_printf("%s, %.15g to %.15g", type_name(spec->type), spec->min, spec->max);
        else if (spec->type == TP_PARAM_CHOICE)
            valid = g_strdup(spec->choices);
        else
            valid = g_strdup(type_name(spec->type));
        g_string_append_printf(out, "%s%-16s %s (default %s)\n%s    %s\n", indent, spec->key, valid,
                               spec->default_value, indent, spec->help);
    }
}

static const TpParamSpec *
find_spec(const TpParams *params, const char *key, guint *out_index)
{
    for (guint i = 0; i < params->n; i++) {
        if (g_str_equal(params->specs[i].key, key)) {
            *out_index = i;
            return &params->specs[i];
        }
    }
    return NULL;
}

static void
value_clear(const TpParamSpec *spec, TpValue *value)
{
    if (is_string_type(spec->type))
        g_clear_pointer(&value->s, g_free);
}

TpParams *
tp_params_new(const TpParamSpec *specs)
{
    TpParams *params = g_new0(TpParams, 1);

    params->specs = specs;
    params->n = tp_param_specs_count(specs);
    params->values = g_new0(TpValue, params->n);
    for (guint i = 0; i < params->n; i++) {
        gboolean ok = parse_value(&specs[i], specs[i].default_value, &params->values[i], NULL);
        g_warn_if_fail(ok); /* tp_param_specs_check() passed */
    }
    return params;
}

void
tp_params_free(TpParams *params)
{
    if (params == NULL)
        return;
    for (guint i = 0; i < params->n; i++)
        value_clear(&params->specs[i], &params->values[i]);
    g_free(params->values);
    g_free(params);
}

static TpParams *
params_dup(const TpParams *params)
{
    TpParams *copy = g_new0(TpParams, 1);

    copy->specs = params->specs;
    copy->n = params->n;
    copy->values = g_memdup2(params->values, sizeof(TpValue) * params->n);
    for (guint i = 0; i < copy->n; i++)
        if (is_string_type(copy->specs[i].type))
            copy->values[i].s = g_strdup(params->values[i].s);
    return copy;
}

static char *
valid_keys(const TpParams *params)
{
    if (params->n == 0)
        return g_strdup("this plugin takes no keys");
    g_autoptr(GString) s = g_string_new("valid keys: ");
    for (guint i = 0; i < params->n; i++)
        g_string_append_printf(s, "%s%s", i ? ", " : "", params->specs[i].key);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

gboolean
tp_params_set(TpParams *params, const char *key, const char *value, GError **error)
{
    guint index;
    const TpParamSpec *spec = find_spec(params, key, &index);
    TpValue parsed;

    if (spec == NULL) {
        g_autofree char *valid = valid_keys(params);
        g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_UNKNOWN_KEY, "unknown key '%s' (%s)",
                    key, valid);
        return FALSE;
    }
    if (!parse_value(spec, value, &parsed, error)) {
        g_prefix_error(error, "%s: ", key);
        return FALSE;
    }
    value_clear(spec, &params->values[index]);
    params->values[index] = parsed;
    return TRUE;
}

/* TRUE when the raw value of group.key ends in an odd run of backslashes. */
static gboolean
ends_in_lone_backslash(GKeyFile *keyfile, const char *group, const char *key)
{
    g_autofree char *value = g_key_file_get_value(keyfile, group, key, NULL);
    gsize end = value ? strlen(value) : 0, run = 0;

    while (run < end && value[end - 1 - run] == '\\')
        run++;
    return run % 2 == 1;
}

gboolean
tp_params_load(TpParams *params, GKeyFile *keyfile, const char *group, const char *source,
               const char *const *skip, GError **error)
{
    g_auto(GStrv) keys = NULL;

    if (!g_key_file_has_group(keyfile, group))
        return TRUE;
    keys = g_key_file_get_keys(keyfile, group, NULL, NULL);

    /* Work on a copy, so a failure keeps the old values. */
    g_autoptr(TpParams) staged = params_dup(params);
    for (guint i = 0; keys[i] != NULL; i++) {
        g_autoptr(GError) local = NULL;
        g_autofree char *raw = NULL;

        if (skip != NULL && g_strv_contains(skip, keys[i]))
            continue;
        /* GLib (2.74) sets its error twice, warning, for a value with a
         * bad escape and a lone backslash at its end: refuse that first. */
        if (ends_in_lone_backslash(keyfile, group, keys[i])) {
            g_set_error(error, TP_PARAMS_ERROR, TP_PARAMS_ERROR_BAD_VALUE,
                        "%s: [%s] %s: the value ends with a lone '\\' (write '\\\\' for one)",
                        source, group, keys[i]);
            return FALSE;
        }
        /* get_string unescapes and strips; a key with a locale suffix is
         * unknown. A bad escape sets local but still returns a string. */
        raw = g_key_file_get_string(keyfile, group, keys[i], &local);
        if (raw == NULL || local != NULL || !tp_params_set(staged, keys[i], raw, &local)) {
            g_set_error(error, TP_PARAMS_ERROR,
                        local->domain == TP_PARAMS_ERROR ? local->code : TP_PARAMS_ERROR_BAD_VALUE,
                        "%s: [%s] %s", source, group, local->message);
            return FALSE;
        }
    }
    TpValue *old = params->values;
    params->values = staged->values;
    staged->values = old;
    return TRUE;
}

static const TpValue *
get_value(const TpParams *params, const char *key, TpParamType type1, TpParamType type2)
{
    guint index;
    const TpParamSpec *spec;

    g_return_val_if_fail(params != NULL && key != NULL, NULL);
    spec = find_spec(params, key, &index);
    g_return_val_if_fail(spec != NULL, NULL);
    g_return_val_if_fail(spec->type == type1 || spec->type == type2, NULL);
    return &params->values[index];
}

gint64
tp_params_get_int(const TpParams *params, const char *key)
{
    const TpValue *v = get_value(params, key, TP_PARAM_INT, TP_PARAM_INT);
    return v ? v->i : 0;
}

double
tp_params_get_double(const TpParams *params, const char *key)
{
    const TpValue *v = get_value(params, key, TP_PARAM_DOUBLE, TP_PARAM_DOUBLE);
    return v ? v->d : 0.0;
}

gboolean
tp_params_get_boolean(const TpParams *params, const char *key)
{
    const TpValue *v = get_value(params, key, TP_PARAM_BOOLEAN, TP_PARAM_BOOLEAN);
    return v ? v->b : FALSE;
}

const char *
tp_params_get_string(const TpParams *params, const char *key)
{
    const TpValue *v = get_value(params, key, TP_PARAM_STRING, TP_PARAM_CHOICE);
    return v ? v->s : NULL;
}
