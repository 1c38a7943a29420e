/* tp-loader.c — batches from a dataset split (the contract is in tp-loader.h).
 *
 * At tp_loader_new() every label is read once (skipped when nothing is
 * filtered: all classes, part ALL) to build the selection: the dataset indices
 * kept, in ascending order. The train/validation split shuffles each kept
 * class's indices with a generator seeded by (seed, SPLIT, class) and holds
 * out the first round(fraction * n_c); since the draw depends on the class's
 * own id and members only, a class is split the same way whatever else is
 * selected, and TRAIN and VALIDATION loaders with one seed are disjoint.
 *
 * Random draws: splitmix64 streams keyed by hashing (seed, purpose, ...):
 * the epoch order is a Fisher–Yates shuffle of the selection keyed by
 * (seed, EPOCH, epoch), restarted from the selection each epoch; augmentation
 * draws one 64-bit value keyed by (seed, AUGMENT, epoch, dataset index) and
 * takes dx, dy and the flip from it. Nothing depends on the thread that fills
 * a batch, so prefetch on and off give the same bytes. Nor on sharding: a
 * shard is a slice of each batch of that order, so the shards of one epoch
 * together are the unsharded stream, whatever the number of processes.
 *
 * Samples are not cached: each batch reads through the plugin (a dataset
 * plugin already holds or maps its data; a float copy of Fashion-MNIST would
 * be 188 MB). Normalization is (x - mean[c]) / std[c]; augmentation pads
 * the normalized image with zeros (the per-channel mean of the data, if
 * mean/std are the data's), crops at a random offset in [-4, 4]^2 and then
 * mirrors the crop with probability 1/2.
 *
 * Prefetch: one worker thread, created at tp_loader_new() and joined at
 * tp_loader_free(), and two batch buffers. Batch b goes to buffer b % 2; the
 * worker may fill batch b only once the caller has released batch b - 2
 * (by asking for batch b - 1), so it works one batch ahead of the caller and
 * never touches the buffer the caller holds. tp_loader_start_epoch() cancels
 * the worker (an atomic flag it checks between samples), waits until it is
 * idle, rebuilds the order and sets it going again. All buffers are sized at
 * tp_loader_new(); nothing is allocated per batch or per epoch.
 *
 * Two prefetching loaders over one dataset (train and validation) may read
 * at once; tp_dataset_read() serializes the plugin's read() calls.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "tp-loader.h"

G_DEFINE_QUARK(tp_loader_error, tp_loader_error)

/* Augmentation: pad by this many pixels, crop back. */
#define PAD 4

/* Purposes of random streams, hashed into their keys. */
enum { STREAM_SPLIT = 1, STREAM_EPOCH = 2, STREAM_AUGMENT = 3, STREAM_CAP = 4 };

/* One batch: images (batch_size * sample_size floats) and labels. */
typedef struct {
    float *images;
    gint32 *labels;
    int count;
    int total; /* the whole batch's size, of which count is this shard's slice */
} Slot;

struct _TpLoader {
    TpDataset *dataset; /* borrowed */
    TpLoaderConfig config;
    int *classes; /* owned copies behind config.classes, .mean, .std */
    float *mean;
    float *std;
    int *label_map; /* dataset class -> loader label, or -1 when not kept */

    int channels, height, width;
    gsize sample_size; /* channels * height * width */
    gsize n_samples;
    gsize n_batches;
    gsize *selection; /* dataset indices kept, ascending */
    gsize *order;     /* this epoch's order of the selection */
    float *scratch;   /* one sample, for augmentation; used by whoever fills */
    Slot slots[2];    /* [1] only with prefetch */

    gboolean started; /* an epoch was started */
    guint epoch;
    gsize delivered; /* batches handed to the caller in this epoch */
    int last_total;  /* the whole size of the batch delivered last */

    /* Shared with the worker, under lock (error also without prefetch). */
    GMutex lock;
    GCond wake_worker; /* work to do, or quit */
    GCond wake_caller; /* a batch is ready, an error happened, or the worker stopped filling */
    GThread *worker;   /* NULL without prefetch */
    gboolean quit;
    gboolean active;  /* the worker may fill batches of the current epoch */
    gboolean filling; /* the worker is filling a batch, outside the lock */
    gsize next_fill;  /* the batch the worker fills next */
    gsize produced;   /* batches 0 .. produced - 1 are ready */
    gsize released;   /* batches the caller is done with */
    GError *error;    /* the epoch's read error; sticky until the next epoch */
    gint cancel;      /* atomic: stop filling now */
};

