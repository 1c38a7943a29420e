/* test-onnx-conformance.c — ONNX's own backend test cases run through the
 * importer on every backend the build has.
 *
 * The cases are those of Debian's libonnx-testdata (ONNX 1.12):
 * <data>/node/<case>/ and <data>/pytorch-converted/<case>/, each a model.onnx
 * and test_data_set_0/{input,output}_N.pb (TensorProto files). <data> is
 * $TP_ONNX_TESTDATA, else /usr/share/libonnx-testdata/data; without it the
 * program prints why and passes.
 *
 * A case is in scope when every node of its graph has one of the op types the
 * importer knows (`supported_ops`); the others are only counted. Each
 * in-scope case, on each backend:
 *
 *  1. every graph input after the first that is not an initializer already
 *     (node cases feed their weights that way) becomes an initializer holding
 *     the matching input_N.pb, and the model is packed again;
 *  2. tp_onnx_load_data() either refuses it with TP_ONNX_ERROR_UNSUPPORTED
 *     (the case is skipped, the message is the reason) or loads it;
 *  3. a loaded model runs tp_model_forward() in TP_MODE_EVAL on input_0.pb
 *     (batch = its first dimension) and its output must have the shape of
 *     output_0.pb and match it element-wise: |got - want| <= atol + rtol·|want|
 *     (numpy's assert_allclose, which ONNX's runner uses; NaN matches NaN,
 *     an infinity only itself) with rtol 1e-3, atol 1e-7: what ONNX 1.12's
 *     runner uses for every case that ships a model.onnx (its loader reads
 *     other tolerances only from the data.json of the downloaded "real"
 *     models, which this runner does not walk).
 *
 * Anything else — another error code, wrong numbers, a crash, backends that
 * disagree — fails, naming the case. `expected` below lists the cases that
 * must pass: a listed case that does not pass fails, and so does a case that
 * passes without being listed. Cases failing because of a known importer or
 * kernel bug are listed as BUG(...): they are reported but do not fail until
 * they start passing (then move them to PASS). docs/onnx-conformance.md
 * explains the list and how to regenerate it.
 *
 * Each case is one iteration of a loop test, so a crash under CK_FORK names
 * only its iteration; every iteration appends its outcome to a ledger file,
 * from which main() prints the summary after the run.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "onnx.pb-c.h"
#include "tp-onnx.h"
#include "tp-test.h"

#define DEFAULT_DATA_DIR "/usr/share/libonnx-testdata/data"
#define DEFAULT_RTOL 1e-3
#define DEFAULT_ATOL 1e-7
#define ONNX_FLOAT 1

/* The folders walked, below the data folder. */
static const char *const kinds[] = {"node", "pytorch-converted"};

/* The op types the importer takes (tp-onnx.h). */
/* clang-format off */
static const char *const supported_ops[] = {
    "Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool",
    "Flatten", "Reshape", "Gemm", "MatMul", "Add", "Dropout", "Identity", "Softmax", "Constant",
    "Pad", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Tanh", "Erf", "Sqrt",
    "Pow", "Mul", "Sub", "Div", "ReduceMean",
    "Pad", "Concat", "Slice", "Split", "Transpose", "Gather",
    NULL,
};
/* clang-format on */

/* ------------------------------------------------------------ expectations */

typedef enum {
    EXPECT_PASS, /* must load and match on every backend */
    EXPECT_BUG,  /* fails because of a known bug (the note says which) */
} Expect;

typedef struct {
    const char *name; /* "<kind>/<case>" */
    Expect expect;
    const char *note; /* for BUG: the bug, and where it is */
} Expected;

/* clang-format off */
#define PASS(name) { name, EXPECT_PASS, NULL }
#define BUG(name, note) { name, EXPECT_BUG, "BUG: " note }

