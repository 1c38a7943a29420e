/* cmd-explain.c — `taskprune explain`: what a model looks at, by layer-wise
 * relevance propagation with the lrp criterion's rules and canonization
 * (engine/tp-explain.h).
 *
 *   explain MODEL.onnx IMAGE...       one heatmap PNG per image (read with
 *                                     gdk-pixbuf, resized to the model's input)
 *   explain MODEL.onnx --dataset P    --samples N images of each of --classes
 *                                     from the test split
 *   explain MODEL.onnx --filters ...  the class × filter relevance of every
 *                                     Conv, as CSV and a heatmap PNG
 *
 * A heatmap is the relevance at the input summed over its channels, scaled by
 * its largest |value| (symmetric around zero) and drawn red (for the class),
 * white (0), blue (against); --overlay blends it over the image, and with
 * more than one image grid.png shows them all. --npy writes the raw
 * relevance [N, C, H, W] as relevance.npy (NumPy format 1.0, float32).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef TP_HAVE_GDK_PIXBUF
#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#endif

#include "tp-cli-input.h"
#include "tp-cli-options.h"
#include "tp-cli.h"
#include "tp-explain.h"
#include "tp-normalization.h"
#include "tp-loader.h"
#include "tp-onnx.h"

static char *class_name, *rule_name, *output_dir, *dataset_name, *classes_list, *backend_name;
static char **data_pairs;
static gboolean predicted, overlay, write_npy, filters;
static int samples = 4;

static const GOptionEntry options[] = {
    {"class", 0, 0, G_OPTION_ARG_STRING, &class_name,
     "Explain this class (a model class name or output index)", "NAME"},
    {"predicted", 0, 0, G_OPTION_ARG_NONE, &predicted,
     "Explain each image's predicted class (the default for image files)", NULL},
    {"rule", 0, 0, G_OPTION_ARG_STRING, &rule_name,
     "composite (default), epsilon, zplus or alpha2beta1", "RULE"},
    {"overlay", 0, 0, G_OPTION_ARG_NONE, &overlay, "Draw heatmaps over the images", NULL},
    {"npy", 0, 0, G_OPTION_ARG_NONE, &write_npy, "Also write the raw relevance (relevance.npy)",
     NULL},
    {"filters", 0, 0, G_OPTION_ARG_NONE, &filters,
     "Write the class x filter relevance of every Conv (needs --dataset and --classes)", NULL},
    {"dataset", 'd', 0, G_OPTION_ARG_STRING, &dataset_name, "Take images from this dataset plugin",
     "PLUGIN"},
    {"data", 'D', 0, G_OPTION_ARG_STRING_ARRAY, &data_pairs,
     "A dataset key, e.g. -D path=/data (repeatable)", "KEY=VALUE"},
    {"classes", 'k', 0, G_OPTION_ARG_STRING, &classes_list,
     "Dataset classes to take images of, by name, comma-separated (default: the model's)", "NAMES"},
    {"samples", 0, 0, G_OPTION_ARG_INT, &samples, "Test images per class (default 4)", "N"},
    TP_CLI_OPTION_MEAN,
    TP_CLI_OPTION_STD,
    {"backend", 0, 0, G_OPTION_ARG_STRING, &backend_name, "Backend (default cpu)", "NAME"},
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output_dir, "Write the pictures here", "DIR"},
    {NULL},
};

#ifdef TP_HAVE_GDK_PIXBUF

/* What is being explained: images (normalized, [n, C, H, W]) with a name
 * and a class to start at (-1: predicted) each. */
typedef struct {
    int n;
    float *x;
    GPtrArray *names; /* of char * */
    gint32 *start;
} Batch;

static void
batch_clear(Batch *b)
{
    g_free(b->x);
    g_clear_pointer(&b->names, g_ptr_array_unref);
    g_free(b->start);
}

