/* test-datasets.c — the dataset plugins (one file each in plugins/) on data this test
 * writes itself into temporary folders.
 *
 * Generic: every dataset plugin the registry finds is opened on its entry in
 * `fixtures` below (a plugin without one fails: add test data for it) and
 * checked against the contract of tp-dataset.h — describe() consistent, both
 * splits open and agree on shape and classes, every sample of both splits
 * reads as values in [0, 1] with a label in range, and reads repeat exactly
 * in any order.
 *
 * Then per plugin: exact content (pixels / 255, labels, class names) of
 * files written here, every bad input each plugin promises to refuse (the
 * error's domain and code, and that its message names the file at fault),
 * and idx on the real Fashion-MNIST when Debian's dataset-fashion-mnist is
 * installed (skipped with a message otherwise).
 */
#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifdef TP_TEST_WITH_GDK_PIXBUF
#include <gdk-pixbuf/gdk-pixbuf.h>
#endif

#include "tp-dataset.h"
#include "tp-test.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* ------------------------------------------------------------ helpers */

/* dir/name, made as a folder (with its parents); owned. */
static char *
make_dir(const char *dir, const char *name)
{
    char *path = g_build_filename(dir, name, NULL);

    ck_assert_msg(g_mkdir_with_parents(path, 0700) == 0, "cannot make %s", path);
    return path;
}

/* The gzip compression of len bytes. */
static GBytes *
gzip_bytes(const void *data, gsize len)
{
    g_autoptr(GZlibCompressor) zlib = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP, 6);
    g_autoptr(GOutputStream) mem = g_memory_output_stream_new_resizable();
    g_autoptr(GOutputStream) out = g_converter_output_stream_new(mem, G_CONVERTER(zlib));

    ck_assert(g_output_stream_write_all(out, data, len, NULL, NULL, NULL));
    ck_assert(g_output_stream_close(out, NULL, NULL));
    return g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(mem));
}

/* Writes len bytes to dir/name, gzip-compressed when gzip; returns the path (owned). */
static char *
write_file(const char *dir, const char *name, const void *data, gsize len, gboolean gzip)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) packed = gzip ? gzip_bytes(data, len) : NULL;
    char *path = g_build_filename(dir, name, NULL);

    if (packed != NULL)
        data = g_bytes_get_data(packed, &len);
    ck_assert_msg(g_file_set_contents(path, data, (gssize)len, &error), "%s",
                  error ? error->message : "");
    return path;
}

/* Keys for a plugin: a NULL-terminated list of "key", "value" pairs, copied
 * (a new array). */
static GPtrArray *
keys_new(const char *first_key, ...)
{
    GPtrArray *keys = g_ptr_array_new_with_free_func(g_free);
    va_list ap;

    va_start(ap, first_key);
    for (const char *key = first_key; key != NULL; key = va_arg(ap, const char *)) {
        g_ptr_array_add(keys, g_strdup(key));
        g_ptr_array_add(keys, g_strdup(va_arg(ap, const char *)));
    }
    va_end(ap);
    return keys;
}

/* Opens a split of dataset plugin `name` with keys (NULL: defaults). Fails
 * the test when the plugin is missing or its table refuses a key; returns
 * NULL with error when the plugin refuses to open. */
static TpDataset *
open_split(const char *name, GPtrArray *keys, TpSplit split, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(TpParams) params = NULL;
    const TpPlugin *plugin =
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_DATASET, name, &local);

    ck_assert_msg(plugin != NULL, "%s", local ? local->message : "?");
    params = tp_params_new(plugin->info->params);
    for (guint i = 0; keys != NULL && i + 1 < keys->len; i += 2) {
        const char *key = g_ptr_array_index(keys, i), *value = g_ptr_array_index(keys, i + 1);

        ck_assert_msg(tp_params_set(params, key, value, &local), "plugin %s, key %s = %s: %s", name,
                      key, value, local ? local->message : "?");
    }
    return tp_dataset_new(plugin->info, params, split, error);
}

static const char *
split_name(TpSplit split)
{
    return split == TP_SPLIT_TEST ? "test" : "train";
}

/* open_split() that must succeed. */
static TpDataset *
open_ok(const char *name, GPtrArray *keys, TpSplit split)
{
    g_autoptr(GError) error = NULL;
    TpDataset *dataset = open_split(name, keys, split, &error);

    ck_assert_msg(dataset != NULL, "%s, %s split: %s", name, split_name(split),
                  error ? error->message : "?");
    return dataset;
}

/* open_split() that must fail with TP_DATASET_ERROR `code` and a message
 * holding every non-NULL needle (file names, key names, words). */
static void
open_fails(const char *name, GPtrArray *keys, TpSplit split, int code, const char *what,
           const char *needle1, const char *needle2, const char *needle3)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(TpDataset) dataset = open_split(name, keys, split, &error);
    const char *needles[] = {needle1, needle2, needle3};

    ck_assert_msg(dataset == NULL, "%s: %s opened, but should fail", name, what);
    ck_assert_msg(error != NULL && error->domain == TP_DATASET_ERROR && error->code == code,
                  "%s: %s: want TP_DATASET_ERROR code %d, got %s code %d: %s", name, what, code,
                  error ? g_quark_to_string(error->domain) : "no error", error ? error->code : -1,
                  error ? error->message : "");
    for (guint i = 0; i < G_N_ELEMENTS(needles); i++)
        ck_assert_msg(needles[i] == NULL || strstr(error->message, needles[i]) != NULL,
                      "%s: %s: the message does not say \"%s\": %s", name, what, needles[i],
                      error->message);
}

/* Reads sample i, which must succeed, into a new buffer; *out_label gets its label. */
static float *
read_ok(TpDataset *dataset, gsize i, gint32 *out_label)
{
    g_autoptr(GError) error = NULL;
    const TpDatasetInfo *m = &dataset->meta;
    float *x = g_new(float, (gsize)m->channels * m->height * m->width);

    ck_assert_msg(tp_dataset_read(dataset, i, x, out_label, &error), "%s",
                  error ? error->message : "?");
    return x;
}

/* Fails unless sample i is exactly `pixels` / 255 with label `label`. */
static void
expect_sample(TpDataset *dataset, gsize i, const guint8 *pixels, gint32 label, const char *what)
{
    const TpDatasetInfo *m = &dataset->meta;
    const gsize size = (gsize)m->channels * m->height * m->width;
    gint32 got_label = -1;
    g_autofree float *x = read_ok(dataset, i, &got_label);

    ck_assert_msg(got_label == label, "%s: sample %" G_GSIZE_FORMAT ": label %d, want %d", what, i,
                  got_label, label);
    for (gsize j = 0; j < size; j++)
        ck_assert_msg(x[j] == (float)pixels[j] / 255.0f,
                      "%s: sample %" G_GSIZE_FORMAT ", value %" G_GSIZE_FORMAT
                      ": got %.9g, want %u / 255",
                      what, i, j, x[j], pixels[j]);
}

static void
expect_names(TpDataset *dataset, const char *const *want, int n, const char *what)
{
    ck_assert_msg(dataset->meta.n_classes == n, "%s: %d classes, want %d", what,
                  dataset->meta.n_classes, n);
    ck_assert_msg(dataset->meta.class_names != NULL, "%s: no class names", what);
    for (int c = 0; c < n; c++)
        ck_assert_msg(g_strcmp0(dataset->meta.class_names[c], want[c]) == 0,
                      "%s: class %d is \"%s\", want \"%s\"", what, c, dataset->meta.class_names[c],
                      want[c]);
}

static void
expect_shape(TpDataset *dataset, gsize n, int c, int h, int w, const char *what)
{
    const TpDatasetInfo *m = &dataset->meta;

    ck_assert_msg(m->n_samples == n && m->channels == c && m->height == h && m->width == w,
                  "%s: %" G_GSIZE_FORMAT " samples of [%d, %d, %d], want %" G_GSIZE_FORMAT
                  " of [%d, %d, %d]",
                  what, m->n_samples, m->channels, m->height, m->width, n, c, h, w);
}

