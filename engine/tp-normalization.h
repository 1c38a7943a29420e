/* tp-normalization.h — the input normalization a user states for a model,
 * x' = (x - mean) / std per input channel, x a pixel in 0..1: the keys
 * `[model] mean` and `[model] std` (which the command line's --mean and
 * --std write). A model exported from elsewhere records none, and taskprune
 * would feed it raw pixels; the keys set it on the model, so the data loader,
 * LRP's input bounds and export (the model's metadata) all use it. */
#ifndef TP_NORMALIZATION_H
#define TP_NORMALIZATION_H

#include <glib.h>

#include "tp-model.h"

G_BEGIN_DECLS

/* Parses text, numbers separated by commas: one per channel, or one for every
 * channel (then repeated). Each must be finite, and > 0 when positive is TRUE.
 * Returns `channels` floats (owned), or NULL with G_KEY_FILE_ERROR_INVALID_VALUE
 * whose message says what is wrong (the caller prefixes the key). */
float *tp_normalization_parse(const char *text, int channels, gboolean positive, GError **error);

/* Sets model's normalization from `mean` and `std` of group in keyfile, when
 * they are there (both or neither). Returns FALSE with an error naming source,
 * the group and the key when only one is given or a value is bad (see
 * tp_normalization_parse), leaving the model as it was. */
gboolean tp_normalization_apply_keys(TpModel *model, GKeyFile *keyfile, const char *group,
                                     const char *source, GError **error);

/* When the model (read from path) has no input normalization: a message
 * (owned) saying so and naming the flags and keys that give one, for the
 * caller to show as a warning; else NULL. */
char *tp_normalization_missing_message(const TpModel *model, const char *path);

G_END_DECLS

#endif /* TP_NORMALIZATION_H */
