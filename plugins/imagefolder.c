/* imagefolder.c — the `imagefolder` dataset plugin: a folder with one
 * subfolder per class, holding PNG and JPEG files (the layout of
 * torchvision's ImageFolder), read with gdk-pixbuf.
 *
 * Classes are the subfolders of `path` in byte order of their names (hidden
 * ones skipped); their images are the *.png, *.jpg and *.jpeg files in them
 * (any case, not recursive, in byte order; other files are skipped). The test
 * split reads `test-path`, laid out the same way; its labels are the indices
 * of its folders among the classes of `path` (every test folder must be one
 * of them; a class may have no test folder), or among its own folders when
 * `path` is not set. Each image loses any alpha channel, turns by its EXIF
 * orientation, is resized to height x width with GDK_INTERP_BILINEAR (only
 * when its size differs) and, for one channel, becomes its BT.601 luma
 * (299 R + 587 G + 114 B) / 1000, rounded.
 *
 * Keys:
 *   path       folder of class folders (the training split; required for it)
 *   test-path  the same for the test split (required for it)
 *   channels   1 (gray) or 3 (RGB, the default)
 *   height, width  size images are resized to (default 32x32)
 *
 * open() decodes every image of the split, so a bad file fails at once and
 * epochs cost no decoding; the split then takes n * channels * height * width
 * bytes of memory. read() converts one image to floats.
 */
#include "config.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <string.h>

#include "tp-dataset.h"
#include "tp-params.h"
#include "tp-plugin.h"

static const TpParamSpec imagefolder_params[] = {
    {
        .key = "path",
        .type = TP_PARAM_STRING,
        .default_value = "",
        .help = "folder with one subfolder of PNG/JPEG images per class (training split)",
    },
    {
        .key = "test-path",
        .type = TP_PARAM_STRING,
        .default_value = "",
        .help = "the same layout for the test split",
    },
    {
        .key = "channels",
        .type = TP_PARAM_INT,
        .default_value = "3",
        .min = 1,
        .max = 3,
        .help = "1 (gray) or 3 (RGB)",
    },
    {
        .key = "height",
        .type = TP_PARAM_INT,
        .default_value = "32",
        .min = 1,
        .max = 4096,
        .help = "height images are resized to",
    },
    {
        .key = "width",
        .type = TP_PARAM_INT,
        .default_value = "32",
        .min = 1,
        .max = 4096,
        .help = "width images are resized to",
    },
    {NULL},
};

/* One open split. */
typedef struct {
    int channels, height, width;
    gsize n;
    GByteArray *pixels; /* n images, channel-major bytes */
    GArray *labels;     /* n gint32 */
    char **class_names; /* NULL-terminated */
    int n_classes;
} Folder;

static void
folder_free(Folder *folder)
{
    if (folder == NULL)
        return;
    g_clear_pointer(&folder->pixels, g_byte_array_unref);
    g_clear_pointer(&folder->labels, g_array_unref);
    g_strfreev(folder->class_names);
    g_free(folder);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Folder, folder_free)

/* ---------------------------------------------------------------- listing */

/* Copies local into error with `code`, naming path unless local does. */
static void
set_file_error(GError **error, int code, const char *path, const GError *local)
{
    if (strstr(local->message, path) != NULL)
        g_set_error_literal(error, TP_DATASET_ERROR, code, local->message);
    else
        g_set_error(error, TP_DATASET_ERROR, code, "%s: %s", path, local->message);
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static gboolean
is_image_name(const char *name)
{
    g_autofree char *lower = g_ascii_strdown(name, -1);

    return g_str_has_suffix(lower, ".png") || g_str_has_suffix(lower, ".jpg") ||
           g_str_has_suffix(lower, ".jpeg");
}

/* The entries of dir that are folders (want_dirs) or image files, without
 * hidden ones, sorted (a new NULL-terminated array of names); NULL with
 * TP_DATASET_ERROR_IO naming dir when it cannot be listed. */
static char **
list_dir(const char *dir, gboolean want_dirs, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &local);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *name;

    if (d == NULL) {
        set_file_error(error, TP_DATASET_ERROR_IO, dir, local);
        return NULL;
    }
    while ((name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        gboolean is_dir = g_file_test(path, G_FILE_TEST_IS_DIR);

        if (name[0] == '.')
            continue;
        if (want_dirs ? is_dir : (!is_dir && is_image_name(name)))
            g_ptr_array_add(names, g_strdup(name));
        else if (!want_dirs && !is_dir)
            g_debug("%s: not a PNG or JPEG name, skipped", path);
    }
    g_ptr_array_sort(names, compare_names);
    g_ptr_array_add(names, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&names), FALSE);
}

