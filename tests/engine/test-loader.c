/* test-loader.c — the loader over an in-test dataset whose pixels say which
 * sample they belong to: class subsets relabelled in the given order; the
 * stratified train/validation split (sizes per class, disjoint, covering,
 * the same for a class whatever else is selected); epoch orders (a
 * permutation, new each epoch, the same for the same seed); the last partial
 * batch; normalization; augmentation (shifted copies within ±4 px with zero
 * fill, mirrors, draws that depend on the sample only); prefetch giving the
 * same bytes as no prefetch; restarting mid-epoch; read errors surfacing
 * from tp_loader_next() in order; two prefetching loaders sharing a dataset;
 * configuration errors. */
#include "config.h"

#include <string.h>

#include "tp-loader.h"
#include "tp-test.h"

/* ---------------------------------------------------------------- the dataset */

#define CH 3
#define HT 8
#define WD 8
#define SAMPLE (CH * HT * WD)
#define N_FAKE 100
#define N_CLASSES 5
#define NONE G_MAXSIZE

/* One open split of the fake dataset; the test reaches it through
 * dataset->self to make reads fail or slow. */
typedef struct {
    gsize n_samples;
    gsize fail_at; /* read() of this index fails; NONE: never */
    gint delay_us; /* atomic: each read() sleeps this long */
    gint in_read;  /* atomic: read() calls running now */
    gint overlaps; /* atomic: read() calls that found another running */
} Fake;

static const char *const fake_class_names[N_CLASSES] = {"zero", "one", "two", "three", "four"};

/* Class of sample i: 0 and 1 twice as common as 2, 3 and 4 (29, 29, 14, 14,
 * 14 of 100). */
static gint32
fake_label(gsize i)
{
    return (gint32)((i % 7) % N_CLASSES);
}

/* Pixel p (flat, channel-major) of sample i: the first says i, the others
 * depend on i and p, none is 0, and all are multiples of 1/4096. */
static float
fake_pixel(gsize i, gsize p)
{
    if (p == 0)
        return (float)(i + 1) / 4096.0f;
    return (float)((i * 7 + p * 13) % 251 + 1) / 256.0f;
}

/* The sample a raw (not normalized, not augmented) image is. */
static gsize
fake_id(const float *image)
{
    return (gsize)(image[0] * 4096.0f + 0.5f) - 1;
}

static gpointer
fake_open(const TpParams *params, TpSplit split, GError **error)
{
    Fake *fake = g_new0(Fake, 1);

    fake->n_samples = N_FAKE;
    fake->fail_at = NONE;
    return fake;
}

static void
fake_close(gpointer self)
{
    g_free(self);
}

static void
fake_describe(gpointer self, TpDatasetInfo *out_info)
{
    Fake *fake = self;

    out_info->n_samples = fake->n_samples;
    out_info->channels = CH;
    out_info->height = HT;
    out_info->width = WD;
    out_info->n_classes = N_CLASSES;
    out_info->class_names = fake_class_names;
}

static gboolean
fake_read(gpointer self, gsize index, float *out, gint32 *out_label, GError **error)
{
    Fake *fake = self;
    gboolean ok = TRUE;

    if (g_atomic_int_add(&fake->in_read, 1) != 0)
        g_atomic_int_inc(&fake->overlaps);
    if (g_atomic_int_get(&fake->delay_us) > 0)
        g_usleep((gulong)g_atomic_int_get(&fake->delay_us));
    if (index == fake->fail_at) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_IO, "the disk is on fire");
        ok = FALSE;
    } else {
        for (gsize p = 0; p < SAMPLE; p++)
            out[p] = fake_pixel(index, p);
        *out_label = fake_label(index);
    }
    g_atomic_int_add(&fake->in_read, -1);
    return ok;
}

static const TpDatasetVTable fake_vtable = {
    /* .open = */ fake_open,
    /* .close = */ fake_close,
    /* .describe = */ fake_describe,
    /* .read = */ fake_read,
};

static const TpPluginInfo fake_info = {
    /* .abi_major = */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind = */ TP_PLUGIN_KIND_DATASET,
    /* .name = */ "fake",
    /* .version = */ "1",
    /* .description = */ "samples whose pixels name them",
    /* .license = */ "MIT",
    /* .vtable = */ &fake_vtable,
    /* .vtable_size = */ sizeof(TpDatasetVTable),
    /* .params = */ NULL,
};

static TpDataset *
open_fake(void)
{
    g_autoptr(GError) error = NULL;
    TpDataset *dataset = tp_dataset_new(&fake_info, NULL, TP_SPLIT_TRAIN, &error);

    ck_assert_msg(dataset != NULL, "%s", error ? error->message : "");
    return dataset;
}

static Fake *
fake_of(TpDataset *dataset)
{
    return dataset->self;
}

/* ---------------------------------------------------------------- helpers */

/* Every class, every sample, dataset order, batches of 10, no extras. */
static TpLoaderConfig
plain_config(void)
{
    TpLoaderConfig config = {
        .part = TP_LOADER_ALL,
        .seed = 42,
        .batch_size = 10,
    };
    return config;
}