/* ------------------------------------------------------------ idx data */

/* Pixel j of image i in test IDX files; covers 0 and 255. */
static guint8
idx_pixel(gsize i, gsize j, gsize size)
{
    return (guint8)(((i * size + j) * 17) % 256);
}

/* An IDX file in memory: magic, dims, then the body (a new array). */
static GByteArray *
idx_bytes(guint32 magic, const guint32 *dims, guint n_dims, const guint8 *body, gsize len)
{
    GByteArray *bytes = g_byte_array_new();
    guint32 word = GUINT32_TO_BE(magic);

    g_byte_array_append(bytes, (const guint8 *)&word, 4);
    for (guint d = 0; d < n_dims; d++) {
        word = GUINT32_TO_BE(dims[d]);
        g_byte_array_append(bytes, (const guint8 *)&word, 4);
    }
    g_byte_array_append(bytes, body, (guint)len);
    return bytes;
}

/* Writes dir/images and dir/labels (gzipped when the name ends in .gz): n
 * images of rows x cols of idx_pixel(), labels[i]. */
static void
write_idx(const char *dir, const char *images, const char *labels, guint32 n, guint32 rows,
          guint32 cols, const guint8 *label_values)
{
    const gsize size = (gsize)rows * cols;
    g_autofree guint8 *pixels = g_new(guint8, n * size + 1);
    const guint32 image_dims[] = {n, rows, cols}, label_dims[] = {n};
    g_autoptr(GByteArray) image_file = NULL, label_file = NULL;
    g_autofree char *p1 = NULL, *p2 = NULL;

    for (gsize i = 0; i < n; i++)
        for (gsize j = 0; j < size; j++)
            pixels[i * size + j] = idx_pixel(i, j, size);
    image_file = idx_bytes(0x803, image_dims, 3, pixels, n * size);
    label_file = idx_bytes(0x801, label_dims, 1, label_values, n);
    p1 =
        write_file(dir, images, image_file->data, image_file->len, g_str_has_suffix(images, ".gz"));
    p2 =
        write_file(dir, labels, label_file->data, label_file->len, g_str_has_suffix(labels, ".gz"));
}

static GPtrArray *
idx_fixture(const char *dir)
{
    static const guint8 train_labels[] = {0, 1, 2, 2, 1, 0};
    static const guint8 test_labels[] = {2, 0, 1};

    write_idx(dir, "tr-img.gz", "tr-lab.gz", 6, 4, 5, train_labels);
    write_idx(dir, "te-img", "te-lab", 3, 4, 5, test_labels);
    return keys_new("path", dir, "train-images", "tr-img.gz", "train-labels", "tr-lab.gz",
                    "test-images", "te-img", "test-labels", "te-lab", NULL);
}

/* ------------------------------------------------------------ cifar10 data */

#define CIFAR_RECORD 3073

static const char *const cifar_names[] = {"plane", "car",  "bird",  "cat",  "deer",
                                          "dog",   "frog", "horse", "ship", "truck"};

static guint8
cifar_label(TpSplit split, gsize g)
{
    return (guint8)((g * 3 + split) % 10);
}

static guint8
cifar_pixel(TpSplit split, gsize g, gsize j)
{
    return (guint8)((g * 31 + j * 7 + split) % 256);
}

/* Writes batches.meta.txt (with a CRLF line and blank lines) and the six
 * batch files: counts[0..4] records in data_batch_1..5.bin, counts[5] in
 * test_batch.bin; record g of a split has cifar_label() and cifar_pixel(). */
static void
write_cifar(const char *dir, const gsize counts[6])
{
    static const char meta[] = "plane\ncar\r\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n\n";
    g_autofree char *meta_path = write_file(dir, "batches.meta.txt", meta, strlen(meta), FALSE);
    gsize g = 0;

    for (int b = 0; b < 6; b++) {
        const TpSplit split = b == 5 ? TP_SPLIT_TEST : TP_SPLIT_TRAIN;
        g_autofree guint8 *data = g_new(guint8, counts[b] * CIFAR_RECORD + 1);
        g_autofree char *name =
            b == 5 ? g_strdup("test_batch.bin") : g_strdup_printf("data_batch_%d.bin", b + 1);
        g_autofree char *path = NULL;

        if (b == 5)
            g = 0;
        for (gsize r = 0; r < counts[b]; r++, g++) {
            guint8 *record = data + r * CIFAR_RECORD;

            record[0] = cifar_label(split, g);
            for (gsize j = 0; j < CIFAR_RECORD - 1; j++)
                record[1 + j] = cifar_pixel(split, g, j);
        }
        path = write_file(dir, name, data, counts[b] * CIFAR_RECORD, FALSE);
    }
}

static GPtrArray *
cifar_fixture(const char *dir)
{
    static const gsize counts[6] = {2, 1, 1, 1, 2, 3};

    write_cifar(dir, counts);
    return keys_new("path", dir, NULL);
}

/* ------------------------------------------------------------ synthetic data */

static GPtrArray *
synthetic_fixture(const char *dir)
{
    return keys_new("classes", "3", "samples", "4", "channels", "2", "height", "8", "width", "9",
                    "seed", "7", NULL);
}

/* ------------------------------------------------------------ imagefolder data */

#ifdef TP_TEST_WITH_GDK_PIXBUF

/* Pixel channel k at (x, y) of test image `img`. */
static guint8
folder_pixel(int img, int x, int y, int k)
{
    return (guint8)((img * 50 + y * 20 + x * 5 + k * 70) % 256);
}

/* Saves a w x h image whose RGB(A) pixels come from folder_pixel(img), or
 * one flat `color` when img < 0, as PNG or JPEG (format "png", "jpeg"). */
static void
write_image(const char *path, const char *format, int w, int h, gboolean alpha, int img,
            const guint8 color[3])
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GdkPixbuf) pixbuf = gdk_pixbuf_new(GDK_COLORSPACE_RGB, alpha, 8, w, h);
    const int stride = gdk_pixbuf_get_rowstride(pixbuf), step = alpha ? 4 : 3;
    guint8 *pixels = gdk_pixbuf_get_pixels(pixbuf);
    gboolean ok;

    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            guint8 *px = pixels + y * stride + x * step;

            for (int k = 0; k < 3; k++)
                px[k] = img < 0 ? color[k] : folder_pixel(img, x, y, k);
            if (alpha)
                px[3] = (guint8)(x * 60); /* dropped by the plugin */
        }
    if (g_str_equal(format, "jpeg"))
        ok = gdk_pixbuf_save(pixbuf, path, format, &error, "quality", "100", NULL);
    else
        ok = gdk_pixbuf_save(pixbuf, path, format, &error, NULL);
    ck_assert_msg(ok, "%s: %s", path, error ? error->message : "?");
}

/* In dir/sub/class: one w x h PNG of folder_pixel(img) per img. */
static void
write_class(const char *dir, const char *cls, const int *imgs, int n, int w, int h)
{
    g_autofree char *folder = make_dir(dir, cls);

    for (int i = 0; i < n; i++) {
        g_autofree char *name = g_strdup_printf("img-%02d.png", imgs[i]);
        g_autofree char *path = g_build_filename(folder, name, NULL);

        write_image(path, "png", w, h, FALSE, imgs[i], NULL);
    }
}

static GPtrArray *
imagefolder_fixture(const char *dir)
{
    g_autofree char *train = make_dir(dir, "train");
    g_autofree char *test = make_dir(dir, "test");
    static const int a[] = {0, 1}, b[] = {2, 3}, c[] = {4};

    write_class(train, "a", a, 2, 5, 6);
    write_class(train, "b", b, 2, 9, 4);
    write_class(test, "a", c, 1, 3, 3);
    write_class(test, "b", c, 1, 5, 6);
    return keys_new("path", train, "test-path", test, "height", "6", "width", "5", NULL);
}