static const Expected expected[] = {
    PASS("node/test_averagepool_2d_ceil"),
    PASS("node/test_averagepool_2d_default"),
    PASS("node/test_averagepool_2d_pads"),
    PASS("node/test_averagepool_2d_pads_count_include_pad"),
    PASS("node/test_averagepool_2d_precomputed_pads"),
    PASS("node/test_averagepool_2d_precomputed_pads_count_include_pad"),
    PASS("node/test_averagepool_2d_precomputed_same_upper"),
    PASS("node/test_averagepool_2d_precomputed_strides"),
    PASS("node/test_averagepool_2d_same_lower"),
    PASS("node/test_averagepool_2d_same_upper"),
    PASS("node/test_averagepool_2d_strides"),
    PASS("node/test_basic_conv_with_padding"),
    PASS("node/test_basic_conv_without_padding"),
    PASS("node/test_batchnorm_epsilon"),
    PASS("node/test_batchnorm_example"),
    PASS("node/test_clip"),
    PASS("node/test_clip_default_max"),
    PASS("node/test_clip_default_min"),
    PASS("node/test_conv_with_autopad_same"),
    PASS("node/test_conv_with_strides_and_asymmetric_padding"),
    PASS("node/test_conv_with_strides_no_padding"),
    PASS("node/test_conv_with_strides_padding"),
    PASS("node/test_div_bcast"),
    PASS("node/test_dropout_default"),
    PASS("node/test_dropout_default_ratio"),
    PASS("node/test_dropout_random_old"),
    PASS("node/test_erf"),
    PASS("node/test_flatten_axis1"),
    PASS("node/test_flatten_default_axis"),
    PASS("node/test_flatten_negative_axis3"),
    PASS("node/test_gemm_alpha"),
    PASS("node/test_gemm_beta"),
    PASS("node/test_gemm_default_no_bias"),
    PASS("node/test_gemm_default_scalar_bias"),
    PASS("node/test_gemm_default_single_elem_vector_bias"),
    PASS("node/test_gemm_default_vector_bias"),
    PASS("node/test_gemm_default_zero_bias"),
    PASS("node/test_gemm_transposeB"),
    PASS("node/test_hardsigmoid"),
    PASS("node/test_hardsigmoid_default"),
    PASS("node/test_hardswish"),
    PASS("node/test_hardswish_expanded"),
    PASS("node/test_identity"),
    PASS("node/test_leakyrelu"),
    PASS("node/test_leakyrelu_default"),
    PASS("node/test_matmul_2d"),
    PASS("node/test_maxpool_2d_ceil"),
    PASS("node/test_maxpool_2d_default"),
    PASS("node/test_maxpool_2d_pads"),
    PASS("node/test_maxpool_2d_precomputed_pads"),
    PASS("node/test_maxpool_2d_precomputed_same_upper"),
    PASS("node/test_maxpool_2d_precomputed_strides"),
    PASS("node/test_maxpool_2d_same_lower"),
    PASS("node/test_maxpool_2d_same_upper"),
    PASS("node/test_maxpool_2d_strides"),
    PASS("node/test_mul_bcast"),
    PASS("node/test_reduce_mean_keepdims_example"),
    PASS("node/test_reduce_mean_keepdims_random"),
    PASS("node/test_reduce_mean_negative_axes_keepdims_example"),
    PASS("node/test_reduce_mean_negative_axes_keepdims_random"),
    PASS("node/test_relu"),
    PASS("node/test_reshape_extended_dims"),
    PASS("node/test_reshape_reduced_dims"),
    PASS("node/test_sigmoid"),
    PASS("node/test_reshape_zero_and_negative_dim"),
    PASS("node/test_reshape_zero_dim"),
    PASS("node/test_slice_end_out_of_bounds"),
    PASS("node/test_slice_neg"),
    PASS("node/test_softmax_example"),
    PASS("node/test_softmax_large_number"),
    PASS("node/test_sqrt"),
    PASS("node/test_sub_bcast"),
    PASS("node/test_tanh"),
    PASS("pytorch-converted/test_AvgPool2d"),
    PASS("pytorch-converted/test_AvgPool2d_stride"),
    PASS("pytorch-converted/test_BatchNorm1d_3d_input_eval"),
    PASS("pytorch-converted/test_BatchNorm2d_eval"),
    PASS("pytorch-converted/test_BatchNorm2d_momentum_eval"),
    PASS("pytorch-converted/test_Conv2d"),
    PASS("pytorch-converted/test_Conv2d_depthwise"),
    PASS("pytorch-converted/test_Conv2d_depthwise_padded"),
    PASS("pytorch-converted/test_Conv2d_depthwise_strided"),
    PASS("pytorch-converted/test_Conv2d_depthwise_with_multiplier"),
    PASS("pytorch-converted/test_Conv2d_dilated"),
    PASS("pytorch-converted/test_Conv2d_groups"),
    PASS("pytorch-converted/test_Conv2d_groups_thnn"),
    PASS("pytorch-converted/test_Conv2d_no_bias"),
    PASS("pytorch-converted/test_Conv2d_padding"),
    PASS("pytorch-converted/test_Conv2d_strided"),
    PASS("pytorch-converted/test_GLU"),
    PASS("pytorch-converted/test_GLU_dim"),
    PASS("pytorch-converted/test_LeakyReLU"),
    PASS("pytorch-converted/test_LeakyReLU_with_negval"),
    PASS("pytorch-converted/test_Linear"),
    PASS("pytorch-converted/test_MaxPool2d"),
    PASS("pytorch-converted/test_ReLU"),
    PASS("pytorch-converted/test_Sigmoid"),
    PASS("pytorch-converted/test_Softmax"),
    PASS("pytorch-converted/test_Tanh"),
    PASS("pytorch-converted/test_softmax_lastdim"),
PASS("node/test_add_bcast"),
};
/* clang-format on */