static TpLoader *
new_loader(TpDataset *dataset, const TpLoaderConfig *config)
{
    g_autoptr(GError) error = NULL;
    TpLoader *loader = tp_loader_new(dataset, config, &error);

    ck_assert_msg(loader != NULL, "%s", error ? error->message : "");
    return loader;
}

/* Batches as they came: images, labels and batch sizes one after another. */
typedef struct {
    GArray *images; /* float */
    GArray *labels; /* gint32 */
    GArray *sizes;  /* int */
} Stream;

static void
stream_init(Stream *s)
{
    s->images = g_array_new(FALSE, FALSE, sizeof(float));
    s->labels = g_array_new(FALSE, FALSE, sizeof(gint32));
    s->sizes = g_array_new(FALSE, FALSE, sizeof(int));
}

static void
stream_clear(Stream *s)
{
    g_clear_pointer(&s->images, g_array_unref);
    g_clear_pointer(&s->labels, g_array_unref);
    g_clear_pointer(&s->sizes, g_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Stream, stream_clear)

static gsize
stream_count(const Stream *s)
{
    return s->labels->len;
}

static const float *
stream_image(const Stream *s, gsize j)
{
    return &g_array_index(s->images, float, j *SAMPLE);
}

static gint32
stream_label(const Stream *s, gsize j)
{
    return g_array_index(s->labels, gint32, j);
}

/* How long take() holds each batch before copying it: time for a worker
 * that wrongly writes into the caller's buffer to do so. */
static gulong hold_us;

/* Appends up to max batches of the current epoch; fails the test on an
 * error. Returns how many came. */
static gsize
take(TpLoader *loader, gsize max, Stream *s)
{
    gsize n = 0;

    while (n < max) {
        g_autoptr(GError) error = NULL;
        const float *images;
        const gint32 *labels;
        int batch = -1;

        if (!tp_loader_next(loader, &images, &labels, &batch, &error)) {
            ck_assert_msg(error == NULL, "%s", error->message);
            break;
        }
        ck_assert_int_gt(batch, 0);
        if (hold_us > 0)
            g_usleep(hold_us);
        g_array_append_vals(s->images, images, (guint)batch * SAMPLE);
        g_array_append_vals(s->labels, labels, (guint)batch);
        g_array_append_val(s->sizes, batch);
        n++;
    }
    return n;
}

/* Appends all of epoch `epoch`. */
static void
take_epoch(TpLoader *loader, guint epoch, Stream *s)
{
    tp_loader_start_epoch(loader, epoch);
    take(loader, G_MAXSIZE, s);
}

static void
assert_streams_equal(const Stream *a, const Stream *b, const char *what)
{
    ck_assert_msg(a->sizes->len == b->sizes->len, "%s: %u batches, then %u", what, a->sizes->len,
                  b->sizes->len);
    ck_assert_msg(memcmp(a->sizes->data, b->sizes->data, sizeof(int) * a->sizes->len) == 0,
                  "%s: batch sizes differ", what);
    ck_assert_msg(memcmp(a->labels->data, b->labels->data, sizeof(gint32) * a->labels->len) == 0,
                  "%s: labels differ", what);
    ck_assert_msg(memcmp(a->images->data, b->images->data, sizeof(float) * a->images->len) == 0,
                  "%s: images differ", what);
}

/* The samples of a raw stream, in order (a new array of gsize). */
static GArray *
stream_ids(const Stream *s)
{
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(gsize));

    for (gsize j = 0; j < stream_count(s); j++) {
        gsize id = fake_id(stream_image(s, j));
        g_array_append_val(ids, id);
    }
    return ids;
}

/* The stream of `epochs` epochs of a new loader over dataset. */
static void
collect(TpDataset *dataset, const TpLoaderConfig *config, guint epochs, Stream *out)
{
    g_autoptr(TpLoader) loader = new_loader(dataset, config);

    for (guint e = 0; e < epochs; e++)
        take_epoch(loader, e, out);
}

static gint
compare_gsize(gconstpointer a, gconstpointer b)
{
    gsize x = *(const gsize *)a, y = *(const gsize *)b;

    return x < y ? -1 : x > y;
}

/* The samples of the listed classes (NULL: all), ascending. */
static GArray *
ids_of_classes(const int *classes, int n_classes)
{
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(gsize));

    for (gsize i = 0; i < N_FAKE; i++) {
        gboolean keep = classes == NULL;

        for (int k = 0; k < n_classes; k++)
            keep = keep || classes[k] == fake_label(i);
        if (keep)
            g_array_append_val(ids, i);
    }
    return ids;
}

static gboolean
arrays_equal(const GArray *a, const GArray *b)
{
    return a->len == b->len &&
           memcmp(a->data, b->data, (gsize)a->len * g_array_get_element_size((GArray *)a)) == 0;
}

/* ---------------------------------------------------------------- selection */