/* ---------------------------------------------------------------- decoding */

/* Decodes the image at path, converted as the file's comment says, and
 * appends its channels * height * width bytes to folder->pixels. A file that
 * is not a readable PNG or JPEG is TP_DATASET_ERROR_FORMAT (_IO when it cannot
 * be read at all), naming path. */
static gboolean
append_image(Folder *folder, const char *path, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(GdkPixbuf) decoded = gdk_pixbuf_new_from_file(path, &local);
    g_autoptr(GdkPixbuf) turned = NULL;
    g_autoptr(GdkPixbuf) sized = NULL;
    const gsize plane = (gsize)folder->height * folder->width;
    const guint8 *src;
    guint8 *dst;
    int stride, step;

    if (decoded == NULL) {
        set_file_error(
            error, local->domain == G_FILE_ERROR ? TP_DATASET_ERROR_IO : TP_DATASET_ERROR_FORMAT,
            path, local);
        return FALSE;
    }
    if (gdk_pixbuf_get_colorspace(decoded) != GDK_COLORSPACE_RGB ||
        gdk_pixbuf_get_bits_per_sample(decoded) != 8 || gdk_pixbuf_get_n_channels(decoded) < 3) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_FORMAT,
                    "%s: not an 8-bit RGB image after decoding", path);
        return FALSE;
    }
    if (folder->pixels->len + plane * folder->channels > G_MAXUINT) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                    "%s: the split holds more than %u bytes of images; use a smaller size", path,
                    G_MAXUINT);
        return FALSE;
    }
    turned = gdk_pixbuf_apply_embedded_orientation(decoded);
    if (turned != NULL && gdk_pixbuf_get_width(turned) == folder->width &&
        gdk_pixbuf_get_height(turned) == folder->height)
        sized = g_object_ref(turned);
    else if (turned != NULL)
        sized = gdk_pixbuf_scale_simple(turned, folder->width, folder->height, GDK_INTERP_BILINEAR);
    if (sized == NULL) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_IO,
                    "%s: out of memory resizing to %dx%d", path, folder->width, folder->height);
        return FALSE;
    }

    src = gdk_pixbuf_read_pixels(sized);
    stride = gdk_pixbuf_get_rowstride(sized);
    step = gdk_pixbuf_get_n_channels(sized);
    g_byte_array_set_size(folder->pixels, folder->pixels->len + (guint)(plane * folder->channels));
    dst = folder->pixels->data + folder->pixels->len - plane * folder->channels;
    for (int y = 0; y < folder->height; y++)
        for (int x = 0; x < folder->width; x++) {
            const guint8 *px = src + (gsize)y * stride + (gsize)x * step;
            const gsize at = (gsize)y * folder->width + x;

            if (folder->channels == 1) {
                dst[at] = (guint8)((299u * px[0] + 587u * px[1] + 114u * px[2] + 500u) / 1000u);
            } else {
                for (int k = 0; k < 3; k++)
                    dst[k * plane + at] = px[k];
            }
        }
    return TRUE;
}

/* Appends every image of the class folder dir with label `label`; a folder
 * without any is TP_DATASET_ERROR_INVALID naming it. */
static gboolean
append_class(Folder *folder, const char *dir, gint32 label, GError **error)
{
    g_auto(GStrv) files = list_dir(dir, FALSE, error);

    if (files == NULL)
        return FALSE;
    if (files[0] == NULL) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                    "%s: class folder without PNG or JPEG images", dir);
        return FALSE;
    }
    for (guint i = 0; files[i] != NULL; i++) {
        g_autofree char *path = g_build_filename(dir, files[i], NULL);

        if (!append_image(folder, path, error))
            return FALSE;
        g_array_append_val(folder->labels, label);
        folder->n++;
    }
    return TRUE;
}

/* ---------------------------------------------------------------- the vtable */

/* Lists the classes and decodes every image of the split (see the file's
 * comment). */