/* The model output called name (a class name, else an output index). */
static int
find_output(TpModel *model, const char *name, GError **error)
{
    const char *const *names = tp_model_get_class_names(model);
    const int outputs = tp_model_get_shape(model, tp_model_get_logits(model))->dim[0];
    char *end;
    gint64 k;

    for (int i = 0; names != NULL && names[i] != NULL; i++)
        if (g_str_equal(names[i], name))
            return i;
    k = g_ascii_strtoll(name, &end, 10);
    if (*name != '\0' && *end == '\0' && k >= 0 && k < outputs)
        return (int)k;
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "'%s' is neither a class name of the model nor an output index below %d", name,
                outputs);
    return -1;
}

/* Reads image files into b, resized to the model's input. */
static gboolean
read_images(TpModel *model, char **paths, int n, Batch *b, GError **error)
{
    const gsize per = tp_cli_numel(tp_model_get_shape(model, 0));

    b->n = n;
    b->x = g_new(float, (gsize)n * per);
    b->names = g_ptr_array_new_with_free_func(g_free);
    b->start = g_new(gint32, n);
    for (int i = 0; i < n; i++) {
        g_autofree char *base = g_path_get_basename(paths[i]);
        char *dot = strrchr(base, '.');

        if (!tp_cli_read_image(model, paths[i], b->x + (gsize)i * per, error))
            return FALSE;
        if (dot != NULL && dot != base)
            *dot = '\0';
        g_ptr_array_add(b->names, g_steal_pointer(&base));
        b->start[i] = -1;
    }
    return TRUE;
}

/* The dataset classes to take (by name), each with the model output of the
 * same name (or the same index when the model has no names). */
static gboolean
pick_classes(TpModel *model, TpDataset *dataset, int **out_dataset, int **out_model, int *out_n,
             GError **error)
{
    const char *const *model_names = tp_model_get_class_names(model);
    const int outputs = tp_model_get_shape(model, tp_model_get_logits(model))->dim[0];
    g_auto(GStrv) wanted = NULL;
    g_autofree int *ds = NULL;
    g_autofree int *out = NULL;
    int n;

    if (classes_list != NULL)
        wanted = g_strsplit(classes_list, ",", -1);
    else if (model_names != NULL)
        wanted = g_strdupv((char **)model_names);
    else {
        wanted = g_new0(char *, outputs + 1);
        for (int k = 0; k < outputs; k++)
            wanted[k] = g_strdup_printf("%d", k);
    }
    n = (int)g_strv_length(wanted);
    ds = g_new(int, n);
    out = g_new(int, n);
    for (int i = 0; i < n; i++) {
        char *end;
        gint64 k = g_ascii_strtoll(wanted[i], &end, 10);

        ds[i] = tp_dataset_find_class(dataset, wanted[i]);
        if (ds[i] < 0 && *end == '\0' && k >= 0 && k < dataset->meta.n_classes)
            ds[i] = (int)k;
        if (ds[i] < 0) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "--classes: '%s' is not a class of dataset '%s'", wanted[i],
                        dataset->info->name);
            return FALSE;
        }
        if (model_names == NULL && dataset->meta.class_names != NULL)
            out[i] = ds[i] < outputs ? ds[i] : -1;
        else
            out[i] = find_output(
                model, dataset->meta.class_names ? dataset->meta.class_names[ds[i]] : wanted[i],
                NULL);
        if (out[i] < 0) {
            g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "--classes: the model has no output for class '%s'", wanted[i]);
            return FALSE;
        }
    }
    *out_dataset = g_steal_pointer(&ds);
    *out_model = g_steal_pointer(&out);
    *out_n = n;
    return TRUE;
}

/* Reads `samples` test images of each class into b, in class order; each
 * starts at its own class. */