START_TEST(test_subset_relabel)
{
    g_autoptr(TpDataset) dataset = open_fake();
    static const int classes[] = {3, 0, 4};
    TpLoaderConfig config = plain_config();
    g_auto(Stream) s;
    g_autoptr(GArray) ids = NULL;
    g_autoptr(GArray) want = ids_of_classes(classes, 3);

    stream_init(&s);
    config.classes = classes;
    config.n_classes = 3;
    config.prefetch = _i;
    collect(dataset, &config, 1, &s);

    /* Shuffle off: the kept samples in dataset order, each exactly as read. */
    ids = stream_ids(&s);
    ck_assert_uint_eq(ids->len, 14 + 29 + 14);
    ck_assert(arrays_equal(ids, want));
    for (gsize j = 0; j < stream_count(&s); j++) {
        gsize id = g_array_index(ids, gsize, j);
        int want_label = fake_label(id) == 3 ? 0 : fake_label(id) == 0 ? 1 : 2;

        ck_assert_int_eq(stream_label(&s, j), want_label);
        for (gsize p = 0; p < SAMPLE; p++)
            ck_assert(stream_image(&s, j)[p] == fake_pixel(id, p));
    }
}
END_TEST

/* samples_per_class: at most n of each kept class, a seeded draw from the
 * selection (train part here), the same for the same seed. */
START_TEST(test_samples_per_class)
{
    g_autoptr(TpDataset) dataset = open_fake();
    static const int classes[] = {3, 0};
    g_autoptr(GArray) first = NULL, again = NULL, other = NULL;
    TpLoaderConfig config = plain_config();

    config.classes = classes;
    config.n_classes = 2;
    config.part = TP_LOADER_TRAIN;
    config.validation_fraction = 0.25;
    config.samples_per_class = 5;
    for (int run = 0; run < 3; run++) {
        g_auto(Stream) s;
        stream_init(&s);
        config.seed = run < 2 ? 7 : 8;
        collect(dataset, &config, 1, &s);
        int per[2] = {0, 0};
        for (gsize j = 0; j < stream_count(&s); j++)
            per[stream_label(&s, j)]++;
        ck_assert_int_eq(per[0], 5);
        ck_assert_int_eq(per[1], 5);
        GArray *ids = stream_ids(&s);
        if (run == 0)
            first = ids;
        else if (run == 1)
            again = ids;
        else
            other = ids;
    }
    ck_assert(arrays_equal(first, again));
    ck_assert(!arrays_equal(first, other));

    /* More than a class has: all of it. */
    g_auto(Stream) all;
    stream_init(&all);
    config.samples_per_class = 1000;
    collect(dataset, &config, 1, &all);
    ck_assert_uint_eq(stream_count(&all), (14 - 4) + (29 - 7)); /* round(25%) held out */
}
END_TEST

START_TEST(test_all_classes_unchanged)
{
    g_autoptr(TpDataset) dataset = open_fake();
    TpLoaderConfig config = plain_config();
    g_auto(Stream) s;
    g_autoptr(GArray) ids = NULL;

    stream_init(&s);
    config.prefetch = _i;
    collect(dataset, &config, 1, &s);
    ids = stream_ids(&s);
    ck_assert_uint_eq(ids->len, N_FAKE);
    for (gsize j = 0; j < N_FAKE; j++) {
        ck_assert_uint_eq(g_array_index(ids, gsize, j), j);
        ck_assert_int_eq(stream_label(&s, j), fake_label(j));
    }
}
END_TEST

/* The samples of one part of a split, ascending. */
static GArray *
part_ids(TpDataset *dataset, const int *classes, int n_classes, TpLoaderPart part, double fraction,
         guint64 seed)
{
    TpLoaderConfig config = plain_config();
    g_auto(Stream) s;

    stream_init(&s);
    config.classes = classes;
    config.n_classes = n_classes;
    config.part = part;
    config.validation_fraction = fraction;
    config.seed = seed;
    config.shuffle = TRUE; /* the split must not depend on it */
    collect(dataset, &config, 1, &s);
    {
        GArray *ids = stream_ids(&s);
        g_array_sort(ids, compare_gsize);
        return ids;
    }
}

static gsize
count_class(const GArray *ids, int c)
{
    gsize n = 0;

    for (guint j = 0; j < ids->len; j++)
        n += fake_label(g_array_index(ids, gsize, j)) == c;
    return n;
}

START_TEST(test_split_stratified)
{
    static const double fractions[] = {0.2, 0.5, 0.1};
    static const gsize class_sizes[N_CLASSES] = {29, 29, 14, 14, 14};
    g_autoptr(TpDataset) dataset = open_fake();

    for (guint f = 0; f < G_N_ELEMENTS(fractions); f++) {
        double fraction = fractions[f];
        g_autoptr(GArray) train = part_ids(dataset, NULL, 0, TP_LOADER_TRAIN, fraction, 7);
        g_autoptr(GArray) val = part_ids(dataset, NULL, 0, TP_LOADER_VALIDATION, fraction, 7);
        g_autoptr(GArray) all = part_ids(dataset, NULL, 0, TP_LOADER_ALL, fraction, 7);
        g_autoptr(GArray) both = g_array_new(FALSE, FALSE, sizeof(gsize));

        for (int c = 0; c < N_CLASSES; c++) {
            gsize want_val = (gsize)(fraction * class_sizes[c] + 0.5);

            ck_assert_msg(count_class(val, c) == want_val,
                          "fraction %g, class %d: %zu validation samples, want %zu", fraction, c,
                          count_class(val, c), want_val);
            ck_assert_uint_eq(count_class(train, c), class_sizes[c] - want_val);
        }
        /* Disjoint and together every sample; ALL ignores the fraction. */
        g_array_append_vals(both, train->data, train->len);
        g_array_append_vals(both, val->data, val->len);
        g_array_sort(both, compare_gsize);
        ck_assert_uint_eq(all->len, N_FAKE);
        ck_assert(arrays_equal(both, all));
    }
}
END_TEST