static const Expected *
find_expected(const char *name)
{
    for (gsize i = 0; i < G_N_ELEMENTS(expected); i++)
        if (g_str_equal(expected[i].name, name))
            return &expected[i];
    return NULL;
}

/* ------------------------------------------------------------ state */

typedef struct {
    char *name; /* "<kind>/<case>" */
    char *dir;  /* the case's folder */
} Case;

static char *data_dir;
static GPtrArray *cases;     /* Case, the in-scope ones, sorted */
static guint n_out_of_scope; /* cases with an op taskprune does not have */
static GString *scan_errors; /* test data that could not be read */
static int ledger = -1;      /* file descriptor: one line per case run */
static char *ledger_path;

static void
case_free(gpointer data)
{
    Case *c = data;
    g_free(c->name);
    g_free(c->dir);
    g_free(c);
}

static GQuark
conformance_error_quark(void)
{
    return g_quark_from_static_string("tp-onnx-conformance");
}

#define CONFORMANCE_ERROR (conformance_error_quark())

/* ------------------------------------------------------------ protobuf files */

static void
model_proto_free(Onnx__ModelProto *proto)
{
    onnx__model_proto__free_unpacked(proto, NULL);
}

static void
tensor_proto_free(Onnx__TensorProto *t)
{
    onnx__tensor_proto__free_unpacked(t, NULL);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Onnx__ModelProto, model_proto_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Onnx__TensorProto, tensor_proto_free)

/* Unpacks the ModelProto in path; NULL with error if it cannot. */
static Onnx__ModelProto *
read_model(const char *path, GError **error)
{
    g_autofree char *bytes = NULL;
    gsize length;
    Onnx__ModelProto *proto;

    if (!g_file_get_contents(path, &bytes, &length, error))
        return NULL;
    proto = onnx__model_proto__unpack(NULL, length, (const guint8 *)bytes);
    if (proto == NULL || proto->graph == NULL) {
        if (proto != NULL)
            onnx__model_proto__free_unpacked(proto, NULL);
        g_set_error(error, CONFORMANCE_ERROR, 0, "%s is not a valid ModelProto", path);
        return NULL;
    }
    return proto;
}

/* Unpacks the TensorProto in path; NULL with error if it cannot. */
static Onnx__TensorProto *
read_tensor(const char *path, GError **error)
{
    g_autofree char *bytes = NULL;
    gsize length;
    Onnx__TensorProto *t;

    if (!g_file_get_contents(path, &bytes, &length, error))
        return NULL;
    t = onnx__tensor_proto__unpack(NULL, length, (const guint8 *)bytes);
    if (t == NULL)
        g_set_error(error, CONFORMANCE_ERROR, 0, "%s is not a valid TensorProto", path);
    return t;
}

/* A float32 TensorProto's values as a new host array of *out_numel floats. */
static float *
tensor_floats(const Onnx__TensorProto *t, const char *what, gsize *out_numel, GError **error)
{
    gsize numel = 1;
    float *values;

    for (gsize i = 0; i < t->n_dims; i++)
        numel *= (gsize)MAX(t->dims[i], 0);
    if (t->data_type != ONNX_FLOAT) {
        g_set_error(error, CONFORMANCE_ERROR, 0, "%s has data type %d, not float32", what,
                    t->data_type);
        return NULL;
    }
    if (t->has_raw_data && t->raw_data.len > 0) {
        if (t->raw_data.len != numel * sizeof(float)) {
            g_set_error(error, CONFORMANCE_ERROR, 0,
                        "%s has %zu bytes of data for %" G_GSIZE_FORMAT " floats", what,
                        t->raw_data.len, numel);
            return NULL;
        }
        *out_numel = numel;
        return g_memdup2(t->raw_data.data, t->raw_data.len);
    }
    if (t->n_float_data != numel) {
        g_set_error(error, CONFORMANCE_ERROR, 0,
                    "%s has %zu floats, its shape needs %" G_GSIZE_FORMAT, what, t->n_float_data,
                    numel);
        return NULL;
    }
    values = g_new0(float, MAX(numel, 1));
    if (numel > 0)
        memcpy(values, t->float_data, numel * sizeof(float));
    *out_numel = numel;
    return values;
}