static gboolean
read_dataset(TpModel *model, TpDataset *dataset, const int *ds, const int *outputs, int n_classes,
             Batch *b, GError **error)
{
    const gsize per = tp_cli_numel(tp_model_get_shape(model, 0));
    TpLoaderConfig config = {.classes = ds,
                             .n_classes = n_classes,
                             .part = TP_LOADER_ALL,
                             .batch_size = 256,
                             .samples_per_class = samples,
                             .seed = 1};
    g_autoptr(TpLoader) loader = NULL;
    g_autoptr(GArray) x = g_array_new(FALSE, FALSE, sizeof(float));
    g_autoptr(GArray) start = g_array_new(FALSE, FALSE, sizeof(gint32));
    const float *images;
    const gint32 *labels;
    int got;
    char buf[16];

    tp_model_get_normalization(model, &config.mean, &config.std);
    loader = tp_loader_new(dataset, &config, error);
    if (loader == NULL)
        return FALSE;
    b->names = g_ptr_array_new_with_free_func(g_free);
    tp_loader_start_epoch(loader, 0);
    while (tp_loader_next(loader, &images, &labels, &got, error)) {
        g_array_append_vals(x, images, (guint)(got * per));
        for (int i = 0; i < got; i++) {
            gint32 k = outputs[labels[i]];

            g_array_append_val(start, k);
            g_ptr_array_add(b->names, g_strdup_printf("%03u-%s", b->names->len,
                                                      tp_cli_output_name(model, k, buf, sizeof(buf))));
        }
    }
    if (error != NULL && *error != NULL)
        return FALSE;
    b->n = (int)start->len;
    b->x = (float *)g_array_free(g_steal_pointer(&x), FALSE);
    b->start = (gint32 *)g_array_free(g_steal_pointer(&start), FALSE);
    return TRUE;
}

/* Saves pixbuf as a PNG at path, through a temporary file and a rename. */
static gboolean
save_png(GdkPixbuf *pixbuf, const char *path, GError **error)
{
    g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);

    if (!gdk_pixbuf_save(pixbuf, tmp, "png", error, NULL))
        return FALSE;
    if (g_rename(tmp, path) != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        g_unlink(tmp);
        return FALSE;
    }
    return TRUE;
}

/* A pixbuf of w × h RGB triples, each cell drawn as a zoom × zoom square. */
static GdkPixbuf *
pixbuf_from_rgb(const guint8 *rgb, int w, int h, int zoom)
{
    g_autoptr(GdkPixbuf) small = gdk_pixbuf_new(GDK_COLORSPACE_RGB, FALSE, 8, w, h);
    guint8 *px = gdk_pixbuf_get_pixels(small);
    const int stride = gdk_pixbuf_get_rowstride(small);

    for (int y = 0; y < h; y++)
        memcpy(px + (gsize)y * stride, rgb + (gsize)y * w * 3, (gsize)w * 3);
    return gdk_pixbuf_scale_simple(small, w * zoom, h * zoom, GDK_INTERP_NEAREST);
}

/* Heatmap of map [H, W] in place of rgb; with overlay, blended over the
 * image x ([C, H, W], normalized) by |t|. */
static void
draw(TpModel *model, const float *map, const float *x, guint8 *rgb)
{
    const TpShape *in = tp_model_get_shape(model, 0);
    const int C = in->dim[0];
    const gsize plane = (gsize)in->dim[1] * in->dim[2];
    const float scale = tp_explain_scale(map, plane);
    const float *mean, *std;
    gboolean normalized = tp_model_get_normalization(model, &mean, &std);

    tp_explain_colorize(map, plane, scale > 0.0f ? scale : 1.0f, rgb);
    if (!overlay)
        return;
    for (gsize i = 0; i < plane; i++) {
        float t = scale > 0.0f ? fminf(fabsf(map[i]) / scale, 1.0f) : 0.0f;

        for (int k = 0; k < 3; k++) {
            int c = C == 3 ? k : 0;
            float v = x[c * plane + i] * (normalized ? std[c] : 1.0f) + (normalized ? mean[c] : 0);
            float pure = (k == 0 && map[i] > 0) || (k == 2 && map[i] < 0) ? 255.0f : 0.0f;

            v = 255.0f * CLAMP(v, 0.0f, 1.0f);
            rgb[3 * i + k] = (guint8)lrintf((1.0f - t) * v + t * pure);
        }
    }
}