#endif /* TP_TEST_WITH_GDK_PIXBUF */

/* ------------------------------------------------------------ generic conformance */

/* Test data per plugin: writes files into dir, returns the plugin's keys. */
static const struct {
    const char *plugin;
    GPtrArray *(*write)(const char *dir);
} fixtures[] = {
    {"cifar10", cifar_fixture},
    {"idx", idx_fixture},
    {"synthetic", synthetic_fixture},
#ifdef TP_TEST_WITH_GDK_PIXBUF
    {"imagefolder", imagefolder_fixture},
#endif
};

static int
count_dataset_plugins(void)
{
    g_autoptr(GPtrArray) plugins = tp_registry_list(tp_test_registry(), TP_PLUGIN_KIND_DATASET);

    return MAX((int)plugins->len, 1);
}

/* The contract of one open split; returns every sample's values (owned). */
static float *
check_split(TpDataset *dataset, const char *name)
{
    const TpDatasetInfo *m = &dataset->meta;
    const gsize size = (gsize)m->channels * m->height * m->width;
    g_autofree float *all = g_new(float, m->n_samples *size);
    g_autofree gint32 *labels = g_new(gint32, m->n_samples);
    g_autofree float *x = g_new(float, size);
    TpDatasetInfo again;

    /* describe() says the same every time, and what the engine kept. */
    memset(&again, 0xa5, sizeof(again));
    dataset->vt.describe(dataset->self, &again);
    ck_assert_msg(again.n_samples == m->n_samples && again.channels == m->channels &&
                      again.height == m->height && again.width == m->width &&
                      again.n_classes == m->n_classes && again.class_names == m->class_names,
                  "%s: describe() changed between calls", name);
    if (m->class_names != NULL)
        for (int c = 0; c < m->n_classes; c++) {
            ck_assert_msg(m->class_names[c] != NULL && m->class_names[c][0] != '\0',
                          "%s: class %d has no name", name, c);
            for (int d = 0; d < c; d++)
                ck_assert_msg(!g_str_equal(m->class_names[c], m->class_names[d]),
                              "%s: classes %d and %d are both \"%s\"", name, d, c,
                              m->class_names[c]);
            ck_assert_int_eq(tp_dataset_find_class(dataset, m->class_names[c]), c);
        }

    /* Every sample: values in [0, 1], every one written, labels in range. */
    for (gsize i = 0; i < m->n_samples; i++) {
        float *xi = all + i * size;

        for (gsize j = 0; j < size; j++)
            xi[j] = NAN;
        labels[i] = -1;
        ck_assert_msg(dataset->vt.read(dataset->self, i, xi, &labels[i], NULL),
                      "%s: read(%" G_GSIZE_FORMAT ") failed", name, i);
        ck_assert_msg(labels[i] >= 0 && labels[i] < m->n_classes,
                      "%s: sample %" G_GSIZE_FORMAT " has label %d of %d classes", name, i,
                      labels[i], m->n_classes);
        for (gsize j = 0; j < size; j++)
            ck_assert_msg(xi[j] >= 0.0f && xi[j] <= 1.0f,
                          "%s: sample %" G_GSIZE_FORMAT ", value %" G_GSIZE_FORMAT
                          " is %g, outside [0, 1] (or not written)",
                          name, i, j, xi[j]);
    }

    /* Reads repeat exactly, backwards too. */
    for (gsize i = m->n_samples; i-- > 0;) {
        gint32 label = -1;

        ck_assert(tp_dataset_read(dataset, i, x, &label, NULL));
        ck_assert_msg(label == labels[i] && memcmp(x, all + i * size, size * sizeof(float)) == 0,
                      "%s: sample %" G_GSIZE_FORMAT " reads differently the second time", name, i);
    }
    return g_steal_pointer(&all);
}

START_TEST(test_conformance)
{
    g_autoptr(GPtrArray) plugins = tp_registry_list(tp_test_registry(), TP_PLUGIN_KIND_DATASET);
    g_autoptr(TpTestDir) dir = NULL;
    g_autoptr(GPtrArray) keys = NULL;
    g_autoptr(TpDataset) train = NULL, test = NULL;
    g_autofree float *train_values = NULL, *test_values = NULL;
    const TpPlugin *plugin;
    const char *name;
    guint f = 0;

    ck_assert_msg(plugins->len > 0, "no dataset plugin found on TASKPRUNE_PLUGIN_PATH=%s",
                  g_getenv("TASKPRUNE_PLUGIN_PATH"));
    plugin = g_ptr_array_index(plugins, _i);
    name = plugin->info->name;
    while (f < G_N_ELEMENTS(fixtures) && !g_str_equal(fixtures[f].plugin, name))
        f++;
    ck_assert_msg(f < G_N_ELEMENTS(fixtures),
                  "add test data for plugin %s (%s) to fixtures[] in tests/plugins/test-datasets.c",
                  name, plugin->path);
    ck_assert_msg(plugin->info->description != NULL && plugin->info->description[0] != '\0',
                  "%s: no description", name);

    dir = tp_test_make_temp_dir();
    keys = fixtures[f].write(dir);
    train = open_ok(name, keys, TP_SPLIT_TRAIN);
    test = open_ok(name, keys, TP_SPLIT_TEST);
    ck_assert_int_eq(train->split, TP_SPLIT_TRAIN);
    ck_assert_int_eq(test->split, TP_SPLIT_TEST);

    /* Both splits describe the same kind of sample and the same classes. */
    ck_assert_msg(
        train->meta.channels == test->meta.channels && train->meta.height == test->meta.height &&
            train->meta.width == test->meta.width && train->meta.n_classes == test->meta.n_classes,
        "%s: train is [%d, %d, %d] in %d classes, test [%d, %d, %d] in %d", name,
        train->meta.channels, train->meta.height, train->meta.width, train->meta.n_classes,
        test->meta.channels, test->meta.height, test->meta.width, test->meta.n_classes);
    ck_assert_msg((train->meta.class_names == NULL) == (test->meta.class_names == NULL),
                  "%s: one split names its classes, the other does not", name);
    for (int c = 0; train->meta.class_names != NULL && c < train->meta.n_classes; c++)
        ck_assert_str_eq(train->meta.class_names[c], test->meta.class_names[c]);

    train_values = check_split(train, name);
    test_values = check_split(test, name);
}
END_TEST

/* ------------------------------------------------------------ idx */

START_TEST(test_idx_content)
{
    static const guint8 train_labels[] = {0, 2, 1, 2, 0};
    static const guint8 test_labels[] = {1, 0};
    static const char *const train_names[] = {"0", "1", "2"};
    static const char *const test_names[] = {"0", "1"};
    g_autoptr(TpTestDir) dir = tp_test_make_temp_dir();
    g_autoptr(GPtrArray) keys = NULL;
    g_autoptr(TpDataset) train = NULL, test = NULL;
    guint8 want[12];

    /* Train gzipped, test plain; absolute names for the test split. */
    write_idx(dir, "a-images.gz", "a-labels.gz", 5, 3, 4, train_labels);
    write_idx(dir, "b-images", "b-labels", 2, 3, 4, test_labels);
    {
        g_autofree char *ti = g_build_filename(dir, "b-images", NULL);
        g_autofree char *tl = g_build_filename(dir, "b-labels", NULL);

        keys = keys_new("path", dir, "train-images", "a-images.gz", "train-labels", "a-labels.gz",
                        "test-images", ti, "test-labels", tl, NULL);
    }
    train = open_ok("idx", keys, TP_SPLIT_TRAIN);
    test = open_ok("idx", keys, TP_SPLIT_TEST);
    expect_shape(train, 5, 1, 3, 4, "idx train");
    expect_shape(test, 2, 1, 3, 4, "idx test");
    expect_names(train, train_names, 3, "idx train");
    expect_names(test, test_names, 2, "idx test (largest label 1)");
    for (gsize i = 0; i < 5; i++) {
        for (gsize j = 0; j < 12; j++)
            want[j] = idx_pixel(i, j, 12);
        expect_sample(train, i, want, train_labels[i], "idx train (gzip)");
        if (i < 2)
            expect_sample(test, i, want, test_labels[i], "idx test (plain)");
    }
}
END_TEST