START_TEST(test_split_seeded)
{
    static const int subset[] = {2, 0};
    g_autoptr(TpDataset) dataset = open_fake();
    g_autoptr(GArray) val = part_ids(dataset, NULL, 0, TP_LOADER_VALIDATION, 0.3, 7);
    g_autoptr(GArray) again = part_ids(dataset, NULL, 0, TP_LOADER_VALIDATION, 0.3, 7);
    g_autoptr(GArray) other = part_ids(dataset, NULL, 0, TP_LOADER_VALIDATION, 0.3, 8);
    g_autoptr(GArray) sub = part_ids(dataset, subset, 2, TP_LOADER_VALIDATION, 0.3, 7);
    g_autoptr(GArray) restricted = g_array_new(FALSE, FALSE, sizeof(gsize));

    ck_assert(arrays_equal(val, again));
    ck_assert_msg(!arrays_equal(val, other), "seeds 7 and 8 hold out the same samples");
    /* A class splits the same way whatever else is selected. */
    for (guint j = 0; j < val->len; j++) {
        gsize id = g_array_index(val, gsize, j);
        if (fake_label(id) == 0 || fake_label(id) == 2)
            g_array_append_val(restricted, id);
    }
    ck_assert(arrays_equal(sub, restricted));
}
END_TEST

/* ---------------------------------------------------------------- epochs */

START_TEST(test_epoch_order)
{
    static const int classes[] = {1, 4, 2};
    g_autoptr(TpDataset) dataset = open_fake();
    TpLoaderConfig config = plain_config();
    g_autoptr(TpLoader) loader = NULL;
    g_autoptr(TpLoader) twin = NULL;
    g_autoptr(GArray) want = ids_of_classes(classes, 3);
    GArray *epochs[3];

    config.classes = classes;
    config.n_classes = 3;
    config.shuffle = TRUE;
    config.batch_size = 8;
    config.prefetch = _i;
    loader = new_loader(dataset, &config);
    for (guint e = 0; e < 3; e++) {
        g_auto(Stream) s;
        g_autoptr(GArray) sorted = NULL;

        stream_init(&s);
        take_epoch(loader, e, &s);
        epochs[e] = stream_ids(&s);
        sorted = g_array_copy(epochs[e]);
        g_array_sort(sorted, compare_gsize);
        ck_assert_msg(arrays_equal(sorted, want), "epoch %u is not a permutation", e);
    }
    ck_assert(!arrays_equal(epochs[0], epochs[1]));
    ck_assert(!arrays_equal(epochs[1], epochs[2]));

    /* The same seed: the same orders, in any order of epochs. */
    twin = new_loader(dataset, &config);
    for (guint e = 3; e-- > 0;) {
        g_auto(Stream) s;
        g_autoptr(GArray) ids = NULL;

        stream_init(&s);
        take_epoch(twin, e, &s);
        ids = stream_ids(&s);
        ck_assert_msg(arrays_equal(ids, epochs[e]), "epoch %u differs for the same seed", e);
    }
    /* Another seed: another order. */
    {
        g_auto(Stream) s;
        g_autoptr(GArray) ids = NULL;

        stream_init(&s);
        config.seed = 43;
        collect(dataset, &config, 1, &s);
        ids = stream_ids(&s);
        ck_assert(!arrays_equal(ids, epochs[0]));
    }
    for (guint e = 0; e < 3; e++)
        g_array_unref(epochs[e]);
}
END_TEST

START_TEST(test_batches)
{
    static const int classes[] = {3, 0, 4}; /* 57 samples */
    static const struct {
        int batch_size;
        gsize n_batches;
        int last;
    } cases[] = {{10, 6, 7}, {57, 1, 57}, {100, 1, 57}, {1, 57, 1}, {19, 3, 19}};
    g_autoptr(TpDataset) dataset = open_fake();

    for (guint k = 0; k < G_N_ELEMENTS(cases); k++) {
        TpLoaderConfig config = plain_config();
        g_autoptr(TpLoader) loader = NULL;
        g_auto(Stream) s;

        stream_init(&s);
        config.classes = classes;
        config.n_classes = 3;
        config.shuffle = TRUE;
        config.batch_size = cases[k].batch_size;
        config.prefetch = _i;
        loader = new_loader(dataset, &config);
        ck_assert_uint_eq(tp_loader_get_n_samples(loader), 57);
        ck_assert_uint_eq(tp_loader_get_n_batches(loader), cases[k].n_batches);
        take_epoch(loader, 0, &s);
        ck_assert_uint_eq(s.sizes->len, cases[k].n_batches);
        for (guint b = 0; b + 1 < s.sizes->len; b++)
            ck_assert_int_eq(g_array_index(s.sizes, int, b), cases[k].batch_size);
        ck_assert_int_eq(g_array_index(s.sizes, int, s.sizes->len - 1), cases[k].last);
        /* At the end it stays at the end. */
        ck_assert_uint_eq(take(loader, 3, &s), 0);
    }
}
END_TEST