static gpointer
imagefolder_open(const TpParams *params, TpSplit split, GError **error)
{
    const char *path = tp_params_get_string(params, "path");
    const char *test_path = tp_params_get_string(params, "test-path");
    const char *root = split == TP_SPLIT_TEST ? test_path : path;
    g_autoptr(Folder) folder = g_new0(Folder, 1);
    g_auto(GStrv) dirs = NULL;

    folder->channels = (int)tp_params_get_int(params, "channels");
    folder->height = (int)tp_params_get_int(params, "height");
    folder->width = (int)tp_params_get_int(params, "width");
    if (folder->channels == 2) {
        g_set_error_literal(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                            "key channels: 2 is neither 1 (gray) nor 3 (RGB)");
        return NULL;
    }
    if (root[0] == '\0') {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                    "key %s: not set: the %s split needs a folder with one subfolder of "
                    "images per class",
                    split == TP_SPLIT_TEST ? "test-path" : "path",
                    split == TP_SPLIT_TEST ? "test" : "training");
        return NULL;
    }

    folder->class_names = list_dir(path[0] != '\0' ? path : root, TRUE, error);
    if (folder->class_names == NULL)
        return NULL;
    folder->n_classes = (int)g_strv_length(folder->class_names);
    if (folder->n_classes == 0) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                    "%s: no class folders in it (one subfolder of images per class)",
                    path[0] != '\0' ? path : root);
        return NULL;
    }
    /* The folders to read: the classes themselves, or those of test-path. */
    dirs = split == TP_SPLIT_TRAIN || path[0] == '\0' ? g_strdupv(folder->class_names)
                                                      : list_dir(root, TRUE, error);
    if (dirs == NULL)
        return NULL;
    if (dirs[0] == NULL) {
        g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                    "%s: no class folders in it (one subfolder of images per class)", root);
        return NULL;
    }

    folder->pixels = g_byte_array_new();
    folder->labels = g_array_new(FALSE, FALSE, sizeof(gint32));
    for (guint i = 0; dirs[i] != NULL; i++) {
        g_autofree char *dir = g_build_filename(root, dirs[i], NULL);
        gint32 label = 0;

        while (label < folder->n_classes && !g_str_equal(folder->class_names[label], dirs[i]))
            label++;
        if (label == folder->n_classes) {
            g_set_error(error, TP_DATASET_ERROR, TP_DATASET_ERROR_INVALID,
                        "%s: no class folder of that name in %s", dir, path);
            return NULL;
        }
        if (!append_class(folder, dir, label, error))
            return NULL;
    }
    g_debug("%s: %" G_GSIZE_FORMAT " images in %d classes", root, folder->n, folder->n_classes);
    return g_steal_pointer(&folder);
}

static void
imagefolder_close(gpointer self)
{
    folder_free(self);
}

static void
imagefolder_describe(gpointer self, TpDatasetInfo *out_info)
{
    const Folder *folder = self;

    out_info->n_samples = folder->n;
    out_info->channels = folder->channels;
    out_info->height = folder->height;
    out_info->width = folder->width;
    out_info->n_classes = folder->n_classes;
    out_info->class_names = (const char *const *)folder->class_names;
}

/* Bytes / 255 into out; never fails (the images were decoded at open). */
static gboolean
imagefolder_read(gpointer self, gsize index, float *out, gint32 *out_label, GError **error)
{
    const Folder *folder = self;
    const gsize size = (gsize)folder->channels * folder->height * folder->width;
    const guint8 *pixels = folder->pixels->data + index * size;

    for (gsize j = 0; j < size; j++)
        out[j] = (float)pixels[j] / 255.0f;
    *out_label = g_array_index(folder->labels, gint32, index);
    return TRUE;
}

/* ---------------------------------------------------------------- descriptor */

static const TpDatasetVTable imagefolder_vtable = {
    /* .open =     */ imagefolder_open,
    /* .close =    */ imagefolder_close,
    /* .describe = */ imagefolder_describe,
    /* .read =     */ imagefolder_read,
};

static const TpPluginInfo imagefolder_info = {
    /* .abi_major =   */ TP_PLUGIN_ABI_MAJOR,
    /* .struct_size = */ sizeof(TpPluginInfo),
    /* .kind =        */ TP_PLUGIN_KIND_DATASET,
    /* .name =        */ "imagefolder",
    /* .version =     */ "1.0",
    /* .description = */ "PNG and JPEG images in one subfolder per class, read with gdk-pixbuf",
    /* .license =     */ "MIT",
    /* .vtable =      */ &imagefolder_vtable,
    /* .vtable_size = */ sizeof(TpDatasetVTable),
    /* .params =      */ imagefolder_params,
};

/* The plugin's one exported symbol. */
TP_PLUGIN_EXPORT const TpPluginInfo *
tp_plugin_describe(void)
{
    return &imagefolder_info;
}
