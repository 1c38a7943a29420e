/* idx.c — the `idx` dataset plugin: MNIST-format (IDX) image and label files,
 * as MNIST and Fashion-MNIST ship them, gzip-compressed or plain.
 *
 * Format (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"): big-endian
 * 32-bit words. Images: magic 0x00000803 (unsigned bytes, 3 dimensions),
 * count, rows, columns, then count * rows * columns pixels, row-major.
 * Labels: magic 0x00000801, count, then count label bytes.
 *
 * Keys:
 *   path          folder of the four files (default /usr/share/datasets/fashion-mnist,
 *                 Debian's dataset-fashion-mnist)
 *   train-images, train-labels, test-images, test-labels
 *                 file names in path (an absolute name is used as is); a name
 *                 ending in .gz is gunzipped while it is read (GIO's GZlibDecompressor)
 *   classes       comma-separated class names, in label order (optional)
 *   max-bytes     the most bytes one file's header may promise (default 4 GiB):
 *                 a larger claim fails at once, before any data is read, so a
 *                 damaged header or a gzip bomb costs nothing
 *
 * Classes: the names in `classes` when set (their count must exceed every
 * label); else, when the files are Fashion-MNIST (path is the default, or the
 * images file's folder name contains "fashion"), its ten names; else the class
 * count is the largest label + 1 and the names are the labels in decimal
 * ("0", "1", ...), so two splits of MNIST-like data agree whenever each split
 * holds its highest class (set `classes` to pin them otherwise).
 *
 * open() reads the whole split into memory as bytes (47 MB for Fashion-MNIST's
 * training images) and checks it; read() converts one sample to floats.
 */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "tp-dataset.h"
#include "tp-params.h"
#include "tp-plugin.h"

#define IDX_DEFAULT_PATH "/usr/share/datasets/fashion-mnist"
#define IDX_IMAGES_MAGIC 0x00000803u /* unsigned bytes, 3 dimensions */
#define IDX_LABELS_MAGIC 0x00000801u /* unsigned bytes, 1 dimension */
#define IDX_MAX_SIDE 65535u          /* rows and columns above this are not images */
#define IDX_CHUNK ((gsize)16 << 20)  /* read granularity, so a lying header costs little */

static const TpParamSpec idx_params[] = {
    {
        .key = "path",
        .type = TP_PARAM_STRING,
        .default_value = IDX_DEFAULT_PATH,
        .help = "folder of the IDX files (default: Debian's dataset-fashion-mnist)",
    },
    {
        .key = "train-images",
        .type = TP_PARAM_STRING,
        .default_value = "train-images-idx3-ubyte.gz",
        .help = "training images file in path; .gz is gunzipped",
    },
    {
        .key = "train-labels",
        .type = TP_PARAM_STRING,
        .default_value = "train-labels-idx1-ubyte.gz",
        .help = "training labels file in path; .gz is gunzipped",
    },
    {
        .key = "test-images",
        .type = TP_PARAM_STRING,
        .default_value = "t10k-images-idx3-ubyte.gz",
        .help = "test images file in path; .gz is gunzipped",
    },
    {
        .key = "test-labels",
        .type = TP_PARAM_STRING,
        .default_value = "t10k-labels-idx1-ubyte.gz",
        .help = "test labels file in path; .gz is gunzipped",
    },
    {
        .key = "max-bytes",
        .type = TP_PARAM_INT,
        .default_value = "4294967296",
        .min = 1,
        .max = 4611686018427387904.0,
        .help = "most bytes of data one file's header may promise (default 4 GiB)",
    },
    {
        .key = "classes",
        .type = TP_PARAM_STRING,
        .default_value = "",
        .help =
            "comma-separated class names in label order (default: Fashion-MNIST's, or 0, 1, ...)",
    },
    {NULL},
};

static const char *const fashion_names[] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

/* One open split. */
typedef struct {
    guint8 *pixels; /* n * rows * cols */
    guint8 *labels; /* n */
    gsize n;
    int rows, cols;
    int n_classes;
    char **class_names; /* n_classes names, NULL-terminated */
} Idx;

static void
idx_free(Idx *idx)
{
    if (idx == NULL)
        return;
    g_free(idx->pixels);
    g_free(idx->labels);
    g_strfreev(idx->class_names);
    g_free(idx);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Idx, idx_free)

/* ---------------------------------------------------------------- reading a file */