/* ---------------------------------------------------------------- normalization */

START_TEST(test_normalization)
{
    static const float mean[CH] = {0.1f, 0.2f, 0.3f};
    static const float std[CH] = {0.5f, 0.25f, 2.0f};
    g_autoptr(TpDataset) dataset = open_fake();
    TpLoaderConfig config = plain_config();
    g_auto(Stream) raw;
    g_auto(Stream) norm;
    g_auto(Stream) centred;

    stream_init(&raw);
    stream_init(&norm);
    stream_init(&centred);
    config.prefetch = _i;
    collect(dataset, &config, 1, &raw);
    config.mean = mean;
    config.std = std;
    collect(dataset, &config, 1, &norm);
    config.std = NULL;
    collect(dataset, &config, 1, &centred);

    ck_assert_uint_eq(stream_count(&norm), N_FAKE);
    for (gsize j = 0; j < N_FAKE; j++) {
        for (gsize p = 0; p < SAMPLE; p++) {
            int c = (int)(p / (HT * WD));
            float x = stream_image(&raw, j)[p];

            ck_assert(stream_image(&norm, j)[p] == (x - mean[c]) / std[c]);
            ck_assert(stream_image(&centred, j)[p] == x - mean[c]);
        }
    }
    ck_assert(memcmp(raw.labels->data, norm.labels->data, sizeof(gint32) * N_FAKE) == 0);
}
END_TEST

/* ---------------------------------------------------------------- augmentation */

/* The draw that turns `plain` into `augmented`: *out_dx, *out_dy in [-4, 4]
 * and *out_flip with augmented[y][x] = plain[y + dy][x' + dx], x' = flip ?
 * W - 1 - x : x, and 0 outside. FALSE if none does. */
static gboolean
find_draw(const float *plain, const float *augmented, int *out_dx, int *out_dy, gboolean *out_flip)
{
    for (int flip = 0; flip < 2; flip++) {
        for (int dy = -4; dy <= 4; dy++) {
            for (int dx = -4; dx <= 4; dx++) {
                gboolean same = TRUE;

                for (int c = 0; c < CH && same; c++) {
                    for (int y = 0; y < HT && same; y++) {
                        for (int x = 0; x < WD && same; x++) {
                            int sy = y + dy, sx = (flip ? WD - 1 - x : x) + dx;
                            float want = sy >= 0 && sy < HT && sx >= 0 && sx < WD
                                             ? plain[(c * HT + sy) * WD + sx]
                                             : 0.0f;
                            same = augmented[(c * HT + y) * WD + x] == want;
                        }
                    }
                }
                if (same) {
                    *out_dx = dx;
                    *out_dy = dy;
                    *out_flip = flip;
                    return TRUE;
                }
            }
        }
    }
    return FALSE;
}

/* A draw packed in an int: (dy + 4) * 9 + dx + 4, + 81 when flipped. */
static int
pack_draw(int dx, int dy, gboolean flip)
{
    return (dy + 4) * 9 + dx + 4 + (flip ? 81 : 0);
}

