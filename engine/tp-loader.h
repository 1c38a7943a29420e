/* tp-loader.h — batches for training and evaluation from a dataset split:
 * a class subset with relabelling, a seeded train/validation split, seeded
 * shuffling, per-channel normalization, augmentation for small color images
 * (pad-and-random-crop, horizontal flip), and a prefetch thread that prepares
 * the next batch while the backend works on this one.
 *
 * Determinism: the order of an epoch and every augmentation draw depend only
 * on (seed, epoch, sample), never on timing or on the prefetch thread, so a
 * run can stop after any batch and resume to the same stream
 * (tp_loader_start_epoch() with the same epoch, then skip batches).
 *
 * The split is stratified: each kept class's samples are shuffled with a
 * stream keyed by (seed, class) alone, so a class splits the same way whatever
 * else is selected, and TRAIN and VALIDATION loaders with the same seed are
 * disjoint and together cover the class.
 *
 * Order of calls: tp_loader_new(), then per epoch tp_loader_start_epoch() and
 * tp_loader_next() until it returns FALSE with no error; tp_loader_free().
 * tp_loader_start_epoch() may be called at any point, also mid-epoch.
 *
 * Threads: a loader is used from one thread. With prefetch its worker reads
 * the dataset; reads of one dataset by several loaders are serialized, but
 * nothing else may read the dataset while a prefetching loader is in an epoch.
 */
#ifndef TP_LOADER_H
#define TP_LOADER_H

#include <glib.h>

#include "tp-dataset.h"

G_BEGIN_DECLS

#define TP_LOADER_ERROR (tp_loader_error_quark())
GQuark tp_loader_error_quark(void);

typedef enum {
    TP_LOADER_ERROR_INVALID, /* a bad configuration: class not in the dataset, empty subset */
} TpLoaderError;

typedef enum {
    TP_LOADER_ALL = 0,       /* every sample of the split */
    TP_LOADER_TRAIN = 1,     /* the part of the split not held out for validation */
    TP_LOADER_VALIDATION = 2 /* the held-out part: validation_fraction of each class */
} TpLoaderPart;

typedef struct {
    /* Classes to keep, in the order given; sample labels become their
     * position here (0..n_classes-1). NULL: all, labels unchanged. */
    const int *classes;
    int n_classes;
    TpLoaderPart part;
    double validation_fraction; /* of each kept class, for TRAIN / VALIDATION; in [0, 1) */
    guint64 seed;               /* the split, the shuffle and augmentation */
    gboolean shuffle;           /* a new seeded order each epoch; else dataset order */
    int batch_size;             /* >= 1; the last batch of an epoch may be smaller */
    const float *mean;          /* per channel: x' = (x - mean) / std; NULL: 0 */
    const float *std;           /* NULL: 1 */
    /* After normalization: pad by 4 pixels of 0 (in normalized units) and
     * crop back to H x W at a random offset, then mirror left-right with
     * probability 1/2; draws depend on (seed, epoch, dataset index) only. */
    gboolean augment;
    /* Prepare the next batch on a worker thread. The stream is the same bytes
     * either way (if the thread cannot be created, reads stay on the caller's). */
    gboolean prefetch;
    int samples_per_class;      /* at most this many of each kept class (a seeded draw); 0: all */
    /* Data parallelism (docs/scaling.md): with shard_count > 1, each batch of
     * the epoch's order (the same on every process: it depends on seed and
     * epoch only) is split into shard_count contiguous slices, and this
     * loader delivers slice shard_rank: samples [floor(r b / n), floor((r+1)
     * b / n)) of a batch of b. Every process sees every batch, so a slice
     * may be empty (*out_batch 0, still TRUE). 0 or 1: the whole batch. */
    int shard_rank, shard_count;
} TpLoaderConfig;

typedef struct _TpLoader TpLoader;

/* A loader over dataset (borrowed; it must outlive the loader). config is
 * copied, its arrays too (mean and std have one entry per channel). Reads
 * every label once unless nothing is filtered (all classes, part ALL); a read
 * error is returned as the dataset gave it. Fails with TP_LOADER_ERROR for a
 * class out of range, a class listed twice, an empty class list, a selection
 * with no samples, a batch size < 1, a fraction outside [0, 1) (TRAIN and
 * VALIDATION) or a std that is not > 0. */
TpLoader *tp_loader_new(TpDataset *dataset, const TpLoaderConfig *config, GError **error);
void tp_loader_free(TpLoader *loader);

/* Samples in the selection (after subset and split) and batches per epoch. */
gsize tp_loader_get_n_samples(const TpLoader *loader);
gsize tp_loader_get_n_batches(const TpLoader *loader);

/* Starts epoch `epoch` (0, 1, ...): fixes its order and augmentation draws.
 * Mid-epoch it drops what was prefetched (the batch the caller holds becomes
 * invalid) and starts over; the stream depends on `epoch` only. */
void tp_loader_start_epoch(TpLoader *loader, guint epoch);

/* The next batch: *out_images points at batch * C * H * W normalized floats,
 * *out_labels at batch labels, *out_batch is the count. Both are owned by the
 * loader and stay valid until the next call of tp_loader_next(),
 * tp_loader_start_epoch() or tp_loader_free(). Returns FALSE with no error at
 * the end of the epoch, FALSE with the dataset's error (TP_DATASET_ERROR) if
 * a read failed: the batches before the failing one come first, with
 * prefetch or without, and every later call fails the same way until the
 * next tp_loader_start_epoch(). */
gboolean tp_loader_next(TpLoader *loader, const float **out_images, const gint32 **out_labels,
                        int *out_batch, GError **error);

/* The size of the whole batch the last tp_loader_next() took its slice
 * from (with sharding; without, its *out_batch). */
int tp_loader_get_batch_total(const TpLoader *loader);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpLoader, tp_loader_free)

G_END_DECLS

#endif /* TP_LOADER_H */