static gboolean
is_initializer(const Onnx__GraphProto *graph, const char *name)
{
    for (gsize i = 0; i < graph->n_initializer; i++)
        if (g_strcmp0(graph->initializer[i]->name, name) == 0)
            return TRUE;
    return FALSE;
}

/* The model of case c with its extra inputs made initializers, packed anew
 * into *out_data (g_free it); *out_n_outputs is its number of graph outputs. */
static gboolean
prepare_model(const Case *c, guint8 **out_data, gsize *out_length, gsize *out_n_outputs,
              GError **error)
{
    g_autofree char *path = g_build_filename(c->dir, "model.onnx", NULL);
    g_autoptr(Onnx__ModelProto) proto = read_model(path, error);
    Onnx__GraphProto *graph;
    gsize kept = 0, fed = 0;
    gboolean ok = TRUE;

    if (proto == NULL)
        return FALSE;
    graph = proto->graph;
    for (gsize i = 0; i < graph->n_input; i++) {
        Onnx__ValueInfoProto *v = graph->input[i];
        const Onnx__TypeProto *type = v->type;
        g_autofree char *file = NULL, *tensor_path = NULL;
        Onnx__TensorProto *t, **grown;
        char *name;

        /* input_N.pb feeds the N-th input that is not an initializer. Only
         * tensors become initializers; anything else stays an input, for the
         * importer to refuse. */
        if (!ok || is_initializer(graph, v->name) || fed++ == 0 || type == NULL ||
            type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
            graph->input[kept++] = v;
            continue;
        }
        file = g_strdup_printf("input_%" G_GSIZE_FORMAT ".pb", fed - 1);
        tensor_path = g_build_filename(c->dir, "test_data_set_0", file, NULL);
        t = read_tensor(tensor_path, error);
        if (t == NULL) {
            ok = FALSE;
            graph->input[kept++] = v;
            continue;
        }
        /* The initializer takes the input's name. Both strings come from
         * protobuf-c's allocator (malloc), as does the initializer array, so
         * swapping the names and growing the array with realloc keep every
         * free of onnx__model_proto__free_unpacked() right. */
        name = t->name;
        t->name = v->name;
        v->name = name;
        grown = realloc(graph->initializer, (graph->n_initializer + 1) * sizeof(*grown));
        g_assert_nonnull(grown);
        graph->initializer = grown;
        graph->initializer[graph->n_initializer++] = t;
        onnx__value_info_proto__free_unpacked(v, NULL);
    }
    graph->n_input = kept;
    if (!ok)
        return FALSE;
    *out_length = onnx__model_proto__get_packed_size(proto);
    *out_data = g_malloc(MAX(*out_length, 1));
    onnx__model_proto__pack(proto, *out_data);
    *out_n_outputs = graph->n_output;
    return TRUE;
}

/* ------------------------------------------------------------ one case */

typedef enum {
    OUTCOME_PASS,
    OUTCOME_SKIP, /* refused with TP_ONNX_ERROR_UNSUPPORTED */
    OUTCOME_FAIL,
} Outcome;

/* Whether want is [batch, shape...]. Trailing 1s do not count on either side:
 * the engine holds [N, F] as [F] and [N, C, L] as [C, L, 1]. */
static gboolean
shape_matches(const Onnx__TensorProto *want, gint64 batch, const TpShape *shape)
{
    int n, m = shape->ndim;

    if (want->n_dims < 1 || want->dims[0] != batch)
        return FALSE;
    n = (int)want->n_dims - 1; /* per-sample dims are want->dims[1..n] */
    while (n > 0 && want->dims[n] == 1)
        n--;
    while (m > 0 && shape->dim[m - 1] == 1)
        m--;
    if (n != m)
        return FALSE;
    for (int i = 0; i < m; i++)
        if (want->dims[i + 1] != shape->dim[i])
            return FALSE;
    return TRUE;
}

