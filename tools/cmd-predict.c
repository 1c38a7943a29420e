/* cmd-predict.c — `taskprune predict MODEL.onnx FILE...`: the top classes
 * the model gives each input, with their softmax probabilities and names.
 *
 * An input is an image file (PNG, JPEG, ... through gdk-pixbuf, resized to
 * the model's input and normalized as its metadata, or --mean and --std,
 * say) or a NumPy .npy tensor taken as the model's input as it is: one sample
 * (the model's input shape) or a batch of them (one more, leading axis).
 * --output writes the model's raw outputs, [inputs, output shape...], as
 * .npy, so that a model can be checked against another runtime. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tp-cli-input.h"
#include "tp-cli-options.h"
#include "tp-cli.h"
#include "tp-normalization.h"
#include "tp-onnx.h"

static int top = 5;
static char *output;

static const GOptionEntry options[] = {
    {"top", 0, 0, G_OPTION_ARG_INT, &top, "Show this many classes per input (default 5)", "N"},
    {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
     "Also write the raw outputs of every input here (NumPy .npy)", "FILE.npy"},
    TP_CLI_OPTION_MEAN,
    TP_CLI_OPTION_STD,
    TP_CLI_OPTION_BACKEND,
    TP_CLI_OPTION_DEVICE,
    TP_CLI_OPTION_THREADS,
    TP_CLI_OPTION_JSON,
    {NULL},
};

/* Samples per forward pass. */
#define PREDICT_BATCH 64

/* The inputs: n samples of `per` floats each, and a name each. */
typedef struct {
    GArray *x;        /* of float */
    GPtrArray *names; /* of char * */
} Inputs;

/* "[C, H, W]" of the model's input. */
static char *
shape_string(const TpShape *shape)
{
    g_autoptr(GString) s = g_string_new("[");

    for (int i = 0; i < shape->ndim; i++)
        g_string_append_printf(s, "%s%d", i ? ", " : "", shape->dim[i]);
    g_string_append_c(s, ']');
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* Appends the samples of a .npy file: one, or a batch along a leading axis. */
static gboolean
add_npy(TpModel *model, const char *path, Inputs *in, GError **error)
{
    const TpShape *shape = tp_model_get_shape(model, 0);
    int ndim, dims[TP_CLI_NPY_MAX_DIMS], lead;
    gsize n;
    g_autofree float *x = tp_cli_read_npy(path, &ndim, dims, &n, error);
    g_autofree char *want = shape_string(shape);

    if (x == NULL)
        return FALSE;
    lead = ndim - shape->ndim;
    for (int i = 0; lead >= 0 && lead <= 1 && i < shape->ndim; i++)
        if (dims[lead + i] != shape->dim[i])
            lead = -1;
    if (lead < 0 || lead > 1 || (lead == 1 && dims[0] == 0)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: the array's shape is not the model's input %s or [N] + that", path,
                    want);
        return FALSE;
    }
    g_array_append_vals(in->x, x, (guint)n);
    if (lead == 0)
        g_ptr_array_add(in->names, g_strdup(path));
    else
        for (int i = 0; i < dims[0]; i++)
            g_ptr_array_add(in->names, g_strdup_printf("%s[%d]", path, i));
    return TRUE;
}

/* Appends the sample of an image file. */
static gboolean
add_image(TpModel *model, const char *path, Inputs *in, GError **error)
{
#ifdef TP_HAVE_GDK_PIXBUF
    const gsize per = tp_cli_numel(tp_model_get_shape(model, 0));
    g_autofree float *x = g_new(float, per);

    if (!tp_cli_read_image(model, path, x, error))
        return FALSE;
    g_array_append_vals(in->x, x, (guint)per);
    g_ptr_array_add(in->names, g_strdup(path));
    return TRUE;
#else
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                "%s: this taskprune was built without gdk-pixbuf, which reads images; give .npy "
                "tensors, or install libgdk-pixbuf-2.0-dev and configure again",
                path);
    return FALSE;
#endif
}

/* Softmax of row (n logits) into p, in double precision. */
static void
softmax(const float *row, int n, double *p)
{
    double top_logit = row[0], sum = 0;

    for (int j = 1; j < n; j++)
        top_logit = MAX(top_logit, row[j]);
    for (int j = 0; j < n; j++)
        sum += p[j] = exp((double)row[j] - top_logit);
    for (int j = 0; j < n; j++)
        p[j] /= sum;
}

/* The k most probable classes of p (n of them), most probable first; ties
 * go to the lower index. */
static void
top_classes(const double *p, int n, int k, int *out)
{
    for (int i = 0; i < k; i++) {
        int best = -1;

        for (int j = 0; j < n; j++) {
            gboolean taken = FALSE;
            for (int t = 0; t < i; t++)
                taken = taken || out[t] == j;
            if (!taken && (best < 0 || p[j] > p[best]))
                best = j;
        }
        out[i] = best;
    }
}

/* Runs the inputs through the model: the logits (n × classes) and the raw
 * outputs (n × out_per) on the host. */
static gboolean
run_model(TpModel *model, const Inputs *in, int n, float *logits, float *outputs, GError **error)
{
    const gsize per = tp_cli_numel(tp_model_get_shape(model, 0));
    const int logit_value = tp_model_get_logits(model), out_value = tp_model_get_output(model);
    const gsize classes = tp_cli_numel(tp_model_get_shape(model, logit_value));
    const gsize out_per = tp_cli_numel(tp_model_get_shape(model, out_value));

    for (int at = 0; at < n; at += PREDICT_BATCH) {
        int batch = MIN(PREDICT_BATCH, n - at);
        const float *x = &g_array_index(in->x, float, (gsize)at * per);

        if (!tp_model_forward(model, x, batch, TP_MODE_INFER, error) ||
            !tp_tensor_download(tp_model_get_value(model, logit_value),
                                logits + (gsize)at * classes, error) ||
            (outputs != NULL &&
             !tp_tensor_download(tp_model_get_value(model, out_value),
                                 outputs + (gsize)at * out_per, error)))
            return FALSE;
    }
    return TRUE;
}