START_TEST(test_idx_class_names)
{
    static const guint8 labels[] = {0, 2, 1};
    static const char *const named[] = {"sneaker", "boot", "bag", "spare"};
    static const char *const fashion[] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                          "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                          "Bag",         "Ankle boot"};
    g_autoptr(TpTestDir) dir = tp_test_make_temp_dir();
    g_autofree char *fashion_dir = make_dir(dir, "My-Fashion-Set");
    g_autoptr(GPtrArray) keys = NULL, fashion_keys = NULL;
    g_autoptr(TpDataset) a = NULL, b = NULL;

    write_idx(dir, "i.gz", "l.gz", 3, 2, 2, labels);
    write_idx(fashion_dir, "i.gz", "l.gz", 3, 2, 2, labels);

    /* `classes` names them, trimmed, and may name more than the labels use. */
    keys = keys_new("path", dir, "train-images", "i.gz", "train-labels", "l.gz", "classes",
                    " sneaker,boot , bag,spare", NULL);
    a = open_ok("idx", keys, TP_SPLIT_TRAIN);
    expect_names(a, named, 4, "idx with classes");

    /* A folder named like Fashion-MNIST gets its ten names. */
    fashion_keys =
        keys_new("path", fashion_dir, "train-images", "i.gz", "train-labels", "l.gz", NULL);
    b = open_ok("idx", fashion_keys, TP_SPLIT_TRAIN);
    expect_names(b, fashion, 10, "idx in a folder named *fashion*");
    ck_assert_int_eq(tp_dataset_find_class(b, "Ankle boot"), 9);
}
END_TEST

typedef enum {
    IDX_WRITE,     /* the file as the case's numbers say */
    IDX_MISSING,   /* no file */
    IDX_GARBAGE,   /* bytes that are neither gzip nor IDX */
    IDX_GZIP_CUT,  /* the gzip stream cut in half */
    IDX_GZIP_BARE, /* gzip data under a name without .gz */
    IDX_HEADER,    /* only the first 6 bytes */
} IdxWrite;

/* One bad input for idx. Files are images.gz and labels.gz unless named. */
typedef struct {
    const char *name;
    IdxWrite images_write, labels_write;
    guint32 images_magic, labels_magic; /* 0: the right one */
    gboolean dims;                      /* n, rows, cols as given (else 5, 3, 4) */
    guint32 n, rows, cols, n_labels;    /* 0 for n_labels: n */
    int images_trim, labels_trim;       /* bytes cut off the end (negative: added) */
    int last_label;                     /* 0: labels i % 3 throughout */
    const char *folder;                 /* where the files are; NULL: the temp dir */
    const char *images;                 /* NULL: images.gz */
    const char *classes;
    int code;
    gboolean blames_images, blames_labels;
    const char *says;
} IdxCase;

/* clang-format off */
static const IdxCase idx_cases[] = {
    { .name = "images: wrong magic number", .images_magic = 0x804,
      .code = TP_DATASET_ERROR_FORMAT, .blames_images = TRUE, .says = "magic number 0x00000804" },
    { .name = "labels: wrong magic number", .labels_magic = 0x802,
      .code = TP_DATASET_ERROR_FORMAT, .blames_labels = TRUE, .says = "magic number" },
    { .name = "a label file given as images", .images_magic = 0x801,
      .code = TP_DATASET_ERROR_FORMAT, .blames_images = TRUE, .says = "label file" },
    { .name = "gzip data in a file not named .gz", .images_write = IDX_GZIP_BARE,
      .images = "images", .code = TP_DATASET_ERROR_FORMAT, .blames_images = TRUE, .says = "gzip" },
    { .name = "images truncated (gzip)", .images_trim = 1,
      .code = TP_DATASET_ERROR_FORMAT, .blames_images = TRUE, .says = "truncated" },
    { .name = "images truncated (plain)", .images_trim = 7, .images = "images",
      .code = TP_DATASET_ERROR_FORMAT, .blames_images = TRUE, .says = "truncated" },
    { .name = "images: header cut short", .images_write = IDX_HEADER,
      .code = TP_DATASET_ERROR_FORMAT, .blames_images = TRUE, .says = "truncated" },
    { .name = "labels truncated", .labels_trim = 2,
      .code = TP_DATASET_ERROR_FORMAT, .blames_labels = TRUE, .says = "truncated" },
    { .name = "images longer than the header says", .images_trim = -3,
      .code = TP_DATASET_ERROR_FORMAT, .blames_images = TRUE, .says = "longer" },
    { .name = "images: gzip stream cut in half", .images_write = IDX_GZIP_CUT,
      .code = TP_DATASET_ERROR_FORMAT, .blames_images = TRUE },
    { .name = "images: corrupt gzip data", .images_write = IDX_GARBAGE,
      .code = TP_DATASET_ERROR_FORMAT, .blames_images = TRUE, .says = "gzip" },
    { .name = "images: zero rows", .dims = TRUE, .n = 5, .rows = 0, .cols = 4,
      .code = TP_DATASET_ERROR_INVALID, .blames_images = TRUE, .says = "dimension 2" },
    { .name = "images: no images", .dims = TRUE, .n = 0, .rows = 3, .cols = 4,
      .code = TP_DATASET_ERROR_INVALID, .blames_images = TRUE, .says = "dimension 1" },
    { .name = "label and image counts disagree", .n_labels = 4,
      .code = TP_DATASET_ERROR_INVALID, .blames_images = TRUE, .blames_labels = TRUE,
      .says = "4 labels" },
    { .name = "a label beyond the classes named", .classes = "a,b",
      .code = TP_DATASET_ERROR_INVALID, .blames_labels = TRUE, .says = "label 2" },
    { .name = "a label beyond Fashion-MNIST's ten", .folder = "fashion", .last_label = 10,
      .code = TP_DATASET_ERROR_INVALID, .blames_labels = TRUE, .says = "label 10" },
    { .name = "images missing", .images_write = IDX_MISSING,
      .code = TP_DATASET_ERROR_IO, .blames_images = TRUE },
    { .name = "labels missing", .labels_write = IDX_MISSING,
      .code = TP_DATASET_ERROR_IO, .blames_labels = TRUE },
    { .name = "classes: an empty name", .classes = "a,,b",
      .code = TP_DATASET_ERROR_INVALID, .says = "classes" },
    { .name = "classes: a name twice", .classes = "a,b,c,a",
      .code = TP_DATASET_ERROR_INVALID, .says = "twice" },
};
/* clang-format on */

/* Writes one IDX file of a bad-input case. */
static char *
write_idx_case(const char *dir, const char *name, IdxWrite how, GByteArray *bytes, int trim)
{
    const gboolean gz = g_str_has_suffix(name, ".gz");
    g_autoptr(GBytes) packed = NULL;
    const guint8 *data;
    gsize len;

    if (trim > 0)
        g_byte_array_set_size(bytes, bytes->len - (guint)trim);
    for (int k = 0; k < -trim; k++)
        g_byte_array_append(bytes, (const guint8 *)"x", 1);
    switch (how) {
    case IDX_MISSING:
        return g_build_filename(dir, name, NULL);
    case IDX_GARBAGE:
        return write_file(dir, name, "this is not gzip data, nor IDX", 30, FALSE);
    case IDX_HEADER:
        return write_file(dir, name, bytes->data, 6, gz);
    case IDX_GZIP_CUT:
        packed = gzip_bytes(bytes->data, bytes->len);
        data = g_bytes_get_data(packed, &len);
        return write_file(dir, name, data, len / 2, FALSE);
    case IDX_GZIP_BARE:
        return write_file(dir, name, bytes->data, bytes->len, TRUE);
    case IDX_WRITE:
        break;
    }
    return write_file(dir, name, bytes->data, bytes->len, gz);
}