static char *
proto_dims(const Onnx__TensorProto *t)
{
    GString *s = g_string_new("[");
    for (gsize i = 0; i < t->n_dims; i++)
        g_string_append_printf(s, "%s%" G_GINT64_FORMAT, i ? ", " : "", t->dims[i]);
    g_string_append_c(s, ']');
    return g_string_free(s, FALSE);
}

static char *
model_dims(gint64 batch, const TpShape *shape)
{
    GString *s = g_string_new(NULL);
    g_string_append_printf(s, "[%" G_GINT64_FORMAT, batch);
    for (int i = 0; i < shape->ndim; i++)
        g_string_append_printf(s, ", %d", shape->dim[i]);
    g_string_append_c(s, ']');
    return g_string_free(s, FALSE);
}

/* numpy.testing.assert_allclose's rule (equal_nan on). */
static gboolean
close_enough(float got, float want, double atol, double rtol)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want))
        return got == want;
    return isfinite(got) && fabs((double)got - (double)want) <= atol + rtol * fabs((double)want);
}

/* Loads the prepared model on one backend and runs it on test_data_set_0.
 * *out_text (owned) is the reason of a skip or a failure. */
static Outcome
run_on(const Case *c, const char *backend_name, const guint8 *data, gsize length, gsize n_outputs,
       char **out_text)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(backend_name);
    g_autoptr(TpModel) model = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(Onnx__TensorProto) in = NULL, out = NULL;
    g_autofree char *in_path = g_build_filename(c->dir, "test_data_set_0", "input_0.pb", NULL);
    g_autofree char *out_path = g_build_filename(c->dir, "test_data_set_0", "output_0.pb", NULL);
    g_autofree float *x = NULL, *want = NULL, *got = NULL;
    gsize n_x, n_want, n_bad = 0, first_bad = 0;
    gint64 batch, per_sample = 1;
    const TpShape *in_shape, *out_shape;
    double max_diff = 0.0;
    int output;

    model = tp_onnx_load_data(backend, data, length, c->name, c->dir, &error);
    if (model == NULL) {
        static const char *const codes[] = {
            [TP_ONNX_ERROR_IO] = "TP_ONNX_ERROR_IO",
            [TP_ONNX_ERROR_PARSE] = "TP_ONNX_ERROR_PARSE",
            [TP_ONNX_ERROR_UNSUPPORTED] = "TP_ONNX_ERROR_UNSUPPORTED",
            [TP_ONNX_ERROR_INVALID] = "TP_ONNX_ERROR_INVALID",
        };
        g_autofree char *code = NULL;
        gsize prefix = strlen(c->name);
        const char *reason = error->message;

        /* The importer starts its messages with the source's name. */
        if (g_str_has_prefix(reason, c->name) && g_str_has_prefix(reason + prefix, ": "))
            reason += prefix + 2;
        if (g_error_matches(error, TP_ONNX_ERROR, TP_ONNX_ERROR_UNSUPPORTED)) {
            *out_text = g_strdup(reason);
            return OUTCOME_SKIP;
        }
        if (error->domain == TP_ONNX_ERROR && error->code >= 0 &&
            error->code < (int)G_N_ELEMENTS(codes) && codes[error->code] != NULL)
            code = g_strdup(codes[error->code]);
        else
            code = g_strdup_printf("%s code %d", g_quark_to_string(error->domain), error->code);
        *out_text = g_strdup_printf("refused with %s, where only TP_ONNX_ERROR_UNSUPPORTED may "
                                    "refuse a case: %s",
                                    code, reason);
        return OUTCOME_FAIL;
    }
    if (n_outputs != 1) {
        *out_text = g_strdup_printf("loaded, but the graph has %" G_GSIZE_FORMAT
                                    " outputs and taskprune computes one: the importer should "
                                    "refuse it as unsupported",
                                    n_outputs);
        return OUTCOME_FAIL;
    }

    in = read_tensor(in_path, &error);
    if (in != NULL)
        x = tensor_floats(in, "input_0.pb", &n_x, &error);
    if (x == NULL) {
        *out_text = g_strdup_printf("loaded, but its input cannot be read: %s", error->message);
        return OUTCOME_FAIL;
    }
    in_shape = tp_model_get_shape(model, 0);
    for (int i = 0; i < in_shape->ndim; i++)
        per_sample *= in_shape->dim[i];
    batch = in->n_dims > 0 ? in->dims[0] : 0;
    if (batch < 1 || batch > G_MAXINT || n_x != (gsize)(batch * per_sample)) {
        g_autofree char *have = proto_dims(in), *need = model_dims(batch, in_shape);
        *out_text = g_strdup_printf("input_0.pb has shape %s, the model reads %s", have, need);
        return OUTCOME_FAIL;
    }
    if (!tp_model_forward(model, x, (int)batch, TP_MODE_EVAL, &error)) {
        *out_text = g_strdup_printf("forward: %s", error->message);
        return OUTCOME_FAIL;
    }
    output = tp_model_get_output(model);
    out_shape = tp_model_get_shape(model, output);
    got = tp_tensor_dup_host(tp_model_get_value(model, output), &error);
    if (got == NULL) {
        *out_text = g_strdup_printf("reading the output: %s", error->message);
        return OUTCOME_FAIL;
    }

    out = read_tensor(out_path, &error);
    if (out != NULL)
        want = tensor_floats(out, "output_0.pb", &n_want, &error);
    if (want == NULL) {
        *out_text = g_strdup_printf("its expected output cannot be read: %s", error->message);
        return OUTCOME_FAIL;
    }
    if (!shape_matches(out, batch, out_shape) ||
        n_want != tp_model_get_value(model, output)->numel) {
        g_autofree char *have = model_dims(batch, out_shape), *need = proto_dims(out);
        *out_text = g_strdup_printf("the output has shape %s, output_0.pb has %s", have, need);
        return OUTCOME_FAIL;
    }
    for (gsize i = 0; i < n_want; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        if (!close_enough(got[i], want[i], DEFAULT_ATOL, DEFAULT_RTOL)) {
            if (n_bad++ == 0)
                first_bad = i;
        }
        if (!(diff <= max_diff))
            max_diff = diff;
    }
    if (n_bad > 0) {
        *out_text = g_strdup_printf("%" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT
                                    " outputs differ (first: element %" G_GSIZE_FORMAT
                                    ", got %.9g, want %.9g; max |diff| %.3g; atol %g, rtol %g)",
                                    n_bad, n_want, first_bad, got[first_bad], want[first_bad],
                                    max_diff, DEFAULT_ATOL, DEFAULT_RTOL);
        return OUTCOME_FAIL;
    }
    return OUTCOME_PASS;
}