/* ---------------------------------------------------------------- random draws */

#define GOLDEN G_GUINT64_CONSTANT(0x9e3779b97f4a7c15)

/* splitmix64's output function: a bijection that mixes every bit. */
static inline guint64
mix64(guint64 z)
{
    z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A key for the stream of `purpose` under seed, refined by a and b. */
static guint64
stream_key(guint64 seed, guint64 purpose, guint64 a, guint64 b)
{
    guint64 h = mix64(seed + GOLDEN);

    h = mix64(h ^ (purpose * GOLDEN));
    h = mix64(h ^ (a + GOLDEN));
    return mix64(h ^ (b + 2 * GOLDEN));
}

/* splitmix64: the next value of the stream whose state is *state. */
static inline guint64
next64(guint64 *state)
{
    *state += GOLDEN;
    return mix64(*state);
}

/* Shuffles x[0 .. n-1] (Fisher–Yates) with the stream keyed by key. The
 * modulo's bias is below n / 2^64. */
static void
shuffle(gsize *x, gsize n, guint64 key)
{
    guint64 state = key;

    for (gsize i = n; i > 1; i--) {
        gsize j = (gsize)(next64(&state) % i);
        gsize t = x[i - 1];

        x[i - 1] = x[j];
        x[j] = t;
    }
}

/* ---------------------------------------------------------------- dataset reads */

/* ---------------------------------------------------------------- configuration */

static gboolean invalid(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* Sets a TP_LOADER_ERROR_INVALID error; returns FALSE. */
static gboolean
invalid(GError **error, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    g_propagate_error(error,
                      g_error_new_valist(TP_LOADER_ERROR, TP_LOADER_ERROR_INVALID, format, args));
    va_end(args);
    return FALSE;
}

/* " ('name')" for class c when the dataset names its classes, else "". */
static char *
class_label(const TpDataset *dataset, int c)
{
    const char *const *names = dataset->meta.class_names;

    if (names == NULL || names[c] == NULL)
        return g_strdup("");
    return g_strdup_printf(" ('%s')", names[c]);
}

/* Checks config against dataset and fills loader->label_map. */
static gboolean
check_config(TpLoader *loader, const TpLoaderConfig *config, GError **error)
{
    const TpDataset *dataset = loader->dataset;
    const char *name = dataset->info->name;
    int n_classes = dataset->meta.n_classes;

    if (config->batch_size < 1)
        return invalid(error, "batch size %d: it must be at least 1", config->batch_size);
    if (config->shard_count > 1 && (config->shard_rank < 0 || config->shard_rank >= config->shard_count))
        return invalid(error, "shard %d of %d: it must be in [0, %d)", config->shard_rank,
                       config->shard_count, config->shard_count);
    if (config->part != TP_LOADER_ALL && config->part != TP_LOADER_TRAIN &&
        config->part != TP_LOADER_VALIDATION)
        return invalid(error, "part %d: it must be ALL, TRAIN or VALIDATION", (int)config->part);
    if (config->part != TP_LOADER_ALL &&
        !(config->validation_fraction >= 0.0 && config->validation_fraction < 1.0))
        return invalid(error, "validation fraction %g: it must be in [0, 1)",
                       config->validation_fraction);
    for (int c = 0; config->std != NULL && c < dataset->meta.channels; c++)
        if (!(config->std[c] > 0.0f) || !isfinite(config->std[c]))
            return invalid(error, "std %g of channel %d: it must be a finite number > 0",
                           (double)config->std[c], c);
    for (int c = 0; config->mean != NULL && c < dataset->meta.channels; c++)
        if (!isfinite(config->mean[c]))
            return invalid(error, "mean %g of channel %d: it must be finite",
                           (double)config->mean[c], c);

    loader->label_map = g_new(int, n_classes);
    if (config->classes == NULL) {
        for (int c = 0; c < n_classes; c++)
            loader->label_map[c] = c;
        return TRUE;
    }
    if (config->n_classes < 1)
        return invalid(error, "no classes selected: list at least one of 0 to %d of dataset '%s'",
                       n_classes - 1, name);
    for (int c = 0; c < n_classes; c++)
        loader->label_map[c] = -1;
    for (int i = 0; i < config->n_classes; i++) {
        int c = config->classes[i];

        if (c < 0 || c >= n_classes)
            return invalid(error,
                           "class %d (position %d of the selection) is not in dataset '%s': "
                           "valid classes are 0 to %d",
                           c, i, name, n_classes - 1);
        if (loader->label_map[c] >= 0) {
            g_autofree char *label = class_label(dataset, c);
            return invalid(error,
                           "class %d%s is listed twice (positions %d and %d of the selection): "
                           "list each class once",
                           c, label, loader->label_map[c], i);
        }
        loader->label_map[c] = i;
    }
    return TRUE;
}

/* Fills loader->selection from the labels of every sample: the kept classes,
 * then the part (see the top). */
static gboolean
build_selection(TpLoader *loader, GError **error)
{
    const TpLoaderConfig *config = &loader->config;
    gsize n = loader->dataset->meta.n_samples;
    int n_classes = loader->dataset->meta.n_classes;
    g_autofree gint32 *labels = NULL;
    g_autofree gsize *start = NULL;
    g_autofree gsize *members = NULL;
    g_autofree guint8 *held_out = NULL;
    gsize kept = 0;

    if (config->classes == NULL && config->part == TP_LOADER_ALL &&
        config->samples_per_class == 0) {
        loader->selection = g_new(gsize, n);
        for (gsize i = 0; i < n; i++)
            loader->selection[i] = i;
        loader->n_samples = n;
        return TRUE;
    }

    labels = g_new(gint32, n);
    for (gsize i = 0; i < n; i++)
        if (!tp_dataset_read(loader->dataset, i, loader->scratch, &labels[i], error))
            return FALSE;

    /* Each class's members in ascending order: a counting sort. */
    start = g_new0(gsize, n_classes + 1);
    for (gsize i = 0; i < n; i++)
        start[labels[i] + 1]++;
    for (int c = 0; c < n_classes; c++)
        start[c + 1] += start[c];
    members = g_new(gsize, n);
    {
        g_autofree gsize *fill = g_memdup2(start, sizeof(gsize) * n_classes);
        for (gsize i = 0; i < n; i++)
            members[fill[labels[i]]++] = i;
    }

    held_out = g_new0(guint8, n);
    if (config->part != TP_LOADER_ALL) {
        for (int c = 0; c < n_classes; c++) {
            gsize n_c = start[c + 1] - start[c];
            gsize n_val = (gsize)floor(config->validation_fraction * (double)n_c + 0.5);

            if (loader->label_map[c] < 0)
                continue;
            shuffle(members + start[c], n_c, stream_key(config->seed, STREAM_SPLIT, (guint64)c, 0));
            for (gsize j = 0; j < n_val; j++)
                held_out[members[start[c] + j]] = 1;
        }
    }

    loader->selection = g_new(gsize, n);
    for (gsize i = 0; i < n; i++) {
        gboolean keep = loader->label_map[labels[i]] >= 0;

        if (config->part == TP_LOADER_TRAIN)
            keep = keep && !held_out[i];
        else if (config->part == TP_LOADER_VALIDATION)
            keep = keep && held_out[i];
        if (keep)
            loader->selection[kept++] = i;
    }
    if (config->samples_per_class > 0) {
        /* At most samples_per_class of each class: a seeded draw of the
         * class's selected samples, kept in ascending order. */
        g_autofree guint8 *chosen = g_new0(guint8, n);
        g_autofree gsize *pool = g_new(gsize, MAX(kept, 1));
        for (int c = 0; c < n_classes; c++) {
            gsize n_c = 0;
            for (gsize j = 0; j < kept; j++)
                if (labels[loader->selection[j]] == c)
                    pool[n_c++] = loader->selection[j];
            shuffle(pool, n_c, stream_key(config->seed, STREAM_CAP, (guint64)c, 0));
            for (gsize j = 0; j < MIN(n_c, (gsize)config->samples_per_class); j++)
                chosen[pool[j]] = 1;
        }
        gsize capped = 0;
        for (gsize j = 0; j < kept; j++)
            if (chosen[loader->selection[j]])
                loader->selection[capped++] = loader->selection[j];
        kept = capped;
    }
    loader->n_samples = kept;
    if (kept == 0)
        return invalid(error,
                       "the selection of dataset '%s' has no samples (%s part, validation "
                       "fraction %g): choose other classes or another fraction",
                       loader->dataset->info->name,
                       config->part == TP_LOADER_TRAIN        ? "train"
                       : config->part == TP_LOADER_VALIDATION ? "validation"
                                                              : "whole",
                       config->validation_fraction);
    return TRUE;
}

/* ---------------------------------------------------------------- filling a batch */

/* Writes the augmented copy of the normalized sample `src` to dst: the
 * crop of src padded by PAD zeros at offset (dx, dy) in [-PAD, PAD], then
 * mirrored left-right when flip. dst[y][x] = src[y + dy][x' + dx] with
 * x' = flip ? W - 1 - x : x, and 0 outside src. */
static void
augment_sample(const TpLoader *loader, const float *src, float *dst, gsize index)
{
    int h = loader->height, w = loader->width;
    guint64 r = stream_key(loader->config.seed, STREAM_AUGMENT, loader->epoch, (guint64)index);
    int dx = (int)(r % (2 * PAD + 1)) - PAD;
    int dy = (int)(r / (2 * PAD + 1) % (2 * PAD + 1)) - PAD;
    gboolean flip = (r / ((2 * PAD + 1) * (2 * PAD + 1))) & 1;

    for (int c = 0; c < loader->channels; c++) {
        const float *s = src + (gsize)c * h * w;
        float *d = dst + (gsize)c * h * w;

        for (int y = 0; y < h; y++) {
            int sy = y + dy;
            float *row = d + (gsize)y * w;

            if (sy < 0 || sy >= h) {
                memset(row, 0, sizeof(float) * w);
                continue;
            }
            for (int x = 0; x < w; x++) {
                int sx = (flip ? w - 1 - x : x) + dx;
                row[x] = sx >= 0 && sx < w ? s[(gsize)sy * w + sx] : 0.0f;
            }
        }
    }
}

/* x = (x - mean[c]) / std[c] over one sample. */
static void
normalize_sample(const TpLoader *loader, float *x)
{
    gsize plane = (gsize)loader->height * loader->width;

    for (int c = 0; c < loader->channels; c++) {
        float m = loader->mean != NULL ? loader->mean[c] : 0.0f;
        float s = loader->std != NULL ? loader->std[c] : 1.0f;
        float *p = x + (gsize)c * plane;

        gsize i = 0;

        /* Blocks of 8 of a fixed size, so that the compiler's cheap
         * vectorizer turns them into SIMD divisions (the same bits). */
        for (; i + 8 <= plane; i += 8)
            for (int k = 0; k < 8; k++)
                p[i + k] = (p[i + k] - m) / s;
        for (; i < plane; i++)
            p[i] = (p[i] - m) / s;
    }
}

/* Fills slot with batch b of the current epoch. Returns FALSE with error on a
 * read failure, FALSE without one when cancelled. */
static gboolean
fill_batch(TpLoader *loader, gsize b, Slot *slot, GError **error)
{
    gsize first = b * (gsize)loader->config.batch_size;
    int total = (int)MIN((gsize)loader->config.batch_size, loader->n_samples - first);
    int count = total;
    gboolean normalize = loader->mean != NULL || loader->std != NULL;
    int shards = loader->config.shard_count;

    if (shards > 1) { /* this rank's slice (tp-loader.h) */
        int r = loader->config.shard_rank;
        int begin = (int)((gint64)r * total / shards), end = (int)((gint64)(r + 1) * total / shards);
        first += (gsize)begin;
        count = end - begin;
    }
    for (int i = 0; i < count; i++) {
        gsize index = loader->order[first + i];
        float *dst = slot->images + (gsize)i * loader->sample_size;
        float *x = loader->config.augment ? loader->scratch : dst;
        gint32 label;

        if (g_atomic_int_get(&loader->cancel))
            return FALSE;
        if (!tp_dataset_read(loader->dataset, index, x, &label, error))
            return FALSE;
        if (loader->label_map[label] < 0) {
            g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                        "dataset '%s': sample %" G_GSIZE_FORMAT
                        " has label %d, not the label it had when the loader opened",
                        loader->dataset->info->name, index, label);
            return FALSE;
        }
        if (normalize)
            normalize_sample(loader, x);
        if (loader->config.augment)
            augment_sample(loader, x, dst, index);
        slot->labels[i] = loader->label_map[label];
    }
    slot->count = count;
    slot->total = total;
    return TRUE;
}

/* ---------------------------------------------------------------- the worker */

/* Whether the worker may fill loader->next_fill now (under lock). */
static gboolean
worker_may_fill(const TpLoader *loader)
{
    return loader->active && loader->error == NULL && loader->next_fill < loader->n_batches &&
           loader->next_fill < loader->released + 2;
}

static gpointer
worker_main(gpointer data)
{
    TpLoader *loader = data;

    g_mutex_lock(&loader->lock);
    while (TRUE) {
        GError *error = NULL;
        gsize b;
        gboolean ok;

        while (!loader->quit && !worker_may_fill(loader))
            g_cond_wait(&loader->wake_worker, &loader->lock);
        if (loader->quit)
            break;
        b = loader->next_fill;
        loader->filling = TRUE;
        g_mutex_unlock(&loader->lock);

        ok = fill_batch(loader, b, &loader->slots[b % 2], &error);

        g_mutex_lock(&loader->lock);
        loader->filling = FALSE;
        if (!loader->active || (!ok && error == NULL)) {
            g_clear_error(&error); /* cancelled: the batch is dropped */
        } else if (ok) {
            loader->produced = b + 1;
            loader->next_fill = b + 1;
        } else {
            loader->error = error;
        }
        g_cond_signal(&loader->wake_caller);
    }
    g_mutex_unlock(&loader->lock);
    return NULL;
}

/* Stops the worker's current epoch and waits until it is idle; the caller
 * then owns order, scratch and both slots until the next activation. */
static void
worker_stop(TpLoader *loader)
{
    g_mutex_lock(&loader->lock);
    loader->active = FALSE;
    g_atomic_int_set(&loader->cancel, 1);
    while (loader->filling)
        g_cond_wait(&loader->wake_caller, &loader->lock);
    g_atomic_int_set(&loader->cancel, 0);
    g_mutex_unlock(&loader->lock);
}

/* ---------------------------------------------------------------- the API */

TpLoader *
tp_loader_new(TpDataset *dataset, const TpLoaderConfig *config, GError **error)
{
    g_autoptr(TpLoader) loader = NULL;
    const TpDatasetInfo *meta;
    gsize batch_floats;

    g_return_val_if_fail(dataset != NULL, NULL);
    g_return_val_if_fail(config != NULL, NULL);
    g_return_val_if_fail(config->classes == NULL || config->n_classes >= 0, NULL);

    meta = &dataset->meta;
    loader = g_new0(TpLoader, 1);
    g_mutex_init(&loader->lock);
    g_cond_init(&loader->wake_worker);
    g_cond_init(&loader->wake_caller);
    loader->dataset = dataset;
    loader->config = *config;
    loader->channels = meta->channels;
    loader->height = meta->height;
    loader->width = meta->width;
    loader->sample_size = (gsize)meta->channels * meta->height * meta->width;

    if (!check_config(loader, config, error))
        return NULL;
    if (config->classes != NULL)
        loader->config.classes = loader->classes =
            g_memdup2(config->classes, sizeof(int) * config->n_classes);
    else
        loader->config.n_classes = meta->n_classes;
    if (config->mean != NULL)
        loader->config.mean = loader->mean =
            g_memdup2(config->mean, sizeof(float) * meta->channels);
    if (config->std != NULL)
        loader->config.std = loader->std = g_memdup2(config->std, sizeof(float) * meta->channels);

    loader->scratch = g_new(float, loader->sample_size);
    if (!build_selection(loader, error))
        return NULL;
    loader->n_batches =
        (loader->n_samples + (gsize)config->batch_size - 1) / (gsize)config->batch_size;
    loader->order = g_new(gsize, loader->n_samples);

    batch_floats = (gsize)config->batch_size * loader->sample_size;
    for (int s = 0; s < (config->prefetch ? 2 : 1); s++) {
        loader->slots[s].images = g_new(float, batch_floats);
        loader->slots[s].labels = g_new(gint32, config->batch_size);
    }
    if (config->prefetch) {
        g_autoptr(GError) local = NULL;

        loader->worker = g_thread_try_new("tp-loader", worker_main, loader, &local);
        if (loader->worker == NULL) {
            /* The stream is the same without the thread, only slower. */
            g_debug("loader: no prefetch thread (%s); reading on the caller's thread",
                    local->message);
            loader->config.prefetch = FALSE;
        }
    }
    return g_steal_pointer(&loader);
}

void
tp_loader_free(TpLoader *loader)
{
    if (loader == NULL)
        return;
    if (loader->worker != NULL) {
        g_mutex_lock(&loader->lock);
        loader->quit = TRUE;
        loader->active = FALSE;
        g_atomic_int_set(&loader->cancel, 1);
        g_cond_signal(&loader->wake_worker);
        g_mutex_unlock(&loader->lock);
        g_thread_join(loader->worker);
    }
    for (int s = 0; s < 2; s++) {
        g_free(loader->slots[s].images);
        g_free(loader->slots[s].labels);
    }
    g_clear_error(&loader->error);
    g_free(loader->order);
    g_free(loader->selection);
    g_free(loader->scratch);
    g_free(loader->label_map);
    g_free(loader->classes);
    g_free(loader->mean);
    g_free(loader->std);
    g_cond_clear(&loader->wake_caller);
    g_cond_clear(&loader->wake_worker);
    g_mutex_clear(&loader->lock);
    g_free(loader);
}

gsize
tp_loader_get_n_samples(const TpLoader *loader)
{
    g_return_val_if_fail(loader != NULL, 0);
    return loader->n_samples;
}

gsize
tp_loader_get_n_batches(const TpLoader *loader)
{
    g_return_val_if_fail(loader != NULL, 0);
    return loader->n_batches;
}

int
tp_loader_get_batch_total(const TpLoader *loader)
{
    g_return_val_if_fail(loader != NULL, 0);
    return loader->last_total;
}

void
tp_loader_start_epoch(TpLoader *loader, guint epoch)
{
    g_return_if_fail(loader != NULL);

    if (loader->worker != NULL)
        worker_stop(loader);

    memcpy(loader->order, loader->selection, sizeof(gsize) * loader->n_samples);
    if (loader->config.shuffle)
        shuffle(loader->order, loader->n_samples,
                stream_key(loader->config.seed, STREAM_EPOCH, epoch, 0));
    loader->epoch = epoch;
    loader->started = TRUE;
    loader->delivered = 0;

    g_mutex_lock(&loader->lock);
    g_clear_error(&loader->error);
    loader->next_fill = 0;
    loader->produced = 0;
    loader->released = 0;
    loader->active = TRUE;
    g_cond_signal(&loader->wake_worker);
    g_mutex_unlock(&loader->lock);
}

gboolean
tp_loader_next(TpLoader *loader, const float **out_images, const gint32 **out_labels,
               int *out_batch, GError **error)
{
    gsize b;
    Slot *slot;

    g_return_val_if_fail(loader != NULL, FALSE);
    g_return_val_if_fail(loader->started, FALSE);
    g_return_val_if_fail(out_images != NULL && out_labels != NULL && out_batch != NULL, FALSE);

    b = loader->delivered;
    if (loader->worker == NULL) {
        if (loader->error != NULL) {
            g_propagate_error(error, g_error_copy(loader->error));
            return FALSE;
        }
        if (b >= loader->n_batches)
            return FALSE;
        slot = &loader->slots[0];
        if (!fill_batch(loader, b, slot, &loader->error)) {
            g_propagate_error(error, g_error_copy(loader->error));
            return FALSE;
        }
    } else {
        g_mutex_lock(&loader->lock);
        /* Asking for batch b releases batch b - 1, whose buffer the worker
         * may now fill with batch b + 1. */
        loader->released = b;
        g_cond_signal(&loader->wake_worker);
        while (loader->produced <= b && b < loader->n_batches && loader->error == NULL)
            g_cond_wait(&loader->wake_caller, &loader->lock);
        if (loader->produced <= b) {
            if (b < loader->n_batches)
                g_propagate_error(error, g_error_copy(loader->error));
            g_mutex_unlock(&loader->lock);
            return FALSE;
        }
        g_mutex_unlock(&loader->lock);
        slot = &loader->slots[b % 2];
    }
    loader->delivered = b + 1;
    loader->last_total = slot->total;
    *out_images = slot->images;
    *out_labels = slot->labels;
    *out_batch = slot->count;
    return TRUE;
}