/* Sets error from a GIO failure on path: TP_DATASET_ERROR_FORMAT for bad
 * gzip data, TP_DATASET_ERROR_IO otherwise; the message names path. */
static void
set_read_error(GError **error, const char *path, const GError *local)
{
    if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_INVALID_DATA) ||
        g_error_matches(local, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT))
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_FORMAT,
                    "%s: corrupt or truncated gzip data (%s)", path, local->message);
    else if (strstr(local->message, path) != NULL)
        g_set_error_literal(error, TP_DATASET_ERROR, TP_DATASET_ERROR_IO, local->message);
    else
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_IO, "%s: %s", path, local->message);
}

/* Reads up to len bytes; *out_got says how many came before the end of the
 * stream. FALSE with error (naming path) on a read failure. */
static gboolean
read_bytes(GInputStream *stream, const char *path, void *buf, gsize len, gsize *out_got,
           GError **error)
{
    g_autoptr(GError) local = NULL;

    if (!g_input_stream_read_all(stream, buf, len, out_got, NULL, &local)) {
        set_read_error(error, path, local);
        return FALSE;
    }
    return TRUE;
}

/* Says what the first word of a file that is not what we expect might be. */
static const char *
magic_hint(guint32 found, guint32 want)
{
    if ((found >> 16) == 0x1f8b)
        return " (gzip data: give the file a .gz name)";
    if (found == IDX_LABELS_MAGIC && want == IDX_IMAGES_MAGIC)
        return " (a label file where images belong?)";
    if (found == IDX_IMAGES_MAGIC && want == IDX_LABELS_MAGIC)
        return " (an image file where labels belong?)";
    return "";
}

/* Reads the IDX file at path, which must have magic number `magic` (its low
 * byte is the number of dimensions, 1 or 3), gunzipping it when path ends in
 * .gz. On success *out_data (owned) holds the product of the dimensions in
 * bytes and out_dims the dimensions. Errors name path: TP_DATASET_ERROR_IO
 * when it cannot be read; _FORMAT for a wrong magic number, a file shorter
 * (truncated) or longer than its header says, bad gzip data; _INVALID for a
 * dimension that is 0 or too large. */
static gboolean
read_idx_file(const char *path, guint32 magic, guint64 max_bytes, guint32 *out_dims,
              guint8 **out_data, GError **error)
{
    const guint n_dims = magic & 0xff;
    g_autoptr(GFile) file = g_file_new_for_path(path);
    g_autoptr(GInputStream) stream = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree guint8 *data = NULL;
    guint8 word[4 * 3];
    guint32 found, dims[3] = {0};
    guint64 total = 1;
    gsize got, have = 0, capacity;
    guint8 extra;

    stream = G_INPUT_STREAM(g_file_read(file, NULL, &local));
    if (stream == NULL) {
        set_read_error(error, path, local);
        return FALSE;
    }
    if (g_str_has_suffix(path, ".gz")) {
        g_autoptr(GZlibDecompressor) gunzip =
            g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
        GInputStream *plain = g_converter_input_stream_new(stream, G_CONVERTER(gunzip));

        g_object_unref(stream);
        stream = plain;
    }

    if (!read_bytes(stream, path, word, 4, &got, error))
        return FALSE;
    if (got < 4) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_FORMAT,
                    "%s: truncated: %" G_GSIZE_FORMAT " bytes, shorter than an IDX header", path,
                    got);
        return FALSE;
    }
    memcpy(&found, word, 4);
    found = GUINT32_FROM_BE(found);
    if (found != magic) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_FORMAT,
                    "%s: magic number 0x%08x, an IDX %s file has 0x%08x%s", path, found,
                    n_dims == 3 ? "images" : "labels", magic, magic_hint(found, magic));
        return FALSE;
    }
    if (!read_bytes(stream, path, word, 4 * n_dims, &got, error))
        return FALSE;
    if (got < 4 * n_dims) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_FORMAT,
                    "%s: truncated: the file ends inside its header", path);
        return FALSE;
    }
    for (guint d = 0; d < n_dims; d++) {
        memcpy(&dims[d], word + 4 * d, 4);
        dims[d] = GUINT32_FROM_BE(dims[d]);
        if (dims[d] == 0 || (d > 0 && dims[d] > IDX_MAX_SIDE)) {
            g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                        "%s: dimension %u of the header is %u, expected 1 to %u", path, d + 1,
                        dims[d], d == 0 ? G_MAXUINT32 : IDX_MAX_SIDE);
            return FALSE;
        }
        total *= dims[d];
    }
    if (total > max_bytes || total > G_MAXSSIZE) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                    "%s: the header promises %" G_GUINT64_FORMAT
                    " bytes of data, more than max-bytes (%" G_GUINT64_FORMAT ")",
                    path, total, max_bytes);
        return FALSE;
    }

    /* Grow the buffer with the data that actually arrives: a header can lie. */
    capacity = MIN((gsize)total, IDX_CHUNK);
    data = g_malloc(capacity);
    while (have < total) {
        if (have == capacity) {
            guint8 *grown;
            capacity = MIN((gsize)total, capacity * 2);
            if ((grown = g_try_realloc(data, capacity)) == NULL) {
                g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_IO,
                            "%s: no memory for %" G_GSIZE_FORMAT " bytes of its data", path,
                            capacity);
                return FALSE;
            }
            data = grown;
        }
        if (!read_bytes(stream, path, data + have, capacity - have, &got, error))
            return FALSE;
        if (got == 0)
            break;
        have += got;
    }
    if (have < total) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_FORMAT,
                    "%s: truncated: the header promises %" G_GUINT64_FORMAT
                    " bytes of data, the file holds %" G_GSIZE_FORMAT,
                    path, total, have);
        return FALSE;
    }
    if (!read_bytes(stream, path, &extra, 1, &got, error))
        return FALSE;
    if (got != 0) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_FORMAT,
                    "%s: longer than its header says (%" G_GUINT64_FORMAT " bytes of data)", path,
                    total);
        return FALSE;
    }
    memcpy(out_dims, dims, sizeof(guint32) * n_dims);
    *out_data = g_steal_pointer(&data);
    return TRUE;
}