START_TEST(test_augment)
{
    /* Normalized so that no pixel is 0: zero fill must be 0 after it. */
    static const float mean[CH] = {0.3f, 0.3f, 0.3f};
    static const float std[CH] = {0.2f, 0.2f, 0.2f};
    g_autoptr(TpDataset) dataset = open_fake();
    TpLoaderConfig config = plain_config();
    g_auto(Stream) ids_stream;
    g_auto(Stream) plain;
    g_auto(Stream) augmented;
    g_auto(Stream) again;
    g_autoptr(GArray) ids = NULL;
    int draws[2][N_FAKE];
    gboolean seen[162] = {FALSE};
    int n_seen = 0, n_flips = 0, n_changed = 0;

    stream_init(&ids_stream);
    stream_init(&plain);
    stream_init(&augmented);
    stream_init(&again);
    config.shuffle = TRUE;
    config.batch_size = 16;
    config.prefetch = _i;
    collect(dataset, &config, 2, &ids_stream); /* the order, to name the samples */
    ids = stream_ids(&ids_stream);
    config.mean = mean;
    config.std = std;
    collect(dataset, &config, 2, &plain);
    config.augment = TRUE;
    collect(dataset, &config, 2, &augmented);
    collect(dataset, &config, 2, &again);

    assert_streams_equal(&augmented, &again, "the same seed, augmented");
    ck_assert(memcmp(plain.labels->data, augmented.labels->data,
                     sizeof(gint32) * plain.labels->len) == 0);
    ck_assert_uint_eq(stream_count(&augmented), 2 * N_FAKE);
    for (gsize j = 0; j < 2 * N_FAKE; j++) {
        int dx, dy;
        gboolean flip;
        int draw;

        ck_assert_msg(
            find_draw(stream_image(&plain, j), stream_image(&augmented, j), &dx, &dy, &flip),
            "item %zu (sample %zu) is no shifted or mirrored copy with zero fill", j,
            g_array_index(ids, gsize, j));
        draw = pack_draw(dx, dy, flip);
        draws[j / N_FAKE][g_array_index(ids, gsize, j)] = draw;
        n_flips += flip;
        n_seen += !seen[draw];
        seen[draw] = TRUE;
    }
    for (gsize i = 0; i < N_FAKE; i++)
        n_changed += draws[0][i] != draws[1][i];
    /* 200 draws of 162: about 116 distinct, 100 flips; a sample's draws
     * differ between epochs with probability 161/162. */
    ck_assert_msg(n_seen >= 80, "only %d distinct draws in 200", n_seen);
    ck_assert_msg(n_flips >= 70 && n_flips <= 130, "%d flips in 200", n_flips);
    ck_assert_msg(n_changed >= 90, "only %d of 100 samples drew anew in epoch 1", n_changed);

    /* The draws depend on (seed, epoch, sample) only: not on the batch size,
     * the order or the selection. */
    {
        static const int classes[] = {4, 1};
        g_autoptr(GArray) kept = ids_of_classes(classes, 2);
        g_auto(Stream) other;

        stream_init(&other);
        config.classes = classes;
        config.n_classes = 2;
        config.shuffle = FALSE;
        config.batch_size = 3;
        collect(dataset, &config, 2, &other);
        ck_assert_uint_eq(stream_count(&other), 2 * kept->len);
        for (gsize j = 0; j < stream_count(&other); j++) {
            gsize id = g_array_index(kept, gsize, j % kept->len);
            gsize at = 0;

            while (g_array_index(ids, gsize, at) != id || at / N_FAKE != j / kept->len)
                at++;
            ck_assert_msg(memcmp(stream_image(&other, j), stream_image(&augmented, at),
                                 sizeof(float) * SAMPLE) == 0,
                          "sample %zu, epoch %zu: another draw in another selection", id,
                          j / kept->len);
        }
    }
    /* Another seed, other draws. */
    {
        g_auto(Stream) reseeded;

        stream_init(&reseeded);
        config.classes = NULL;
        config.shuffle = TRUE;
        config.batch_size = 16;
        config.seed = 99;
        collect(dataset, &config, 1, &reseeded);
        ck_assert(memcmp(reseeded.images->data, augmented.images->data,
                         sizeof(float) * SAMPLE * N_FAKE) != 0);
    }
}
END_TEST

/* ---------------------------------------------------------------- prefetch */

START_TEST(test_prefetch_identical)
{
    static const int classes[] = {4, 0, 2, 1};
    static const float mean[CH] = {0.5f, 0.4f, 0.45f};
    static const float std[CH] = {0.25f, 0.3f, 0.2f};
    g_autoptr(TpDataset) dataset = open_fake();
    TpLoaderConfig config = plain_config();

    config.classes = classes;
    config.n_classes = 4;
    config.part = TP_LOADER_TRAIN;
    config.validation_fraction = 0.15;
    config.shuffle = TRUE;
    config.batch_size = 7;
    config.mean = mean;
    config.std = std;
    for (int augment = 0; augment < 2; augment++) {
        g_auto(Stream) off;
        g_auto(Stream) on;

        stream_init(&off);
        stream_init(&on);
        config.augment = augment;
        config.prefetch = FALSE;
        collect(dataset, &config, 4, &off);
        config.prefetch = TRUE;
        hold_us = 300;
        collect(dataset, &config, 4, &on);
        hold_us = 0;
        ck_assert_uint_gt(stream_count(&off), 0);
        assert_streams_equal(&off, &on, augment ? "prefetch, augmented" : "prefetch");
    }
}
END_TEST

START_TEST(test_restart_mid_epoch)
{
    g_autoptr(TpDataset) dataset = open_fake();
    TpLoaderConfig config = plain_config();
    g_autoptr(TpLoader) loader = NULL;
    g_auto(Stream) want;

    stream_init(&want);
    config.shuffle = TRUE;
    config.augment = TRUE;
    config.batch_size = 9;
    config.prefetch = _i;
    collect(dataset, &config, 2, &want); /* epochs 0 and 1 */
    loader = new_loader(dataset, &config);

    /* Slow reads, so that restarts land while the worker is filling. */
    g_atomic_int_set(&fake_of(dataset)->delay_us, 20);
    for (guint k = 0; k < 12; k++) {
        g_auto(Stream) junk;

        stream_init(&junk);
        tp_loader_start_epoch(loader, k % 3);
        take(loader, k % 4, &junk);
    }
    g_atomic_int_set(&fake_of(dataset)->delay_us, 0);
    {
        g_auto(Stream) got;
        g_auto(Stream) junk;

        stream_init(&got);
        stream_init(&junk);
        take_epoch(loader, 0, &got);
        tp_loader_start_epoch(loader, 1);
        take(loader, 2, &junk); /* dropped: epoch 1 starts over */
        take_epoch(loader, 1, &got);
        assert_streams_equal(&want, &got, "after restarts");
    }
}
END_TEST