START_TEST(test_idx_bad_input)
{
    const IdxCase *tc = &idx_cases[_i];
    const guint32 n = tc->dims ? tc->n : 5, rows = tc->dims ? tc->rows : 3;
    const guint32 cols = tc->dims ? tc->cols : 4;
    const guint32 n_labels = tc->n_labels ? tc->n_labels : n;
    g_autoptr(TpTestDir) dir = tp_test_make_temp_dir();
    g_autofree char *folder = tc->folder ? make_dir(dir, tc->folder) : g_strdup(dir);
    g_autofree guint8 *pixels = g_new0(guint8, (gsize)n * rows * cols + 1);
    g_autofree guint8 *labels = g_new0(guint8, n_labels + 1);
    const guint32 image_dims[] = {n, rows, cols}, label_dims[] = {n_labels};
    g_autoptr(GByteArray) image_bytes = NULL, label_bytes = NULL;
    g_autofree char *images = NULL, *labels_path = NULL;
    g_autoptr(GPtrArray) keys = NULL;

    for (guint32 i = 0; i < n_labels; i++)
        labels[i] = (guint8)(i % 3);
    if (tc->last_label != 0 && n_labels > 0)
        labels[n_labels - 1] = (guint8)tc->last_label;
    image_bytes = idx_bytes(tc->images_magic ? tc->images_magic : 0x803, image_dims, 3, pixels,
                            (gsize)n * rows * cols);
    label_bytes =
        idx_bytes(tc->labels_magic ? tc->labels_magic : 0x801, label_dims, 1, labels, n_labels);
    images = write_idx_case(folder, tc->images ? tc->images : "images.gz", tc->images_write,
                            image_bytes, tc->images_trim);
    labels_path =
        write_idx_case(folder, "labels.gz", tc->labels_write, label_bytes, tc->labels_trim);
    keys = keys_new("path", folder, "train-images", tc->images ? tc->images : "images.gz",
                    "train-labels", "labels.gz", "classes", tc->classes ? tc->classes : "", NULL);
    open_fails("idx", keys, TP_SPLIT_TRAIN, tc->code, tc->name, tc->blames_images ? images : NULL,
               tc->blames_labels ? labels_path : NULL, tc->says);
}
END_TEST

/* Headers that promise more than max-bytes fail before any data is read or
 * allocated: 2^31 images, a gzip bomb's 6e6 images (a 1 MB stream of zeros
 * behind a header worth 4.7 GB), and an honest file past a small max-bytes. */
START_TEST(test_idx_hostile_header)
{
    static const struct {
        guint32 n;
        const char *max_bytes, *says;
    } cases[] = {
        {2147483648u, NULL, "promises 1683627180032 bytes of data, more than max-bytes"},
        {6000000, NULL, "more than max-bytes (4294967296)"},
        {5, "50", "promises 60 bytes of data, more than max-bytes (50)"},
    };

    for (gsize c = 0; c < G_N_ELEMENTS(cases); c++) {
        g_autoptr(TpTestDir) dir = tp_test_make_temp_dir();
        const gboolean honest = cases[c].n == 5;
        const guint32 image_dims[] = {cases[c].n, honest ? 3 : 28, honest ? 4 : 28};
        const guint32 label_dims[] = {5};
        const gsize body = honest ? 60 : 1 << 20;
        g_autofree guint8 *zeros = g_new0(guint8, body);
        g_autoptr(GByteArray) images = idx_bytes(0x803, image_dims, 3, zeros, body);
        g_autoptr(GByteArray) labels = idx_bytes(0x801, label_dims, 1, zeros, 5);
        g_autofree char *images_path = write_file(dir, "images.gz", images->data, images->len, TRUE);
        g_autofree char *labels_path = write_file(dir, "labels.gz", labels->data, labels->len, TRUE);
        g_autoptr(GPtrArray) keys =
            keys_new("path", dir, "train-images", "images.gz", "train-labels", "labels.gz",
                     "max-bytes", cases[c].max_bytes ? cases[c].max_bytes : "4294967296", NULL);

        open_fails("idx", keys, TP_SPLIT_TRAIN, TP_DATASET_ERROR_INVALID, "hostile header",
                   images_path, NULL, cases[c].says);
    }
}
END_TEST