/* ---------------------------------------------------------------- classes */

/* The names in `classes` (comma-separated, trimmed), a new NULL-terminated
 * array; NULL when the key is empty. An empty or repeated name is
 * TP_DATASET_ERROR_INVALID (*out_bad set). */
static char **
parse_class_names(const char *spec, gboolean *out_bad, GError **error)
{
    g_auto(GStrv) names = NULL;

    *out_bad = FALSE;
    if (spec[0] == '\0')
        return NULL;
    names = g_strsplit(spec, ",", -1);
    for (guint i = 0; names[i] != NULL; i++) {
        g_strstrip(names[i]);
        if (names[i][0] == '\0') {
            g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                        "key classes: name %u of \"%s\" is empty", i + 1, spec);
            *out_bad = TRUE;
            return NULL;
        }
        for (guint j = 0; j < i; j++)
            if (g_str_equal(names[i], names[j])) {
                g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                            "key classes: \"%s\" is named twice", names[i]);
                *out_bad = TRUE;
                return NULL;
            }
    }
    return g_steal_pointer(&names);
}

/* Whether the files are Fashion-MNIST: the default folder, or a folder of
 * the images file whose name contains "fashion" (any case). */
static gboolean
is_fashion(const char *folder, const char *images_path)
{
    g_autofree char *dir = g_path_get_dirname(images_path);
    g_autofree char *base = g_path_get_basename(dir);
    g_autofree char *lower = g_ascii_strdown(base, -1);

    return g_str_equal(folder, IDX_DEFAULT_PATH) || strstr(lower, "fashion") != NULL;
}

/* Sets idx->n_classes and idx->class_names (see the file's comment) and
 * checks every label against them; errors name labels_path. */
static gboolean
set_classes(Idx *idx, const TpParams *params, const char *images_path, const char *labels_path,
            GError **error)
{
    const char *folder = tp_params_get_string(params, "path");
    gboolean bad;
    char **names = parse_class_names(tp_params_get_string(params, "classes"), &bad, error);
    const gboolean explicit = names != NULL;
    const char *source = "`classes` names only";
    int max_label = 0;

    if (bad)
        return FALSE;
    for (gsize i = 0; i < idx->n; i++)
        max_label = MAX(max_label, idx->labels[i]);

    if (names == NULL && is_fashion(folder, images_path)) {
        names = g_new0(char *, G_N_ELEMENTS(fashion_names) + 1);
        for (guint c = 0; c < G_N_ELEMENTS(fashion_names); c++)
            names[c] = g_strdup(fashion_names[c]);
        source = "Fashion-MNIST has";
    }
    if (names == NULL) {
        names = g_new0(char *, max_label + 2);
        for (int c = 0; c <= max_label; c++)
            names[c] = g_strdup_printf("%d", c);
    }
    idx->class_names = names;
    idx->n_classes = (int)g_strv_length(names);
    if (max_label >= idx->n_classes) {
        gsize at = 0;

        while (idx->labels[at] != max_label)
            at++;
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                    "%s: label %d of sample %" G_GSIZE_FORMAT " is out of range: %s %d classes%s",
                    labels_path, max_label, at, source, idx->n_classes,
                    explicit ? "" : " (set `classes` to name them all)");
        return FALSE;
    }
    return TRUE;
}