/* Runs case c on every backend: PASS when all pass, SKIP when all refuse it
 * as unsupported (*out_text: the first backend's reason), FAIL otherwise
 * (*out_text: why, naming the backend). */
static Outcome
run_case(const Case *c, char **out_text)
{
    g_autoptr(GPtrArray) names = tp_test_backend_names();
    g_autoptr(GError) error = NULL;
    g_autofree guint8 *data = NULL;
    g_autofree char *reason = NULL;
    gsize length, n_outputs;
    Outcome result = OUTCOME_PASS;

    *out_text = NULL;
    if (!prepare_model(c, &data, &length, &n_outputs, &error)) {
        *out_text = g_strdup_printf("preparing the model: %s", error->message);
        return OUTCOME_FAIL;
    }
    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *text = NULL;
        Outcome outcome = run_on(c, name, data, length, n_outputs, &text);

        if (outcome == OUTCOME_FAIL) {
            *out_text = g_strdup_printf("[%s] %s", name, text);
            return OUTCOME_FAIL;
        }
        if (i > 0 && outcome != result) {
            *out_text = g_strdup_printf("the backends disagree: %s %s it, %s %s it",
                                        (const char *)g_ptr_array_index(names, 0),
                                        result == OUTCOME_PASS ? "runs" : "refuses", name,
                                        outcome == OUTCOME_PASS ? "runs" : "refuses");
            return OUTCOME_FAIL;
        }
        result = outcome;
        if (reason == NULL)
            reason = g_steal_pointer(&text);
    }
    if (result == OUTCOME_SKIP)
        *out_text = g_steal_pointer(&reason);
    return result;
}

/* ------------------------------------------------------------ the ledger */

/* One line per case run: kind ('P' passed, 'S' skipped, 'B' failed as a
 * listed bug, 'F' failed), name and text, tab-separated. Under CK_FORK the
 * children share the file offset of the descriptor, so lines append. */