/* The real thing, when Debian's dataset-fashion-mnist is installed. */
START_TEST(test_idx_fashion_mnist)
{
    static const struct {
        TpSplit split;
        gsize n;
    } splits[] = {{TP_SPLIT_TRAIN, 60000}, {TP_SPLIT_TEST, 10000}};
    static const char *const fashion[] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                          "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                          "Bag",         "Ankle boot"};

    if (!g_file_test(FASHION_DIR, G_FILE_TEST_IS_DIR)) {
        printf("SKIP: idx on Fashion-MNIST: %s not found (Debian: dataset-fashion-mnist)\n",
               FASHION_DIR);
        return;
    }
    for (guint s = 0; s < G_N_ELEMENTS(splits); s++) {
        const gint64 start = g_get_monotonic_time();
        g_autoptr(TpDataset) dataset = open_ok("idx", NULL, splits[s].split);
        const double seconds = (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC;
        gsize per_class[10] = {0};
        float x[28 * 28];
        double sum = 0.0;
        gint32 label;

        printf("idx: opened Fashion-MNIST's %s split (%" G_GSIZE_FORMAT " images) in %.3f s\n",
               split_name(splits[s].split), dataset->meta.n_samples, seconds);
        expect_shape(dataset, splits[s].n, 1, 28, 28, "Fashion-MNIST");
        expect_names(dataset, fashion, 10, "Fashion-MNIST");
        for (gsize i = 0; i < dataset->meta.n_samples; i++) {
            ck_assert(tp_dataset_read(dataset, i, x, &label, NULL));
            per_class[label]++;
            if (i == 0) {
                ck_assert_msg(label == 9,
                              "Fashion-MNIST's first %s image is an ankle boot (9), "
                              "got label %d",
                              split_name(splits[s].split), label);
                for (int j = 0; j < 28 * 28; j++)
                    sum += x[j];
                ck_assert_msg(sum > 10.0 && sum < 28 * 28 * 0.9, "sample 0 sums to %g", sum);
            }
        }
        for (int c = 0; c < 10; c++)
            ck_assert_msg(per_class[c] == splits[s].n / 10,
                          "Fashion-MNIST %s: class %d has %" G_GSIZE_FORMAT
                          " images, want %" G_GSIZE_FORMAT,
                          split_name(splits[s].split), c, per_class[c], splits[s].n / 10);
    }
}
END_TEST

/* ------------------------------------------------------------ cifar10 */

START_TEST(test_cifar_content)
{
    static const gsize counts[6] = {2, 1, 3, 1, 2, 3};
    g_autoptr(TpTestDir) dir = tp_test_make_temp_dir();
    g_autoptr(GPtrArray) keys = keys_new("path", dir, NULL);
    g_autoptr(TpDataset) train = NULL, test = NULL;
    guint8 want[CIFAR_RECORD - 1];

    write_cifar(dir, counts);
    train = open_ok("cifar10", keys, TP_SPLIT_TRAIN);
    test = open_ok("cifar10", keys, TP_SPLIT_TEST);
    expect_shape(train, 9, 3, 32, 32, "cifar10 train");
    expect_shape(test, 3, 3, 32, 32, "cifar10 test");
    expect_names(train, cifar_names, 10, "cifar10 train");
    expect_names(test, cifar_names, 10, "cifar10 test");
    /* The record's bytes in file order are the R, G, B planes: (C, H, W). */
    for (gsize g = 0; g < 9; g++) {
        for (gsize j = 0; j < CIFAR_RECORD - 1; j++)
            want[j] = cifar_pixel(TP_SPLIT_TRAIN, g, j);
        expect_sample(train, g, want, cifar_label(TP_SPLIT_TRAIN, g), "cifar10 train");
    }
    for (gsize g = 0; g < 3; g++) {
        for (gsize j = 0; j < CIFAR_RECORD - 1; j++)
            want[j] = cifar_pixel(TP_SPLIT_TEST, g, j);
        expect_sample(test, g, want, cifar_label(TP_SPLIT_TEST, g), "cifar10 test");
    }
}
END_TEST

typedef enum {
    CIFAR_REMOVE,   /* delete the file */
    CIFAR_ODD_SIZE, /* append 5 bytes */
    CIFAR_EMPTY,    /* truncate to 0 bytes */
    CIFAR_LABEL_10, /* record 1's label becomes 10 */
    CIFAR_META,     /* replace the file with `meta` */
    CIFAR_NO_PATH,  /* leave `path` unset */
} CifarHow;

/* clang-format off */
static const struct {
    const char *name;
    TpSplit split;
    const char *file;
    CifarHow how;
    const char *meta;
    int code;
    const char *says;
} cifar_cases[] = {
    { "a training batch missing", TP_SPLIT_TRAIN, "data_batch_3.bin", CIFAR_REMOVE, NULL,
      TP_DATASET_ERROR_IO, NULL },
    { "the test batch missing", TP_SPLIT_TEST, "test_batch.bin", CIFAR_REMOVE, NULL,
      TP_DATASET_ERROR_IO, NULL },
    { "the meta file missing", TP_SPLIT_TEST, "batches.meta.txt", CIFAR_REMOVE, NULL,
      TP_DATASET_ERROR_IO, NULL },
    { "a size not a multiple of 3073", TP_SPLIT_TRAIN, "data_batch_2.bin", CIFAR_ODD_SIZE, NULL,
      TP_DATASET_ERROR_FORMAT, "multiple of the 3073-byte" },
    { "an empty batch", TP_SPLIT_TRAIN, "data_batch_4.bin", CIFAR_EMPTY, NULL,
      TP_DATASET_ERROR_FORMAT, "0 bytes" },
    { "a label above 9", TP_SPLIT_TRAIN, "data_batch_5.bin", CIFAR_LABEL_10, NULL,
      TP_DATASET_ERROR_INVALID, "record 1 has label 10" },
    { "a label above 9 in the test batch", TP_SPLIT_TEST, "test_batch.bin", CIFAR_LABEL_10, NULL,
      TP_DATASET_ERROR_INVALID, "label 10" },
    { "a meta file with 9 names", TP_SPLIT_TRAIN, "batches.meta.txt", CIFAR_META,
      "a\nb\nc\nd\ne\nf\ng\nh\ni\n\n", TP_DATASET_ERROR_FORMAT, "names 9 classes" },
    { "a meta file with 11 names", TP_SPLIT_TRAIN, "batches.meta.txt", CIFAR_META,
      "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n", TP_DATASET_ERROR_FORMAT, "names 11 classes" },
    { "an empty meta file", TP_SPLIT_TRAIN, "batches.meta.txt", CIFAR_META, "",
      TP_DATASET_ERROR_FORMAT, "names 0 classes" },
    { "path not set", TP_SPLIT_TRAIN, NULL, CIFAR_NO_PATH, NULL,
      TP_DATASET_ERROR_INVALID, "key path" },
};
/* clang-format on */

START_TEST(test_cifar_bad_input)
{
    static const gsize counts[6] = {1, 1, 1, 1, 2, 2};
    g_autoptr(TpTestDir) dir = tp_test_make_temp_dir();
    g_autofree char *path =
        cifar_cases[_i].file ? g_build_filename(dir, cifar_cases[_i].file, NULL) : NULL;
    g_autoptr(GPtrArray) keys = NULL;
    g_autofree char *contents = NULL;
    gsize len = 0;

    write_cifar(dir, counts);
    keys = cifar_cases[_i].how == CIFAR_NO_PATH ? keys_new(NULL) : keys_new("path", dir, NULL);
    if (path != NULL && cifar_cases[_i].how != CIFAR_REMOVE && cifar_cases[_i].how != CIFAR_META)
        ck_assert(g_file_get_contents(path, &contents, &len, NULL));
    switch (cifar_cases[_i].how) {
    case CIFAR_REMOVE:
        ck_assert_int_eq(g_unlink(path), 0);
        break;
    case CIFAR_ODD_SIZE:
        contents = g_realloc(contents, len + 5);
        memset(contents + len, 7, 5);
        g_free(write_file(dir, cifar_cases[_i].file, contents, len + 5, FALSE));
        break;
    case CIFAR_EMPTY:
        g_free(write_file(dir, cifar_cases[_i].file, "", 0, FALSE));
        break;
    case CIFAR_LABEL_10:
        contents[CIFAR_RECORD] = 10;
        g_free(write_file(dir, cifar_cases[_i].file, contents, len, FALSE));
        break;
    case CIFAR_META:
        g_free(write_file(dir, cifar_cases[_i].file, cifar_cases[_i].meta,
                          strlen(cifar_cases[_i].meta), FALSE));
        break;
    case CIFAR_NO_PATH:
        break;
    }
    open_fails("cifar10", keys, cifar_cases[_i].split, cifar_cases[_i].code, cifar_cases[_i].name,
               path, cifar_cases[_i].says, NULL);
}
END_TEST

/* ------------------------------------------------------------ synthetic */

START_TEST(test_synthetic_determinism)
{
    g_autoptr(GPtrArray) keys = keys_new("classes", "5", "samples", "7", "channels", "3", "height",
                                         "12", "width", "10", "seed", "42", NULL);
    g_autoptr(GPtrArray) other_seed = keys_new("classes", "5", "samples", "7", "channels", "3",
                                               "height", "12", "width", "10", "seed", "43", NULL);
    g_autoptr(TpDataset) a = open_ok("synthetic", keys, TP_SPLIT_TRAIN);
    g_autoptr(TpDataset) b = open_ok("synthetic", keys, TP_SPLIT_TRAIN);
    g_autoptr(TpDataset) t = open_ok("synthetic", keys, TP_SPLIT_TEST);
    g_autoptr(TpDataset) s = open_ok("synthetic", other_seed, TP_SPLIT_TRAIN);
    static const char *const names[] = {"class-0", "class-1", "class-2", "class-3", "class-4"};
    const gsize size = 3 * 12 * 10;

    expect_shape(a, 35, 3, 12, 10, "synthetic");
    expect_shape(t, 35, 3, 12, 10, "synthetic test");
    expect_names(a, names, 5, "synthetic");
    /* Sample i is a function of (seed, split, i) alone: read b backwards. */
    for (gsize i = 35; i-- > 0;) {
        gint32 la, lb, lt, ls;
        g_autofree float *xa = read_ok(a, i, &la);
        g_autofree float *xb = read_ok(b, 34 - i, &lb);
        g_autofree float *xb2 = read_ok(b, i, &lb);
        g_autofree float *xt = read_ok(t, i, &lt);
        g_autofree float *xs = read_ok(s, i, &ls);

        ck_assert_int_eq(la, (gint32)(i % 5));
        ck_assert_int_eq(lb, la);
        ck_assert_int_eq(lt, la);
        ck_assert_int_eq(ls, la);
        ck_assert_msg(memcmp(xa, xb2, size * sizeof(float)) == 0,
                      "synthetic: sample %" G_GSIZE_FORMAT " differs between two opens", i);
        ck_assert_msg(memcmp(xa, xt, size * sizeof(float)) != 0,
                      "synthetic: sample %" G_GSIZE_FORMAT " is the same in train and test", i);
        ck_assert_msg(memcmp(xa, xs, size * sizeof(float)) != 0,
                      "synthetic: sample %" G_GSIZE_FORMAT " is the same for seeds 42 and 43", i);
    }
}
END_TEST

/* Nearest-centroid accuracy on the test split with centroids of the
 * training split: a floor on what a network can learn. */
static double
centroid_accuracy(GPtrArray *keys)
{
    g_autoptr(TpDataset) train = open_ok("synthetic", keys, TP_SPLIT_TRAIN);
    g_autoptr(TpDataset) test = open_ok("synthetic", keys, TP_SPLIT_TEST);
    const int k = train->meta.n_classes;
    const gsize size = (gsize)train->meta.channels * train->meta.height * train->meta.width;
    g_autofree double *centroids = g_new0(double, k *size);
    g_autofree gsize *counts = g_new0(gsize, k);
    gsize right = 0;

    for (gsize i = 0; i < train->meta.n_samples; i++) {
        gint32 label;
        g_autofree float *x = read_ok(train, i, &label);

        for (gsize j = 0; j < size; j++)
            centroids[label * size + j] += x[j];
        counts[label]++;
    }
    for (int c = 0; c < k; c++)
        for (gsize j = 0; j < size; j++)
            centroids[c * size + j] /= (double)counts[c];
    for (gsize i = 0; i < test->meta.n_samples; i++) {
        gint32 label, best = -1;
        g_autofree float *x = read_ok(test, i, &label);
        double best_d = INFINITY;

        for (int c = 0; c < k; c++) {
            double d = 0.0;

            for (gsize j = 0; j < size; j++)
                d += (x[j] - centroids[c * size + j]) * (x[j] - centroids[c * size + j]);
            if (d < best_d) {
                best_d = d;
                best = c;
            }
        }
        right += best == label;
    }
    return (double)right / (double)test->meta.n_samples;
}

START_TEST(test_synthetic_learnable)
{
    g_autoptr(GPtrArray) defaults = keys_new(NULL);
    g_autoptr(GPtrArray) ten = keys_new("classes", "10", "samples", "32", "channels", "3", NULL);
    g_autoptr(GPtrArray) noisy = keys_new("noise", "1", NULL);
    double a = centroid_accuracy(defaults), b = centroid_accuracy(ten),
           c = centroid_accuracy(noisy);

    ck_assert_msg(a >= 0.98, "synthetic, defaults: nearest-centroid accuracy %.3f < 0.98", a);
    ck_assert_msg(b >= 0.95, "synthetic, 10 classes: nearest-centroid accuracy %.3f < 0.95", b);
    ck_assert_msg(c <= 0.5, "synthetic, noise 1: nearest-centroid accuracy %.3f, want chance", c);
}
END_TEST

/* ------------------------------------------------------------ imagefolder */

#ifdef TP_TEST_WITH_GDK_PIXBUF

/* The RGB planes of folder_pixel(img) at w x h, or its BT.601 gray. */
static void
folder_want(int img, int w, int h, int channels, guint8 *out)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const int at = y * w + x;

            if (channels == 1)
                out[at] = (guint8)((299u * folder_pixel(img, x, y, 0) +
                                    587u * folder_pixel(img, x, y, 1) +
                                    114u * folder_pixel(img, x, y, 2) + 500u) /
                                   1000u);
            else
                for (int k = 0; k < 3; k++)
                    out[k * w * h + at] = folder_pixel(img, x, y, k);
        }
}

