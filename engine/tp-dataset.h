/* tp-dataset.h — the dataset interface: a plugin that reads labelled images
 * (MNIST-format files, CIFAR-10 batches, a folder per class, synthetic
 * classes), and the TpDataset handle the engine reads them through.
 *
 * A dataset plugin only reads: it reports how many samples a split has, their
 * shape and the classes, and reads one sample at a time as floats in [0, 1]
 * (8-bit pixels / 255), channel-major (C, H, W). Everything else — class
 * subsets, validation splits, shuffling, batching, normalization,
 * augmentation, prefetching — is the engine's loader (tp-loader.h).
 *
 * Rules of the calls:
 *  1. open() once per split with the plugin's parsed keyfile parameters; its
 *     result is the `self` of the other members; close() ends it.
 *  2. Calls on one `self` never overlap (tp_dataset_read() holds a lock), but
 *     two opened splits may be used from two threads.
 *  3. read() may be called in any order, any number of times.
 *  4. Bad files are errors at open() where possible (wrong magic number,
 *     truncated data, label out of range, counts that disagree), naming the file.
 *
 * Members are only ever appended (tp-plugin.h).
 */
#ifndef TP_DATASET_H
#define TP_DATASET_H

#include <glib.h>

#include "tp-params.h"
#include "tp-plugin.h"
#include "tp-registry.h"

G_BEGIN_DECLS

#define TP_DATASET_ERROR (tp_dataset_error_quark())
GQuark tp_dataset_error_quark(void);

typedef enum {
    TP_DATASET_ERROR_IO,      /* a file cannot be read */
    TP_DATASET_ERROR_FORMAT,  /* a file is not in the expected format, or truncated */
    TP_DATASET_ERROR_INVALID, /* inconsistent content: labels, counts, shapes */
} TpDatasetError;

typedef enum {
    TP_SPLIT_TRAIN = 0, /* training data; the loader carves validation out of it */
    TP_SPLIT_TEST = 1,  /* held-out test data */
} TpSplit;

/* What a split holds. Strings are owned by the plugin and live until close(). */
typedef struct {
    gsize n_samples;
    int channels, height, width;
    int n_classes;
    const char *const *class_names; /* n_classes names, or NULL when unnamed */
} TpDatasetInfo;

typedef struct {
    /* Opens one split. */
    gpointer (*open)(const TpParams *params, TpSplit split, GError **error);
    void (*close)(gpointer self);
    /* Fills *out_info; valid until close(). */
    void (*describe)(gpointer self, TpDatasetInfo *out_info);
    /* Writes sample `index` (< n_samples) as channels * height * width floats
     * in [0, 1] to out and its label (in [0, n_classes)) to *out_label. */
    gboolean (*read)(gpointer self, gsize index, float *out, gint32 *out_label, GError **error);
} TpDatasetVTable;

/* An open split of a dataset. */
typedef struct {
    const TpPluginInfo *info;
    TpDatasetVTable vt;
    gpointer self;
    TpSplit split;
    TpDatasetInfo meta; /* what describe() said at open */
    GMutex lock;        /* serializes read() */
} TpDataset;

/* Checks a dataset descriptor's vtable (used by the loader of plugins). */
gboolean tp_dataset_vtable_check(const TpPluginInfo *info, GError **error);

/* Opens split of the dataset plugin `info` with params (NULL: defaults).
 * error (TP_DATASET_ERROR) names the plugin and what is wrong. */
TpDataset *tp_dataset_new(const TpPluginInfo *info, const TpParams *params, TpSplit split,
                          GError **error);

/* The same from a keyfile: the group's `plugin` key names the plugin, the
 * other keys are its parameters (checked against its table). source names
 * the keyfile in messages. The plugin comes from tp_registry_get_default(). */
TpDataset *tp_dataset_new_from_keyfile(GKeyFile *keyfile, const char *group, const char *source,
                                       TpSplit split, GError **error);

/* tp_dataset_new_from_keyfile() with the plugin looked up in registry
 * (borrowed; it must outlive the dataset). */
TpDataset *tp_dataset_new_from_registry(TpRegistry *registry, GKeyFile *keyfile, const char *group,
                                        const char *source, TpSplit split, GError **error);

void tp_dataset_free(TpDataset *dataset);

/* Reads one sample (see the vtable); error names the plugin and index. Safe
 * to call from several threads (calls are serialized). */
gboolean tp_dataset_read(TpDataset *dataset, gsize index, float *out, gint32 *out_label,
                         GError **error);

/* The class index of `name` (exact match), or -1. */
int tp_dataset_find_class(const TpDataset *dataset, const char *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpDataset, tp_dataset_free)

G_END_DECLS

#endif /* TP_DATASET_H */