/* Heatmaps for b, one PNG each and a grid; relevance.npy with --npy. */
static gboolean
explain_images(TpModel *model, TpLrp *lrp, Batch *b, int fixed, GError **error)
{
    const TpShape *in = tp_model_get_shape(model, 0);
    const int H = in->dim[1], W = in->dim[2];
    const gsize plane = (gsize)H * W, per = tp_cli_numel(in);
    const int zoom = MAX(1, 192 / MAX(H, W)), cols = MIN(b->n, 8);
    g_autoptr(GdkPixbuf) grid = NULL;
    g_autofree float *raw = write_npy ? g_new(float, per *(gsize)b->n) : NULL;
    g_autofree guint8 *rgb = g_new(guint8, plane * 3);
    char buf[16];

    if (b->n > 1) {
        grid = gdk_pixbuf_new(GDK_COLORSPACE_RGB, FALSE, 8, cols * (W * zoom + 4) + 4,
                              ((b->n + cols - 1) / cols) * (H * zoom + 4) + 4);
        gdk_pixbuf_fill(grid, 0x808080ff);
    }
    for (int i = 0; i < b->n; i++) {
        gint32 k = fixed >= 0 ? fixed : b->start[i];
        g_autofree float *map = NULL;
        g_autofree char *file = NULL;
        g_autofree char *path = NULL;
        g_autoptr(GdkPixbuf) pic = NULL;

        map = tp_explain_input(lrp, b->x + per * i, 1, &k, k < 0 || predicted, error);
        if (map == NULL)
            return FALSE;
        if (raw != NULL &&
            !tp_tensor_download(tp_lrp_get_relevance(lrp, 0), raw + per * (gsize)i, error))
            return FALSE;
        draw(model, map, b->x + per * i, rgb);
        pic = pixbuf_from_rgb(rgb, W, H, zoom);
        file = g_strdup_printf("%s-%s.png", (char *)b->names->pdata[i],
                               tp_cli_output_name(model, k, buf, sizeof(buf)));
        g_strdelimit(file, " /", '_');
        path = g_build_filename(output_dir, file, NULL);
        if (!save_png(pic, path, error))
            return FALSE;
        printf("%s\n", path);
        if (grid != NULL)
            gdk_pixbuf_copy_area(pic, 0, 0, W * zoom, H * zoom, grid,
                                 4 + (i % cols) * (W * zoom + 4), 4 + (i / cols) * (H * zoom + 4));
    }
    if (grid != NULL) {
        g_autofree char *path = g_build_filename(output_dir, "grid.png", NULL);

        if (!save_png(grid, path, error))
            return FALSE;
        printf("%s\n", path);
    }
    if (raw != NULL) {
        g_autofree char *path = g_build_filename(output_dir, "relevance.npy", NULL);
        const int dims[] = {b->n, in->dim[0], in->dim[1], in->dim[2]};

        if (!tp_cli_write_npy(path, raw, 4, dims, error))
            return FALSE;
        printf("%s\n", path);
    }
    return TRUE;
}

/* The class × filter relevance of every Conv: for each class, the mean over
 * its images of Σ R per filter, started at that class. */