START_TEST(test_imagefolder_content)
{
    static const char *const names[] = {"cat", "dog"};
    static const int cats[] = {3, 1}, dogs[] = {7}, order[] = {1, 3, 7, 8};
    g_autoptr(TpTestDir) dir = tp_test_make_temp_dir();
    g_autofree char *train = make_dir(dir, "train");
    g_autofree char *test = make_dir(dir, "test");
    g_autofree char *hidden = make_dir(train, ".cache");
    g_autofree char *stray = NULL, *notes = NULL, *rgba = NULL;
    g_autoptr(GPtrArray) rgb_keys = NULL, gray_keys = NULL;
    g_autoptr(TpDataset) rgb = NULL, gray = NULL, test_split = NULL;
    guint8 want[3 * 4 * 3];

    write_class(train, "dog", dogs, 1, 4, 3);
    write_class(train, "cat", cats, 2, 4, 3);
    write_class(test, "dog", cats, 1, 4, 3);
    stray = write_file(train, "stray.png", "not a folder", 12, FALSE);
    notes = write_file(dir, "train/cat/notes.txt", "skipped", 7, FALSE);
    rgba = g_build_filename(train, "dog", "img-99.PNG", NULL);
    write_image(rgba, "png", 4, 3, TRUE, 8, NULL);

    rgb_keys = keys_new("path", train, "test-path", test, "height", "3", "width", "4", NULL);
    gray_keys = keys_new("path", train, "channels", "1", "height", "3", "width", "4", NULL);
    rgb = open_ok("imagefolder", rgb_keys, TP_SPLIT_TRAIN);
    gray = open_ok("imagefolder", gray_keys, TP_SPLIT_TRAIN);
    test_split = open_ok("imagefolder", rgb_keys, TP_SPLIT_TEST);
    expect_shape(rgb, 4, 3, 3, 4, "imagefolder RGB");
    expect_shape(gray, 4, 1, 3, 4, "imagefolder gray");
    expect_shape(test_split, 1, 3, 3, 4, "imagefolder test (one class folder)");
    expect_names(rgb, names, 2, "imagefolder");
    expect_names(test_split, names, 2, "imagefolder test: the classes of path");

    /* Classes and files in name order: cat/img-01, cat/img-03, dog/img-07,
     * dog/img-99.PNG (which holds image 8, with alpha). */
    for (gsize i = 0; i < 4; i++) {
        folder_want(order[i], 4, 3, 3, want);
        expect_sample(rgb, i, want, i < 2 ? 0 : 1, "imagefolder RGB");
        folder_want(order[i], 4, 3, 1, want);
        expect_sample(gray, i, want, i < 2 ? 0 : 1, "imagefolder gray");
    }
    folder_want(3, 4, 3, 3, want);
    expect_sample(test_split, 0, want, 1, "imagefolder test: dog is class 1 of path");
}
END_TEST

START_TEST(test_imagefolder_resize_and_jpeg)
{
    static const guint8 teal[3] = {20, 140, 200}, plum[3] = {160, 60, 120};
    g_autoptr(TpTestDir) dir = tp_test_make_temp_dir();
    g_autofree char *a = make_dir(dir, "a");
    g_autofree char *b = make_dir(dir, "b");
    g_autofree char *big = g_build_filename(a, "big.png", NULL);
    g_autofree char *small = g_build_filename(a, "small.png", NULL);
    g_autofree char *photo = g_build_filename(b, "photo.JPG", NULL);
    g_autoptr(GPtrArray) keys = keys_new("path", dir, "height", "5", "width", "6", NULL);
    g_autoptr(TpDataset) dataset = NULL;
    guint8 want[3 * 5 * 6];

    write_image(big, "png", 40, 30, FALSE, -1, teal);
    write_image(small, "png", 2, 3, FALSE, -1, plum);
    write_image(photo, "jpeg", 16, 16, FALSE, -1, teal);
    dataset = open_ok("imagefolder", keys, TP_SPLIT_TRAIN);
    expect_shape(dataset, 3, 3, 5, 6, "imagefolder resized");

    /* A flat image stays flat through bilinear resizing, down or up. */
    for (int k = 0; k < 3; k++)
        memset(want + k * 30, teal[k], 30);
    expect_sample(dataset, 0, want, 0, "imagefolder 40x30 to 6x5");
    for (int k = 0; k < 3; k++)
        memset(want + k * 30, plum[k], 30);
    expect_sample(dataset, 1, want, 0, "imagefolder 2x3 to 6x5");

    /* JPEG at quality 100: within a few levels of the color. */
    {
        gint32 label;
        g_autofree float *x = read_ok(dataset, 2, &label);

        ck_assert_int_eq(label, 1);
        for (int j = 0; j < 3 * 30; j++)
            ck_assert_msg(fabsf(x[j] * 255.0f - teal[j / 30]) <= 4.0f,
                          "imagefolder JPEG: value %d is %g, want about %u", j, x[j] * 255.0f,
                          teal[j / 30]);
    }
}
END_TEST

