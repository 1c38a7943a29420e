/* cifar10.c — the `cifar10` dataset plugin: the binary version of CIFAR-10
 * (cifar-10-binary.tar.gz, https://www.cs.toronto.edu/~kriz/cifar.html,
 * "Binary version").
 *
 * A batch file is a run of 3073-byte records: one label byte (0 to 9), then
 * the 32x32 red, green and blue planes, each row-major — already the
 * channel-major layout read() writes. data_batch_1.bin .. data_batch_5.bin
 * are the training split, in that order; test_batch.bin is the test split;
 * batches.meta.txt names the ten classes, one a line (blank lines ignored).
 *
 * Keys:
 *   path  the folder holding them (cifar-10-batches-bin); required
 *
 * open() reads the split's batches whole into memory (150 MB for training)
 * and checks sizes and labels; read() converts one record to floats.
 */
#include "config.h"

#include <string.h>

#include "tp-dataset.h"
#include "tp-params.h"
#include "tp-plugin.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_CLASSES 10
#define CIFAR_TRAIN_BATCHES 5

static const TpParamSpec cifar_params[] = {
    {
        .key = "path",
        .type = TP_PARAM_STRING,
        .default_value = "",
        .help = "folder of data_batch_N.bin, test_batch.bin, batches.meta.txt (required)",
    },
    {NULL},
};

/* One batch file as read. */
typedef struct {
    guint8 *records;
    gsize n; /* records in it */
} CifarBatch;

/* One open split. */
typedef struct {
    CifarBatch batches[CIFAR_TRAIN_BATCHES];
    int n_batches;
    gsize n; /* records in all batches */
    char *class_names[CIFAR_CLASSES + 1];
} Cifar;

static void
cifar_free(Cifar *cifar)
{
    if (cifar == NULL)
        return;
    for (int b = 0; b < cifar->n_batches; b++)
        g_free(cifar->batches[b].records);
    for (int c = 0; c < CIFAR_CLASSES; c++)
        g_free(cifar->class_names[c]);
    g_free(cifar);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Cifar, cifar_free)

/* Reads one batch file into *out (records owned by it) and checks it: its
 * size a positive multiple of 3073 (TP_DATASET_ERROR_FORMAT), every label
 * 0 to 9 (_INVALID). A file that cannot be read is _IO. Errors name path. */
static gboolean
read_batch(const char *path, CifarBatch *out, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *contents = NULL;
    gsize size;

    if (!g_file_get_contents(path, &contents, &size, &local)) {
        g_set_error_literal(error, TP_DATASET_ERROR, TP_DATASET_ERROR_IO, local->message);
        return FALSE;
    }
    if (size == 0 || size % CIFAR_RECORD != 0) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_FORMAT,
                    "%s: %" G_GSIZE_FORMAT " bytes, not a positive multiple of the %d-byte "
                    "CIFAR-10 record (truncated, or not a CIFAR-10 binary batch?)",
                    path, size, CIFAR_RECORD);
        return FALSE;
    }
    for (gsize r = 0; r < size / CIFAR_RECORD; r++) {
        guint8 label = (guint8)contents[r * CIFAR_RECORD];

        if (label >= CIFAR_CLASSES) {
            g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                        "%s: record %" G_GSIZE_FORMAT " has label %u, CIFAR-10's are 0 to %d", path,
                        r, label, CIFAR_CLASSES - 1);
            return FALSE;
        }
    }
    out->records = (guint8 *)g_steal_pointer(&contents);
    out->n = size / CIFAR_RECORD;
    return TRUE;
}

/* Reads the ten class names of batches.meta.txt into cifar->class_names.
 * Another number of (non-blank) lines is TP_DATASET_ERROR_FORMAT naming path. */