static gboolean
explain_filters(TpModel *model, TpLrp *lrp, Batch *b, const int *outputs, int n_classes,
                GError **error)
{
    const gsize per = tp_cli_numel(tp_model_get_shape(model, 0));
    const guint n_nodes = tp_model_get_n_nodes(model);
    g_autoptr(GPtrArray) sums = g_ptr_array_new_with_free_func(g_free); /* per node */
    g_autofree int *count = g_new0(int, n_classes);
    char buf[16];

    for (guint j = 0; j < n_nodes; j++) {
        const TpNode *node = tp_model_get_node(model, j);

        g_ptr_array_add(sums, node->op == TP_OP_CONV
                                  ? g_new0(double, (gsize)n_classes * node->attrs.conv.out_channels)
                                  : NULL);
    }
    for (int i = 0; i < b->n; i++) {
        int row = 0;
        gint32 k = b->start[i];
        g_autofree float *map = tp_explain_input(lrp, b->x + per * i, 1, &k, FALSE, error);

        if (map == NULL)
            return FALSE;
        while (outputs[row] != k)
            row++;
        count[row]++;
        for (guint j = 0; j < n_nodes; j++) {
            const TpNode *node = tp_model_get_node(model, j);
            double *s = sums->pdata[j];

            if (s != NULL &&
                !tp_explain_add_channels(lrp, model, node->output,
                                         s + (gsize)row * node->attrs.conv.out_channels, error))
                return FALSE;
        }
    }
    for (guint j = 0; j < n_nodes; j++) {
        const TpNode *node = tp_model_get_node(model, j);
        const double *s = sums->pdata[j];
        const int F = s ? node->attrs.conv.out_channels : 0;
        g_autoptr(GString) csv = g_string_new("class");
        g_autofree float *m = NULL;
        g_autofree guint8 *rgb = NULL;
        g_autoptr(GdkPixbuf) pic = NULL;
        g_autofree char *safe = NULL;
        g_autofree char *file = NULL;
        g_autofree char *path = NULL;
        float scale;

        if (s == NULL)
            continue;
        m = g_new(float, (gsize)n_classes *F);
        rgb = g_new(guint8, (gsize)n_classes * F * 3);
        for (int f = 0; f < F; f++)
            g_string_append_printf(csv, ",%d", f);
        g_string_append_c(csv, '\n');
        for (int c = 0; c < n_classes; c++) {
            g_string_append(csv, tp_cli_output_name(model, outputs[c], buf, sizeof(buf)));
            for (int f = 0; f < F; f++) {
                m[c * F + f] = (float)(s[(gsize)c * F + f] / MAX(count[c], 1));
                g_string_append_printf(csv, ",%.6g", m[c * F + f]);
            }
            g_string_append_c(csv, '\n');
        }
        safe = g_strdup(node->name);
        g_strcanon(safe, G_CSET_a_2_z G_CSET_A_2_Z G_CSET_DIGITS "-_.", '_');
        file = g_strdup_printf("filters-%s.csv", safe);
        path = g_build_filename(output_dir, file, NULL);
        if (!g_file_set_contents(path, csv->str, (gssize)csv->len, error))
            return FALSE;
        printf("%s\n", path);
        scale = tp_explain_scale(m, (gsize)n_classes * F);
        tp_explain_colorize(m, (gsize)n_classes * F, scale > 0.0f ? scale : 1.0f, rgb);
        pic = pixbuf_from_rgb(rgb, F, n_classes, MAX(1, 8 - F / 64));
        g_free(path);
        g_free(file);
        file = g_strdup_printf("filters-%s.png", safe);
        path = g_build_filename(output_dir, file, NULL);
        if (!save_png(pic, path, error))
            return FALSE;
        printf("%s\n", path);
    }
    return TRUE;
}

static gboolean
parse_rule(TpLrpConfig *config, GError **error)
{
    static const char *const names[] = {"composite", "zplus", "epsilon", "alpha2beta1"};

    config->start = TP_LRP_START_UNIT;
    config->epsilon = 1e-6;
    config->rules = TP_LRP_RULES_COMPOSITE;
    if (rule_name == NULL)
        return TRUE;
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++)
        if (g_str_equal(rule_name, names[i])) {
            config->rules = (TpLrpRules)i;
            return TRUE;
        }
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "--rule %s: valid rules are composite, epsilon, zplus and alpha2beta1", rule_name);
    return FALSE;
}