START_TEST(test_free_anytime)
{
    g_autoptr(TpDataset) dataset = open_fake();
    TpLoaderConfig config = plain_config();
    g_auto(Stream) s;

    stream_init(&s);
    config.shuffle = TRUE;
    config.prefetch = TRUE;
    g_atomic_int_set(&fake_of(dataset)->delay_us, 50);
    /* Never started; started, nothing taken; mid-epoch; at the end. */
    tp_loader_free(new_loader(dataset, &config));
    for (gsize taken = 0; taken < 3; taken++) {
        TpLoader *loader = new_loader(dataset, &config);

        tp_loader_start_epoch(loader, 0);
        take(loader, taken, &s);
        tp_loader_free(loader);
    }
    g_atomic_int_set(&fake_of(dataset)->delay_us, 0);
    {
        TpLoader *loader = new_loader(dataset, &config);

        take_epoch(loader, 0, &s);
        tp_loader_free(loader);
    }
    ck_assert_uint_eq(stream_count(&s), 3 * 10 + N_FAKE);
}
END_TEST

START_TEST(test_shared_dataset)
{
    g_autoptr(TpDataset) dataset = open_fake();
    TpLoaderConfig config = plain_config();
    g_autoptr(TpLoader) train = NULL;
    g_autoptr(TpLoader) val = NULL;
    g_auto(Stream) want_train;
    g_auto(Stream) want_val;
    g_auto(Stream) got_train;
    g_auto(Stream) got_val;

    stream_init(&want_train);
    stream_init(&want_val);
    stream_init(&got_train);
    stream_init(&got_val);
    config.shuffle = TRUE;
    config.validation_fraction = 0.3;
    config.batch_size = 5;
    config.part = TP_LOADER_TRAIN;
    collect(dataset, &config, 1, &want_train);
    config.part = TP_LOADER_VALIDATION;
    collect(dataset, &config, 1, &want_val);

    /* Both prefetch from one dataset at once; its reads must never overlap. */
    config.prefetch = TRUE;
    val = new_loader(dataset, &config);
    config.part = TP_LOADER_TRAIN;
    train = new_loader(dataset, &config);
    g_atomic_int_set(&fake_of(dataset)->delay_us, 30);
    tp_loader_start_epoch(train, 0);
    tp_loader_start_epoch(val, 0);
    while (take(train, 1, &got_train) + take(val, 1, &got_val) > 0)
        ;
    ck_assert_int_eq(g_atomic_int_get(&fake_of(dataset)->overlaps), 0);
    assert_streams_equal(&want_train, &got_train, "train beside validation");
    assert_streams_equal(&want_val, &got_val, "validation beside train");
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_read_error)
{
    static const int classes[] = {0, 2};
    g_autoptr(TpDataset) dataset = open_fake();
    TpLoaderConfig config = plain_config();
    g_autoptr(TpLoader) loader = NULL;
    g_auto(Stream) want;
    g_auto(Stream) got;
    g_autoptr(GArray) ids = NULL;
    gsize bad = 37, position = 0, batches;

    ck_assert_int_eq(fake_label(bad), 2);
    stream_init(&want);
    stream_init(&got);
    config.classes = classes;
    config.n_classes = 2;
    config.shuffle = TRUE;
    config.batch_size = 4;
    config.prefetch = _i;
    collect(dataset, &config, 1, &want);
    ids = stream_ids(&want);
    while (g_array_index(ids, gsize, position) != bad)
        position++;

    loader = new_loader(dataset, &config);
    fake_of(dataset)->fail_at = bad;
    for (int round = 0; round < 2; round++) {
        tp_loader_start_epoch(loader, 0);
        batches = take(loader, position / 4, &got);
        ck_assert_uint_eq(batches, position / 4);
        /* The failing batch fails, and keeps failing. */
        for (int k = 0; k < 2; k++) {
            g_autoptr(GError) error = NULL;
            const float *images;
            const gint32 *labels;
            int batch;

            ck_assert(!tp_loader_next(loader, &images, &labels, &batch, &error));
            ck_assert_msg(g_error_matches(error, TP_DATASET_ERROR, TP_DATASET_ERROR_IO), "%s",
                          error ? error->message : "no error");
            ck_assert_msg(strstr(error->message, "the disk is on fire") != NULL &&
                              strstr(error->message, "sample 37") != NULL &&
                              strstr(error->message, "'fake'") != NULL,
                          "%s", error->message);
        }
    }
    /* The batches before it were the right ones. */
    ck_assert(memcmp(got.images->data, want.images->data,
                     sizeof(float) * SAMPLE * 4 * (position / 4)) == 0);
    /* Mended, a new epoch reads through. */
    fake_of(dataset)->fail_at = NONE;
    stream_clear(&got);
    stream_init(&got);
    take_epoch(loader, 0, &got);
    assert_streams_equal(&want, &got, "after a read error");
}
END_TEST