static gboolean
read_meta(const char *path, Cifar *cifar, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autofree char *contents = NULL;
    g_auto(GStrv) lines = NULL;
    int n = 0;

    if (!g_file_get_contents(path, &contents, NULL, &local)) {
        g_set_error_literal(error, TP_DATASET_ERROR, TP_DATASET_ERROR_IO, local->message);
        return FALSE;
    }
    lines = g_strsplit(contents, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        g_strstrip(lines[i]);
        if (lines[i][0] == '\0')
            continue;
        if (n < CIFAR_CLASSES)
            cifar->class_names[n] = g_strdup(lines[i]);
        n++;
    }
    if (n != CIFAR_CLASSES) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_FORMAT,
                    "%s names %d classes, CIFAR-10 has %d (one name a line)", path, n,
                    CIFAR_CLASSES);
        return FALSE;
    }
    return TRUE;
}

/* ---------------------------------------------------------------- the vtable */

/* Reads the class names and the split's batches; see the file's comment. */
static gpointer
cifar_open(const TpParams *params, TpSplit split, GError **error)
{
    const char *folder = tp_params_get_string(params, "path");
    g_autoptr(Cifar) cifar = g_new0(Cifar, 1);
    g_autofree char *meta = NULL;
    const int n_batches = split == TP_SPLIT_TEST ? 1 : CIFAR_TRAIN_BATCHES;

    if (folder[0] == '\0') {
        g_set_error_literal(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                            "key path: not set (the folder cifar-10-batches-bin of "
                            "cifar-10-binary.tar.gz)");
        return NULL;
    }
    meta = g_build_filename(folder, "batches.meta.txt", NULL);
    if (!read_meta(meta, cifar, error))
        return NULL;
    for (int b = 0; b < n_batches; b++) {
        g_autofree char *name = split == TP_SPLIT_TEST
                                    ? g_strdup("test_batch.bin")
                                    : g_strdup_printf("data_batch_%d.bin", b + 1);
        g_autofree char *path = g_build_filename(folder, name, NULL);

        if (!read_batch(path, &cifar->batches[b], error))
            return NULL;
        cifar->n_batches++;
        cifar->n += cifar->batches[b].n;
    }
    g_debug("%s: %" G_GSIZE_FORMAT " %s images", folder, cifar->n,
            split == TP_SPLIT_TEST ? "test" : "training");
    return g_steal_pointer(&cifar);
}

static void
cifar_close(gpointer self)
{
    cifar_free(self);
}

static void
cifar_describe(gpointer self, TpDatasetInfo *out_info)
{
    const Cifar *cifar = self;

    out_info->n_samples = cifar->n;
    out_info->channels = 3;
    out_info->height = CIFAR_SIDE;
    out_info->width = CIFAR_SIDE;
    out_info->n_classes = CIFAR_CLASSES;
    out_info->class_names = (const char *const *)cifar->class_names;
}

/* Record `index` (counting through the batches in order) / 255; never fails. */
static gboolean
cifar_read(gpointer self, gsize index, float *out, gint32 *out_label, GError **error)
{
    const Cifar *cifar = self;
    const guint8 *record;
    int b = 0;

    while (index >= cifar->batches[b].n)
        index -= cifar->batches[b++].n;
    record = cifar->batches[b].records + index * CIFAR_RECORD;
    for (int j = 0; j < CIFAR_PIXELS; j++)
        out[j] = (float)record[1 + j] / 255.0f;
    *out_label = record[0];
    return TRUE;
}

/* ---------------------------------------------------------------- descriptor */

static const TpDatasetVTable cifar_vtable = {
    /* .open =     */ cifar_open,
    /* .close =    */ cifar_close,
    /* .describe = */ cifar_describe,
    /* .read =     */ cifar_read,
};

static const TpPluginInfo cifar_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_DATASET,
    /* .name =        */ "cifar10",
    /* .version =     */ "1.0",
    /* .description = */ "CIFAR-10 binary batches: 32x32 RGB images in 10 classes",
    /* .license =     */ "MIT",
    /* .vtable =      */ &cifar_vtable,
    /* .vtable_size = */ sizeof(TpDatasetVTable),
    /* .params =      */ cifar_params,
};

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &cifar_info;
}
