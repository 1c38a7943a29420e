/* synthetic.c — the `synthetic` dataset plugin: deterministic, learnable
 * classes made up on the spot, for tests and demos; no files.
 *
 * Class c of K is a stripe pattern with its own orientation and frequency,
 *     p(x, y) = 0.5 + 0.5 a cos(2 pi f_c (u cos t_c + v sin t_c) + phi + 2 pi k / 3)
 * with u = (x + 0.5) / width, v = (y + 0.5) / height, t_c = pi c / K,
 * f_c = 2 + (c mod 3) cycles per image, channel k. Each sample draws its
 * phase phi in [-pi/4, pi/4) and its contrast a in [0.7, 1), then mixes in
 * uniform noise: value = (1 - noise) p + noise r, r in [0, 1). So values stay
 * in [0, 1], and at the default noise even a nearest-centroid classifier
 * separates the classes; noise 1 is pure noise (nothing to learn).
 *
 * Sample i of a split has label i mod K and is a pure function of (seed,
 * split, i) (splitmix64, http://prng.di.unimi.it/splitmix64.c), so both
 * splits hold K * samples samples, interleaved by class, and differ from
 * each other. Class names: "class-0", "class-1", ...
 *
 * Keys:
 *   classes   number of classes K (default 4)
 *   samples   samples per class in each split (default 64)
 *   channels  1 to 4 (default 1)
 *   height, width  image size (default 16x16)
 *   seed      seed of the per-sample randomness (default 0)
 *   noise     weight of the uniform noise, 0 to 1 (default 0.25)
 */
#include "config.h"

#include <math.h>

#include "tp-dataset.h"
#include "tp-params.h"
#include "tp-plugin.h"

static const TpParamSpec synthetic_params[] = {
    {
        .key = "classes",
        .type = TP_PARAM_INT,
        .default_value = "4",
        .min = 1,
        .max = 64,
        .help = "number of classes, each its own stripe orientation and frequency",
    },
    {
        .key = "samples",
        .type = TP_PARAM_INT,
        .default_value = "64",
        .min = 1,
        .max = 1000000,
        .help = "samples per class in each split",
    },
    {
        .key = "channels",
        .type = TP_PARAM_INT,
        .default_value = "1",
        .min = 1,
        .max = 4,
        .help = "image channels",
    },
    {
        .key = "height",
        .type = TP_PARAM_INT,
        .default_value = "16",
        .min = 8,
        .max = 1024,
        .help = "image height in pixels",
    },
    {
        .key = "width",
        .type = TP_PARAM_INT,
        .default_value = "16",
        .min = 8,
        .max = 1024,
        .help = "image width in pixels",
    },
    {
        .key = "seed",
        .type = TP_PARAM_INT,
        .default_value = "0",
        .min = 0,
        .max = 4294967295.0,
        .help = "seed of the per-sample phase, contrast and noise",
    },
    {
        .key = "noise",
        .type = TP_PARAM_DOUBLE,
        .default_value = "0.25",
        .min = 0.0,
        .max = 1.0,
        .help = "weight of uniform noise mixed into each pixel (1: pure noise)",
    },
    {NULL},
};

/* One open split: its settings and class names. */
typedef struct {
    int n_classes;
    gsize n;
    int channels, height, width;
    guint64 seed;
    float noise;
    TpSplit split;
    char **class_names; /* n_classes, NULL-terminated */
} Synthetic;

/* splitmix64's step: advances *state and returns the next 64 random bits. */
static guint64
next_bits(guint64 *state)
{
    guint64 z = (*state += G_GUINT64_CONSTANT(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [0, 1), 53 random bits. */
static double
next_unit(guint64 *state)
{
    return (double)(next_bits(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------------- the vtable */

/* Copies the keys; never fails (the engine checked the ranges). */
static gpointer
synthetic_open(const TpParams *params, TpSplit split, GError **error)
{
    Synthetic *syn = g_new0(Synthetic, 1);

    syn->n_classes = (int)tp_params_get_int(params, "classes");
    syn->n = (gsize)syn->n_classes * (gsize)tp_params_get_int(params, "samples");
    syn->channels = (int)tp_params_get_int(params, "channels");
    syn->height = (int)tp_params_get_int(params, "height");
    syn->width = (int)tp_params_get_int(params, "width");
    syn->seed = (guint64)tp_params_get_int(params, "seed");
    syn->noise = (float)tp_params_get_double(params, "noise");
    syn->split = split;
    syn->class_names = g_new0(char *, syn->n_classes + 1);
    for (int c = 0; c < syn->n_classes; c++)
        syn->class_names[c] = g_strdup_printf("class-%d", c);
    return syn;
}

static void
synthetic_close(gpointer self)
{
    Synthetic *syn = self;

    if (syn == NULL)
        return;
    g_strfreev(syn->class_names);
    g_free(syn);
}

static void
synthetic_describe(gpointer self, TpDatasetInfo *out_info)
{
    const Synthetic *syn = self;

    out_info->n_samples = syn->n;
    out_info->channels = syn->channels;
    out_info->height = syn->height;
    out_info->width = syn->width;
    out_info->n_classes = syn->n_classes;
    out_info->class_names = (const char *const *)syn->class_names;
}

/* Renders sample `index` (see the file's comment); never fails. */
static gboolean
synthetic_read(gpointer self, gsize index, float *out, gint32 *out_label, GError **error)
{
    const Synthetic *syn = self;
    const int c = (int)(index % (gsize)syn->n_classes);
    const double angle = G_PI * c / syn->n_classes;
    const double cycles = 2.0 + c % 3;
    const double fu = 2.0 * G_PI * cycles * cos(angle), fv = 2.0 * G_PI * cycles * sin(angle);
    guint64 state = syn->seed;
    double phase, contrast;

    /* The sample's own stream: a pure function of (seed, split, index). */
    state = next_bits(&state) ^ (guint64)syn->split;
    state = next_bits(&state) ^ (guint64)index;
    state = next_bits(&state);
    phase = (next_unit(&state) - 0.5) * (G_PI / 2.0);
    contrast = 0.7 + 0.3 * next_unit(&state);

    for (int k = 0; k < syn->channels; k++)
        for (int y = 0; y < syn->height; y++) {
            const double v = (y + 0.5) / syn->height;

            for (int x = 0; x < syn->width; x++) {
                const double u = (x + 0.5) / syn->width;
                const double p =
                    0.5 + 0.5 * contrast * cos(fu * u + fv * v + phase + 2.0 * G_PI * k / 3.0);
                const double value = (1.0 - syn->noise) * p + syn->noise * next_unit(&state);

                *out++ = (float)CLAMP(value, 0.0, 1.0);
            }
        }
    *out_label = c;
    return TRUE;
}

/* ---------------------------------------------------------------- descriptor */

static const TpDatasetVTable synthetic_vtable = {
    /* .open =     */ synthetic_open,
    /* .close =    */ synthetic_close,
    /* .describe = */ synthetic_describe,
    /* .read =     */ synthetic_read,
};

static const TpPluginInfo synthetic_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_DATASET,
    /* .name =        */ "synthetic",
    /* .version =     */ "1.0",
    /* .description = */ "deterministic oriented-stripe classes for tests; no files",
    /* .license =     */ "MIT",
    /* .vtable =      */ &synthetic_vtable,
    /* .vtable_size = */ sizeof(TpDatasetVTable),
    /* .params =      */ synthetic_params,
};

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &synthetic_info;
}