START_TEST(test_read_error_at_open)
{
    static const int classes[] = {0};
    g_autoptr(TpDataset) dataset = open_fake();
    TpLoaderConfig config = plain_config();
    g_autoptr(GError) error = NULL;
    g_autoptr(TpLoader) loader = NULL;

    config.classes = classes;
    config.n_classes = 1;
    fake_of(dataset)->fail_at = 5;
    loader = tp_loader_new(dataset, &config, &error);
    ck_assert(loader == NULL);
    ck_assert(g_error_matches(error, TP_DATASET_ERROR, TP_DATASET_ERROR_IO));
    ck_assert_msg(strstr(error->message, "sample 5") != NULL, "%s", error->message);
}
END_TEST

START_TEST(test_bad_config)
{
    static const int out_of_range[] = {1, 5};
    static const int negative[] = {-1};
    static const int twice[] = {1, 2, 1};
    static const float zero_std[CH] = {1.0f, 0.0f, 1.0f};
    static const struct {
        const int *classes;
        int n_classes;
        TpLoaderPart part;
        double fraction;
        int batch_size;
        const float *std;
        const char *message[3]; /* parts the message must have */
    } cases[] = {
        {out_of_range, 2, TP_LOADER_ALL, 0, 10, NULL, {"class 5", "position 1", "0 to 4"}},
        {negative, 1, TP_LOADER_ALL, 0, 10, NULL, {"class -1", "'fake'", "0 to 4"}},
        {twice, 3, TP_LOADER_ALL, 0, 10, NULL, {"class 1 ('one')", "twice", "positions 0 and 2"}},
        {twice, 0, TP_LOADER_ALL, 0, 10, NULL, {"no classes", "0 to 4", NULL}},
        {NULL, 0, TP_LOADER_VALIDATION, 0.0, 10, NULL, {"no samples", "fraction 0", NULL}},
        {NULL, 0, TP_LOADER_TRAIN, 1.0, 10, NULL, {"fraction 1", "[0, 1)", NULL}},
        {NULL, 0, TP_LOADER_TRAIN, -0.1, 10, NULL, {"fraction -0.1", NULL, NULL}},
        {NULL, 0, TP_LOADER_ALL, 0, 0, NULL, {"batch size 0", "at least 1", NULL}},
        {NULL, 0, TP_LOADER_ALL, 0, 10, zero_std, {"std 0", "channel 1", NULL}},
    };
    g_autoptr(TpDataset) dataset = open_fake();

    for (guint k = 0; k < G_N_ELEMENTS(cases); k++) {
        TpLoaderConfig config = plain_config();
        g_autoptr(GError) error = NULL;
        g_autoptr(TpLoader) loader = NULL;

        config.classes = cases[k].classes;
        config.n_classes = cases[k].n_classes;
        config.part = cases[k].part;
        config.validation_fraction = cases[k].fraction;
        config.batch_size = cases[k].batch_size;
        config.std = cases[k].std;
        config.prefetch = TRUE;
        loader = tp_loader_new(dataset, &config, &error);
        ck_assert_msg(loader == NULL, "case %u: no error", k);
        ck_assert_msg(g_error_matches(error, TP_LOADER_ERROR, TP_LOADER_ERROR_INVALID),
                      "case %u: %s", k, error ? error->message : "");
        for (int m = 0; m < 3 && cases[k].message[m] != NULL; m++)
            ck_assert_msg(strstr(error->message, cases[k].message[m]) != NULL,
                          "case %u: '%s' lacks '%s'", k, error->message, cases[k].message[m]);
    }
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("loader");
    TCase *tc;

    tp_test_init();

    tc = tcase_create("selection");
    tcase_add_loop_test(tc, test_subset_relabel, 0, 2);
    tcase_add_test(tc, test_samples_per_class);
    tcase_add_loop_test(tc, test_all_classes_unchanged, 0, 2);
    tcase_add_test(tc, test_split_stratified);
    tcase_add_test(tc, test_split_seeded);
    suite_add_tcase(suite, tc);

    tc = tcase_create("epochs");
    tcase_add_loop_test(tc, test_epoch_order, 0, 2);
    tcase_add_loop_test(tc, test_batches, 0, 2);
    tcase_add_loop_test(tc, test_normalization, 0, 2);
    tcase_add_loop_test(tc, test_augment, 0, 2);
    suite_add_tcase(suite, tc);

    tc = tcase_create("prefetch");
    tcase_add_test(tc, test_prefetch_identical);
    tcase_add_loop_test(tc, test_restart_mid_epoch, 0, 2);
    tcase_add_test(tc, test_free_anytime);
    tcase_add_test(tc, test_shared_dataset);
    suite_add_tcase(suite, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_read_error, 0, 2);
    tcase_add_test(tc, test_read_error_at_open);
    tcase_add_test(tc, test_bad_config);
    suite_add_tcase(suite, tc);

    return tp_test_run(suite);
}