static void
ledger_add(char kind, const char *name, const char *text)
{
    g_autofree char *clean = g_strdup(text ? text : "");
    g_autofree char *line = NULL;
    const char *p;
    gsize left;

    g_strdelimit(clean, "\t\r\n", ' ');
    line = g_strdup_printf("%c\t%s\t%s\n", kind, name, clean);
    for (p = line, left = strlen(line); left > 0;) {
        gssize n = write(ledger, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        ck_assert_msg(n > 0, "writing %s: %s", ledger_path, g_strerror(errno));
        p += n;
        left -= (gsize)n;
    }
}

/* ------------------------------------------------------------ tests */

START_TEST(test_case)
{
    const Case *c = g_ptr_array_index(cases, _i);
    const Expected *e = find_expected(c->name);
    g_autofree char *text = NULL, *failure = NULL;
    Outcome outcome = run_case(c, &text);

    switch (outcome) {
    case OUTCOME_PASS:
        if (e == NULL)
            failure = g_strdup_printf("%s: passes but is not listed: add PASS(\"%s\") to "
                                      "`expected` in %s",
                                      c->name, c->name, __FILE__);
        else if (e->expect == EXPECT_BUG)
            failure = g_strdup_printf("%s: passes but is listed as a bug (%s): make it "
                                      "PASS(\"%s\")",
                                      c->name, e->note, c->name);
        break;
    case OUTCOME_SKIP:
        if (e != NULL)
            failure = g_strdup_printf("%s: listed as %s but refused as unsupported (update "
                                      "`expected`): %s",
                                      c->name, e->expect == EXPECT_PASS ? "PASS" : "BUG", text);
        break;
    case OUTCOME_FAIL:
        if (e == NULL || e->expect != EXPECT_BUG)
            failure = g_strdup_printf("%s: %s", c->name, text);
        break;
    }
    if (failure != NULL) {
        ledger_add('F', c->name, failure);
    } else if (outcome == OUTCOME_FAIL) {
        g_autofree char *known = g_strdup_printf("%s (%s)", text, e->note);
        ledger_add('B', c->name, known);
    } else {
        ledger_add(outcome == OUTCOME_PASS ? 'P' : 'S', c->name, text);
    }
    ck_assert_msg(failure == NULL, "%s", failure);
}
END_TEST

/* Every listed case exists, is in scope and is listed once. */
START_TEST(test_list)
{
    g_autoptr(GString) wrong = g_string_new(NULL);

    for (gsize i = 0; i < G_N_ELEMENTS(expected); i++) {
        gboolean found = FALSE;

        for (guint j = 0; !found && j < cases->len; j++)
            found =
                g_str_equal(((const Case *)g_ptr_array_index(cases, j))->name, expected[i].name);
        if (!found)
            g_string_append_printf(wrong, " %s (not an in-scope case of %s)", expected[i].name,
                                   data_dir);
        else if (find_expected(expected[i].name) != &expected[i])
            g_string_append_printf(wrong, " %s (listed twice)", expected[i].name);
    }
    ck_assert_msg(wrong->len == 0,
                  "`expected` is out of date (a case renamed, removed, or now using an op "
                  "taskprune does not have?):%s",
                  wrong->str);
}
END_TEST

/* Every case's model.onnx could be read. */
START_TEST(test_scan)
{
    ck_assert_msg(scan_errors->len == 0, "unreadable test data:\n%s", scan_errors->str);
}
END_TEST

/* ------------------------------------------------------------ main */

static int
compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the cases of <data>/<kind> into in scope (appended to `cases`) and
 * out of scope (counted). */
static void
scan_kind(const char *kind)
{
    g_autofree char *dir = g_build_filename(data_dir, kind, NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) listing = g_dir_open(dir, 0, &error);
    const char *entry;

    if (listing == NULL) {
        g_string_append_printf(scan_errors, "%s\n", error->message);
        return;
    }
    while ((entry = g_dir_read_name(listing)) != NULL)
        g_ptr_array_add(names, g_strdup(entry));
    g_ptr_array_sort(names, compare_names);

    for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *case_dir = g_build_filename(dir, name, NULL);
        g_autofree char *path = g_build_filename(case_dir, "model.onnx", NULL);
        g_autoptr(Onnx__ModelProto) proto = NULL;
        gboolean in_scope = TRUE;
        Case *c;

        if (!g_file_test(case_dir, G_FILE_TEST_IS_DIR))
            continue;
        proto = read_model(path, &error);
        if (proto == NULL) {
            g_string_append_printf(scan_errors, "%s/%s: %s\n", kind, name, error->message);
            g_clear_error(&error);
            continue;
        }
        for (gsize j = 0; in_scope && j < proto->graph->n_node; j++)
            in_scope = g_strv_contains(supported_ops, proto->graph->node[j]->op_type);
        if (!in_scope) {
            n_out_of_scope++;
            continue;
        }
        c = g_new0(Case, 1);
        c->name = g_strdup_printf("%s/%s", kind, name);
        c->dir = g_steal_pointer(&case_dir);
        g_ptr_array_add(cases, c);
    }
}