typedef enum {
    FOLDER_MISSING,      /* path does not exist */
    FOLDER_EMPTY_CLASS,  /* class b has no images */
    FOLDER_BAD_IMAGE,    /* class b holds a .png that is not one */
    FOLDER_NO_TEST_PATH, /* the test split without test-path */
    FOLDER_NO_PATH,      /* the training split without path */
    FOLDER_NO_CLASSES,   /* path holds no folders */
    FOLDER_TEST_UNKNOWN, /* test-path has a folder path lacks */
    FOLDER_TWO_CHANNELS, /* channels = 2 */
} FolderHow;

/* clang-format off */
static const struct {
    const char *name;
    FolderHow how;
    TpSplit split;
    int code;
    const char *says;
} folder_cases[] = {
    { "a missing folder", FOLDER_MISSING, TP_SPLIT_TRAIN, TP_DATASET_ERROR_IO, NULL },
    { "an empty class folder", FOLDER_EMPTY_CLASS, TP_SPLIT_TRAIN, TP_DATASET_ERROR_INVALID,
      "without PNG or JPEG" },
    { "an unreadable image", FOLDER_BAD_IMAGE, TP_SPLIT_TRAIN, TP_DATASET_ERROR_FORMAT, NULL },
    { "the test split without test-path", FOLDER_NO_TEST_PATH, TP_SPLIT_TEST,
      TP_DATASET_ERROR_INVALID, "key test-path: not set" },
    { "the training split without path", FOLDER_NO_PATH, TP_SPLIT_TRAIN,
      TP_DATASET_ERROR_INVALID, "key path: not set" },
    { "no class folders", FOLDER_NO_CLASSES, TP_SPLIT_TRAIN, TP_DATASET_ERROR_INVALID,
      "no class folders" },
    { "a test folder that is no class", FOLDER_TEST_UNKNOWN, TP_SPLIT_TEST,
      TP_DATASET_ERROR_INVALID, "no class folder of that name" },
    { "two channels", FOLDER_TWO_CHANNELS, TP_SPLIT_TRAIN, TP_DATASET_ERROR_INVALID,
      "key channels" },
};
/* clang-format on */

START_TEST(test_imagefolder_bad_input)
{
    static const int one[] = {0};
    g_autoptr(TpTestDir) dir = tp_test_make_temp_dir();
    g_autofree char *train = g_build_filename(dir, "train", NULL);
    g_autofree char *test = g_build_filename(dir, "test", NULL);
    g_autofree char *blamed = NULL;
    g_autoptr(GPtrArray) keys = NULL;

    if (folder_cases[_i].how != FOLDER_MISSING && folder_cases[_i].how != FOLDER_NO_CLASSES) {
        write_class(train, "a", one, 1, 4, 4);
        write_class(train, "b", one, 1, 4, 4);
        write_class(test, "a", one, 1, 4, 4);
    }
    switch (folder_cases[_i].how) {
    case FOLDER_MISSING:
        blamed = g_strdup(train);
        break;
    case FOLDER_EMPTY_CLASS:
        blamed = make_dir(train, "c");
        g_free(write_file(blamed, "readme.txt", "no images here", 14, FALSE));
        break;
    case FOLDER_BAD_IMAGE:
        blamed = write_file(train, "b/broken.png", "\x89PNG but not really", 19, FALSE);
        break;
    case FOLDER_NO_CLASSES:
        g_free(make_dir(dir, "train"));
        g_free(write_file(train, "lonely.png", "x", 1, FALSE));
        blamed = g_strdup(train);
        break;
    case FOLDER_TEST_UNKNOWN:
        write_class(test, "zebra", one, 1, 4, 4);
        blamed = g_build_filename(test, "zebra", NULL);
        break;
    case FOLDER_NO_TEST_PATH:
    case FOLDER_NO_PATH:
    case FOLDER_TWO_CHANNELS:
        break;
    }
    if (folder_cases[_i].how == FOLDER_NO_TEST_PATH)
        keys = keys_new("path", train, NULL);
    else if (folder_cases[_i].how == FOLDER_NO_PATH)
        keys = keys_new("test-path", test, NULL);
    else if (folder_cases[_i].how == FOLDER_TWO_CHANNELS)
        keys = keys_new("path", train, "channels", "2", NULL);
    else
        keys = keys_new("path", train, "test-path", test, NULL);
    open_fails("imagefolder", keys, folder_cases[_i].split, folder_cases[_i].code,
               folder_cases[_i].name, blamed, folder_cases[_i].says, NULL);
}
END_TEST

#endif /* TP_TEST_WITH_GDK_PIXBUF */

/* Built with gdk-pixbuf, the build must have the imagefolder plugin; without,
 * nothing here may expect it. */
START_TEST(test_imagefolder_built)
{
    g_autoptr(GError) error = NULL;
    const TpPlugin *plugin =
        tp_registry_lookup(tp_test_registry(), TP_PLUGIN_KIND_DATASET, "imagefolder", &error);

#ifdef TP_TEST_WITH_GDK_PIXBUF
    ck_assert_msg(plugin != NULL, "configured with gdk-pixbuf, but: %s",
                  error ? error->message : "?");
#else
    printf("SKIP: imagefolder: configured without gdk-pixbuf\n");
    ck_assert_msg(plugin == NULL, "imagefolder was found, but this test was built without "
                                  "gdk-pixbuf and cannot test it");
#endif
}
END_TEST

/* ------------------------------------------------------------ suite */

static Suite *
datasets_suite(void)
{
    Suite *suite = suite_create("datasets");
    TCase *tc;

    tc = tcase_create("conformance");
    tcase_add_loop_test(tc, test_conformance, 0, count_dataset_plugins());
    suite_add_tcase(suite, tc);

    tc = tcase_create("idx");
    tcase_add_test(tc, test_idx_content);
    tcase_add_test(tc, test_idx_class_names);
    tcase_add_loop_test(tc, test_idx_bad_input, 0, G_N_ELEMENTS(idx_cases));
    tcase_add_test(tc, test_idx_fashion_mnist);
    tcase_add_test(tc, test_idx_hostile_header);
    suite_add_tcase(suite, tc);

    tc = tcase_create("cifar10");
    tcase_add_test(tc, test_cifar_content);
    tcase_add_loop_test(tc, test_cifar_bad_input, 0, G_N_ELEMENTS(cifar_cases));
    suite_add_tcase(suite, tc);

    tc = tcase_create("synthetic");
    tcase_add_test(tc, test_synthetic_determinism);
    tcase_add_test(tc, test_synthetic_learnable);
    suite_add_tcase(suite, tc);

    tc = tcase_create("imagefolder");
    tcase_add_test(tc, test_imagefolder_built);
#ifdef TP_TEST_WITH_GDK_PIXBUF
    tcase_add_test(tc, test_imagefolder_content);
    tcase_add_test(tc, test_imagefolder_resize_and_jpeg);
    tcase_add_loop_test(tc, test_imagefolder_bad_input, 0, G_N_ELEMENTS(folder_cases));
#endif
    suite_add_tcase(suite, tc);

    return suite;
}

int
main(void)
{
    tp_test_init();
    return tp_test_run(datasets_suite());
}