static int
run(int argc, char **argv)
{
    GError *error = NULL;
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    g_autoptr(TpBackend) backend = NULL;
    g_autoptr(TpModel) model = NULL;
    g_autoptr(TpDataset) dataset = NULL;
    g_autoptr(TpLrp) lrp = NULL;
    g_autofree int *ds = NULL;
    g_autofree int *outputs = NULL;
    Batch b = {0};
    TpLrpConfig config;
    int n_classes = 0, fixed = -1, status = 0;

    if (!tp_cli_parse(&tp_cmd_explain, &argc, &argv))
        return 2;
    if (argc < 2 || output_dir == NULL || (argc > 2 && dataset_name != NULL) ||
        (argc == 2 && dataset_name == NULL)) {
        tp_cli_error("explain: give MODEL.onnx, then IMAGE files or --dataset, and -o DIR (see "
                     "'taskprune help explain')");
        return 2;
    }
    if (filters && (dataset_name == NULL || class_name != NULL || predicted)) {
        tp_cli_error("explain: --filters takes images of each class from --dataset, and no "
                     "--class or --predicted");
        return 2;
    }
    if (class_name != NULL && predicted) {
        tp_cli_error("explain: --class and --predicted exclude each other");
        return 2;
    }
    if (samples < 1) {
        tp_cli_error("explain: --samples must be at least 1");
        return 2;
    }
    if (!parse_rule(&config, &error))
        return tp_cli_fail(error);
    if (backend_name != NULL)
        g_key_file_set_string(keyfile, "backend", "plugin", backend_name);
    if (dataset_name != NULL)
        g_key_file_set_string(keyfile, "dataset", "plugin", dataset_name);
    if (!tp_cli_set_pairs(keyfile, "dataset", data_pairs, &error) ||
        !tp_cli_options_apply(keyfile, &error))
        return tp_cli_fail(error);
    backend = tp_cli_open_backend(keyfile, "the command line", &error);
    if (backend == NULL || !(model = tp_onnx_load(backend, argv[1], &error)) ||
        !tp_normalization_apply_keys(model, keyfile, "model", "the command line", &error) ||
        !(lrp = tp_lrp_new(model, &config, &error)))
        return tp_cli_fail(error);
    tp_cli_warn_unnormalized(model, argv[1]);
    if (class_name != NULL && (fixed = find_output(model, class_name, &error)) < 0)
        return tp_cli_fail(error);
    if (g_mkdir_with_parents(output_dir, 0755) != 0) {
        tp_cli_error("%s: %s", output_dir, g_strerror(errno));
        return 1;
    }

    if (dataset_name != NULL) {
        if (!(dataset = tp_dataset_new_from_keyfile(keyfile, "dataset", "the command line",
                                                    TP_SPLIT_TEST, &error)) ||
            !pick_classes(model, dataset, &ds, &outputs, &n_classes, &error) ||
            !read_dataset(model, dataset, ds, outputs, n_classes, &b, &error))
            status = tp_cli_fail(error);
    } else if (!read_images(model, argv + 2, argc - 2, &b, &error)) {
        status = tp_cli_fail(error);
    }
    if (status == 0 && filters && !explain_filters(model, lrp, &b, outputs, n_classes, &error))
        status = tp_cli_fail(error);
    else if (status == 0 && !filters && !explain_images(model, lrp, &b, fixed, &error))
        status = tp_cli_fail(error);
    batch_clear(&b);
    g_clear_pointer(&lrp, tp_lrp_free); /* before the model it borrows */
    return status;
}

#else /* !TP_HAVE_GDK_PIXBUF */

static int
run(int argc, char **argv)
{
    if (!tp_cli_parse(&tp_cmd_explain, &argc, &argv))
        return 2;
    tp_cli_error("explain: this taskprune was built without gdk-pixbuf, which reads and writes "
                 "the images; install libgdk-pixbuf-2.0-dev and configure again");
    return 1;
}

#endif

const TpCommand tp_cmd_explain = {
    /* .name = */ "explain",
    /* .summary = */ "Show what a model looks at: LRP heatmaps and class x filter maps",
    /* .parameters = */ "MODEL.onnx [IMAGE...]",
    /* .description = */
    "Propagates relevance from a class's logit back to the input with the lrp criterion's\n"
    "rules and writes one heatmap PNG per image to DIR: relevance summed over the input\n"
    "channels, scaled symmetrically, red for the class, white 0, blue against (grid.png\n"
    "shows them all). Images are PNG/JPEG files, resized to the model's input, or --samples\n"
    "test images of each --classes from --dataset (explained at their own class).\n"
    "--filters writes, for every Conv, the mean relevance per filter and class as\n"
    "filters-LAYER.csv and filters-LAYER.png (rows: classes, columns: filters).\n\n"
    "Example: taskprune explain vgg11.onnx --dataset idx --classes Sneaker -n 8 -o heat",
    /* .run = */ run,
    /* .options = */ options,
};