static void
print_predictions(TpModel *model, const Inputs *in, const float *logits, int classes, int k)
{
    g_autoptr(GString) out = g_string_new(NULL);
    g_autofree double *p = g_new(double, classes);
    g_autofree int *best = g_new(int, k);
    char buf[16];

    if (tp_cli_options.json)
        g_string_append(out, "{\"predictions\": [");
    for (guint i = 0; i < in->names->len; i++) {
        const char *name = g_ptr_array_index(in->names, i);

        softmax(logits + (gsize)i * classes, classes, p);
        top_classes(p, classes, k, best);
        if (tp_cli_options.json) {
            g_string_append_printf(out, "%s\n  {\"input\": ", i ? "," : "");
            tp_cli_json_string(out, name);
            g_string_append(out, ", \"top\": [");
            for (int t = 0; t < k; t++) {
                g_string_append_printf(out, "%s{\"index\": %d, \"class\": ", t ? ", " : "",
                                       best[t]);
                tp_cli_json_string(out, tp_cli_output_name(model, best[t], buf, sizeof(buf)));
                g_string_append_printf(out, ", \"probability\": %.6f}", p[best[t]]);
            }
            g_string_append(out, "]}");
        } else {
            g_string_append_printf(out, "%s:", name);
            for (int t = 0; t < k; t++)
                g_string_append_printf(out, "%s %s %.2f%%", t ? "," : "",
                                       tp_cli_output_name(model, best[t], buf, sizeof(buf)),
                                       100 * p[best[t]]);
            g_string_append_c(out, '\n');
        }
    }
    if (tp_cli_options.json)
        g_string_append(out, "\n]}\n");
    fputs(out->str, stdout);
}

static int
run(int argc, char **argv)
{
    GError *error = NULL;
    g_autoptr(GKeyFile) keyfile = g_key_file_new();
    g_autoptr(TpBackend) backend = NULL;
    g_autoptr(TpModel) model = NULL;
    g_autoptr(GArray) x = g_array_new(FALSE, FALSE, sizeof(float));
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    Inputs in = {x, names};
    g_autofree float *logits = NULL;
    g_autofree float *outputs = NULL;
    gboolean images = FALSE;
    gsize classes, out_per;
    int n;

    if (!tp_cli_parse(&tp_cmd_predict, &argc, &argv))
        return 2;
    if (argc < 3) {
        tp_cli_error("predict: give MODEL.onnx and one or more image or .npy files (see "
                     "'taskprune help predict')");
        return 2;
    }
    if (top < 1) {
        tp_cli_error("predict: --top must be at least 1");
        return 2;
    }
    if (!tp_cli_options_apply(keyfile, &error))
        return tp_cli_fail(error);
    backend = tp_cli_open_backend(keyfile, "the command line", &error);
    if (backend == NULL || !(model = tp_onnx_load(backend, argv[1], &error)) ||
        !tp_normalization_apply_keys(model, keyfile, "model", "the command line", &error))
        return tp_cli_fail(error);
    for (int i = 2; i < argc; i++) {
        gboolean npy = g_str_has_suffix(argv[i], ".npy");

        images = images || !npy;
        if (!(npy ? add_npy(model, argv[i], &in, &error) : add_image(model, argv[i], &in, &error)))
            return tp_cli_fail(error);
    }
    if (images)
        tp_cli_warn_unnormalized(model, argv[1]);

    n = (int)names->len;
    classes = tp_cli_numel(tp_model_get_shape(model, tp_model_get_logits(model)));
    out_per = tp_cli_numel(tp_model_get_shape(model, tp_model_get_output(model)));
    logits = g_new(float, (gsize)n * classes);
    if (output != NULL)
        outputs = g_new(float, (gsize)n * out_per);
    if (!run_model(model, &in, n, logits, outputs, &error))
        return tp_cli_fail(error);
    if (output != NULL) {
        const TpShape *shape = tp_model_get_shape(model, tp_model_get_output(model));
        int dims[1 + TP_SHAPE_MAX_DIMS] = {n};

        memcpy(dims + 1, shape->dim, sizeof(int) * (gsize)shape->ndim);
        if (!tp_cli_write_npy(output, outputs, 1 + shape->ndim, dims, &error))
            return tp_cli_fail(error);
    }
    print_predictions(model, &in, logits, (int)classes, MIN(top, (int)classes));
    return 0;
}

const TpCommand tp_cmd_predict = {
    /* .name = */ "predict",
    /* .summary = */ "Classify images or .npy tensors: the top classes of each",
    /* .parameters = */ "MODEL.onnx FILE...",
    /* .description = */
    "Runs the model on each FILE and prints its --top classes with their softmax\n"
    "probabilities. A FILE is an image (PNG, JPEG, ...; resized to the model's input and\n"
    "normalized as the model's metadata, or --mean and --std, say) or a NumPy .npy array of\n"
    "float32 taken as the model's input as it is: one sample, or a batch along a leading\n"
    "axis. --output writes the raw outputs of all inputs, [N, outputs], as .npy, to compare\n"
    "with another runtime.\n\n"
    "Example: taskprune predict footwear.onnx shoe.png boot.jpg --top 3",
    /* .run = */ run,
    /* .options = */ options,
};