/* Prints the counts, then one line per case that did not pass. */
static void
print_summary(void)
{
    g_autofree char *contents = NULL;
    g_auto(GStrv) lines = NULL;
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    guint n_passed = 0, n_skipped = 0, n_bugs = 0, n_failed = 0, n_lost = 0;
    static const struct {
        char kind;
        const char *label;
    } groups[] = {{'S', "skipped"}, {'B', "known bug"}, {'F', "FAILED"}};

    if (!g_file_get_contents(ledger_path, &contents, NULL, NULL))
        contents = g_strdup("");
    lines = g_strsplit(contents, "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        g_auto(GStrv) fields = g_strsplit(lines[i], "\t", 3);
        if (g_strv_length(fields) != 3)
            continue;
        g_hash_table_add(seen, g_strdup(fields[1]));
        n_passed += fields[0][0] == 'P';
        n_skipped += fields[0][0] == 'S';
        n_bugs += fields[0][0] == 'B';
        n_failed += fields[0][0] == 'F';
    }
    for (guint i = 0; i < cases->len; i++)
        n_lost += !g_hash_table_contains(seen, ((const Case *)g_ptr_array_index(cases, i))->name);

    g_print("onnx conformance: %u passed, %u skipped (unsupported), %u out of scope\n", n_passed,
            n_skipped, n_out_of_scope);
    if (n_bugs + n_failed + n_lost > 0)
        g_print("onnx conformance: %u known bugs, %u failed, %u without a result\n", n_bugs,
                n_failed, n_lost);
    for (gsize g = 0; g < G_N_ELEMENTS(groups); g++) {
        for (guint i = 0; lines[i] != NULL; i++) {
            g_auto(GStrv) fields = g_strsplit(lines[i], "\t", 3);
            const char *text;

            if (g_strv_length(fields) != 3 || fields[0][0] != groups[g].kind)
                continue;
            /* A failure's text names the case already (for Check's report). */
            text = fields[2];
            if (g_str_has_prefix(text, fields[1]) &&
                g_str_has_prefix(text + strlen(fields[1]), ": "))
                text += strlen(fields[1]) + 2;
            g_print("  %s %s: %s\n", groups[g].label, fields[1], text);
        }
    }
    for (guint i = 0; i < cases->len; i++) {
        const Case *c = g_ptr_array_index(cases, i);
        if (!g_hash_table_contains(seen, c->name))
            g_print("  no result %s (it crashed or timed out: see Check's report above)\n",
                    c->name);
    }
}

int
main(void)
{
    g_autoptr(GError) error = NULL;
    Suite *suite;
    TCase *tc;
    int status;

    tp_test_init();
    suite = suite_create("onnx-conformance");
    data_dir = g_strdup(g_getenv("TP_ONNX_TESTDATA") != NULL ? g_getenv("TP_ONNX_TESTDATA")
                                                             : DEFAULT_DATA_DIR);
    if (!g_file_test(data_dir, G_FILE_TEST_IS_DIR)) {
        g_print("onnx conformance: skipped: no ONNX test data in %s (install libonnx-testdata, "
                "or set TP_ONNX_TESTDATA to its data folder)\n",
                data_dir);
        g_free(data_dir);
        return tp_test_run(suite);
    }

    cases = g_ptr_array_new_with_free_func(case_free);
    scan_errors = g_string_new(NULL);
    for (gsize i = 0; i < G_N_ELEMENTS(kinds); i++)
        scan_kind(kinds[i]);
    ledger = g_file_open_tmp("tp-onnx-conformance-XXXXXX", &ledger_path, &error);
    if (ledger < 0) {
        g_printerr("onnx conformance: %s\n", error->message);
        return 1;
    }
    tp_test_registry(); /* load the plugins once, before Check forks */

    tc = tcase_create("onnx-conformance");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_scan);
    tcase_add_test(tc, test_list);
    tcase_add_loop_test(tc, test_case, 0, (int)cases->len);
    suite_add_tcase(suite, tc);
    status = tp_test_run(suite);

    print_summary();
    close(ledger);
    g_unlink(ledger_path);
    g_free(ledger_path);
    g_ptr_array_unref(cases);
    g_string_free(scan_errors, TRUE);
    g_free(data_dir);
    return status;
}