/* ---------------------------------------------------------------- the vtable */

/* path/name, or name when it is absolute (owned). */
static char *
file_in(const char *folder, const char *name)
{
    if (g_path_is_absolute(name) || folder[0] == '\0')
        return g_strdup(name);
    return g_build_filename(folder, name, NULL);
}

/* Reads and checks both files of the split; see the file's comment. */
static gpointer
idx_open(const TpParams *params, TpSplit split, GError **error)
{
    const gboolean test = split == TP_SPLIT_TEST;
    const char *folder = tp_params_get_string(params, "path");
    g_autofree char *images_path =
        file_in(folder, tp_params_get_string(params, test ? "test-images" : "train-images"));
    g_autofree char *labels_path =
        file_in(folder, tp_params_get_string(params, test ? "test-labels" : "train-labels"));
    g_autoptr(Idx) idx = g_new0(Idx, 1);
    guint32 image_dims[3], label_dims[1];

    const guint64 max_bytes = (guint64)tp_params_get_int(params, "max-bytes");

    if (!read_idx_file(images_path, IDX_IMAGES_MAGIC, max_bytes, image_dims, &idx->pixels,
                       error) ||
        !read_idx_file(labels_path, IDX_LABELS_MAGIC, max_bytes, label_dims, &idx->labels, error))
        return NULL;
    if (label_dims[0] != image_dims[0]) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                    "%s holds %u labels but %s holds %u images", labels_path, label_dims[0],
                    images_path, image_dims[0]);
        return NULL;
    }
    idx->n = image_dims[0];
    idx->rows = (int)image_dims[1];
    idx->cols = (int)image_dims[2];
    if (!set_classes(idx, params, images_path, labels_path, error))
        return NULL;
    g_debug("%s: %" G_GSIZE_FORMAT " images of %dx%d, %d classes", images_path, idx->n, idx->rows,
            idx->cols, idx->n_classes);
    return g_steal_pointer(&idx);
}

static void
idx_close(gpointer self)
{
    idx_free(self);
}

static void
idx_describe(gpointer self, TpDatasetInfo *out_info)
{
    const Idx *idx = self;

    out_info->n_samples = idx->n;
    out_info->channels = 1;
    out_info->height = idx->rows;
    out_info->width = idx->cols;
    out_info->n_classes = idx->n_classes;
    out_info->class_names = (const char *const *)idx->class_names;
}

/* Pixels / 255 into out; never fails (everything was checked at open). */
static gboolean
idx_read(gpointer self, gsize index, float *out, gint32 *out_label, GError **error)
{
    const Idx *idx = self;
    const gsize size = (gsize)idx->rows * idx->cols;
    const guint8 *pixels = idx->pixels + index * size;

    for (gsize j = 0; j < size; j++)
        out[j] = (float)pixels[j] / 255.0f;
    *out_label = idx->labels[index];
    return TRUE;
}

/* ---------------------------------------------------------------- descriptor */

static const TpDatasetVTable idx_vtable = {
    /* .open =     */ idx_open,
    /* .close =    */ idx_close,
    /* .describe = */ idx_describe,
    /* .read =     */ idx_read,
};

static const TpPluginInfo idx_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_DATASET,
    /* .name =        */ "idx",
    /* .version =     */ "1.0",
    /* .description = */ "MNIST-format (IDX) files, gzipped or plain: MNIST, Fashion-MNIST",
    /* .license =     */ "MIT",
    /* .vtable =      */ &idx_vtable,
    /* .vtable_size = */ sizeof(TpDatasetVTable),
    /* .params =      */ idx_params,
};

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &idx_info;
}
