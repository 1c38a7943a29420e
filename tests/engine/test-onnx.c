/* test-onnx.c — ONNX in and out: models PyTorch exported (tests/data) give
 * PyTorch's outputs; export then import is bit-exact, metadata included;
 * truncated, bit-flipped and malformed files get clear errors, never a crash;
 * external data is read only from inside the model's folder. */
#include "config.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "tp-onnx.h"
#include "tp-test.h"
#include "tp-zoo.h"

static char *
data_path(const char *name)
{
    const char *dir = g_getenv("TP_TEST_DATA");

    ck_assert_msg(dir != NULL, "TP_TEST_DATA is not set (run through make check)");
    return g_build_filename(dir, name, NULL);
}

static float *
read_floats(const char *name, gsize *out_n)
{
    g_autofree char *path = data_path(name);
    g_autoptr(GError) error = NULL;
    char *bytes;
    gsize length;

    ck_assert_msg(g_file_get_contents(path, &bytes, &length, &error), "%s", error->message);
    *out_n = length / sizeof(float);
    return (float *)bytes;
}

static TpModel *
load(TpBackend *backend, const char *path)
{
    g_autoptr(GError) error = NULL;
    TpModel *model = tp_onnx_load(backend, path, &error);

    ck_assert_msg(model != NULL, "%s", error ? error->message : "");
    return model;
}

/* Runs an eval forward and returns a host copy of the output. */
static float *
run(TpModel *model, const float *input, int batch, gsize *out_n)
{
    g_autoptr(GError) error = NULL;
    float *out;

    ck_assert_msg(tp_model_forward(model, input, batch, TP_MODE_EVAL, &error), "%s",
                  error ? error->message : "");
    TpTensor *y = tp_model_get_value(model, tp_model_get_output(model));
    out = tp_tensor_dup_host(y, &error);
    ck_assert_msg(out != NULL, "%s", error ? error->message : "");
    *out_n = y->numel;
    return out;
}

/* ---------------------------------------------------------------- PyTorch */

static const struct {
    const char *name;
    int batch;
    guint n_nodes; /* ops after import: BN kept as nodes in vgg, folded in resnet */
} torch_models[] = {
    {"torch-vgg", 2, 12},
    {"torch-resnet", 2, 17},
    /* Shape arithmetic folded at import (Conv, Relu, Flatten, Gemm). */
    {"torch-view-dynamic", 2, 4},
    {"torch-view-fixed", 2, 4},
    {"torch-flatten-dynamic", 2, 4},
    {"torch-flatten-fixed", 2, 4},
    {"torch-arith-dynamic", 2, 4},
    {"torch-arith-fixed", 2, 4},
    /* Pointwise, broadcasting and reduction ops (make-act-models.py). */
    {"torch-mobile", 2, 16},
    {"torch-mobile-14", 2, 15},
    {"torch-gelu", 2, 24},
};

/* Each exported model, on every backend, gives PyTorch's outputs to 1e-4. */
START_TEST(test_torch)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));

    for (gsize m = 0; m < G_N_ELEMENTS(torch_models); m++) {
        g_autofree char *file = g_strconcat(torch_models[m].name, ".onnx", NULL);
        g_autofree char *input_file = g_strconcat(torch_models[m].name, ".input.bin", NULL);
        g_autofree char *output_file = g_strconcat(torch_models[m].name, ".output.bin", NULL);
        g_autofree char *path = data_path(file);
        g_autoptr(TpModel) model = load(backend, path);
        gsize n_in, n_want, n_got;
        g_autofree float *input = read_floats(input_file, &n_in);
        g_autofree float *want = read_floats(output_file, &n_want);
        g_autofree float *got = run(model, input, torch_models[m].batch, &n_got);
        g_autofree char *what = g_strdup_printf("%s on %s", file, backend->info->name);

        ck_assert_uint_eq(tp_model_get_n_nodes(model), torch_models[m].n_nodes);
        ck_assert_uint_eq(n_got, n_want);
        tp_test_assert_close(got, want, n_want, 1e-4, 0.0, what);
    }
}
END_TEST

/* Constant folding of shape arithmetic (tests/data/make-fold-models.py):
 * torch-view-dynamic with its Reshape's [batch, 144] computed through every
 * fold gives PyTorch's outputs (a fold that computes anything else makes the
 * Reshape refuse); arithmetic on the batch size is refused naming the node. */
START_TEST(test_fold)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autofree char *chain = data_path("fold-chain.onnx");
    g_autofree char *batch = data_path("fold-batch.onnx");
    g_autoptr(TpModel) model = load(backend, chain);
    g_autoptr(TpModel) refused = NULL;
    g_autoptr(GError) error = NULL;
    gsize n_in, n_want, n_got;
    g_autofree float *input = read_floats("torch-view-dynamic.input.bin", &n_in);
    g_autofree float *want = read_floats("torch-view-dynamic.output.bin", &n_want);
    g_autofree float *got = run(model, input, 2, &n_got);

    ck_assert_uint_eq(tp_model_get_n_nodes(model), 4);
    ck_assert_uint_eq(n_got, n_want);
    tp_test_assert_close(got, want, n_want, 1e-4, 0.0, "fold-chain.onnx");

    refused = tp_onnx_load(backend, batch, &error);
    ck_assert_ptr_null(refused);
    ck_assert_msg(strstr(error->message, "Mul node 'batch_mul'") != NULL &&
                      strstr(error->message, "batch size") != NULL,
                  "%s", error->message);
}
END_TEST

/* ---------------------------------------------------------------- round trip */

/* A model with every op and most attributes, random parameters, class names
 * and normalization. */
static TpModel *
every_op_model(TpBackend *backend)
{
    TpModel *model = tp_model_new(backend, 3, 11, 9);
    TpOpAttrs a;
    int x;

    memset(&a, 0, sizeof(a));
    a.conv = (TpConvAttrs){8, {3, 3}, {2, 1}, {1, 0, 2, 1}, {1, 1}, 1, TRUE};
    x = tp_test_add(model, TP_OP_CONV, "conv1", 0, 0, &a);
    memset(&a, 0, sizeof(a));
    a.batch_norm.epsilon = 1e-3f;
    a.batch_norm.momentum = 0.8f;
    x = tp_test_add(model, TP_OP_BATCH_NORM, "bn1", x, 0, &a);
    x = tp_test_add(model, TP_OP_RELU, "relu1", x, 0, NULL);
    memset(&a, 0, sizeof(a));
    a.conv = (TpConvAttrs){8, {3, 3}, {1, 1}, {2, 2, 2, 2}, {2, 2}, 8, FALSE};
    x = tp_test_add(model, TP_OP_CONV, "depthwise", x, 0, &a);
    memset(&a, 0, sizeof(a));
    a.pool = (TpPoolAttrs){{3, 3}, {2, 2}, {1, 1, 1, 1}, TRUE, FALSE};
    x = tp_test_add(model, TP_OP_MAX_POOL, "maxpool", x, 0, &a);
    memset(&a, 0, sizeof(a));
    a.pool = (TpPoolAttrs){{2, 2}, {1, 1}, {1, 1, 0, 0}, FALSE, TRUE};
    int branch = tp_test_add(model, TP_OP_AVERAGE_POOL, "avgpool", x, 0, &a);
    memset(&a, 0, sizeof(a));
    a.conv = (TpConvAttrs){8, {1, 1}, {1, 1}, {0}, {1, 1}, 1, TRUE};
    int side = tp_test_add(model, TP_OP_CONV, "side", branch, 0, &a);
    x = tp_test_add(model, TP_OP_ADD, "add", branch, side, NULL);
    x = tp_test_add(model, TP_OP_GLOBAL_AVERAGE_POOL, "gap", x, 0, NULL);
    x = tp_test_add(model, TP_OP_FLATTEN, "flatten", x, 0, NULL);
    memset(&a, 0, sizeof(a));
    a.gemm = (TpGemmAttrs){7, TRUE};
    x = tp_test_add(model, TP_OP_GEMM, "fc1", x, 0, &a);
    memset(&a, 0, sizeof(a));
    a.dropout.ratio = 0.25f;
    x = tp_test_add(model, TP_OP_DROPOUT, "drop", x, 0, &a);
    memset(&a, 0, sizeof(a));
    a.gemm = (TpGemmAttrs){4, FALSE};
    x = tp_test_add(model, TP_OP_GEMM, "fc2", x, 0, &a);
    tp_test_add(model, TP_OP_SOFTMAX, "softmax", x, 0, NULL);

    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        for (int p = 0; p < TP_NODE_MAX_PARAMS; p++) {
            TpTensor *t = tp_model_get_param(model, i, p);
            if (t == NULL)
                continue;
            g_autofree float *host = g_new(float, t->numel);
            /* BatchNorm's var (param 3) must stay positive. */
            tp_test_fill_uniform(host, t->numel, p == 3 ? 0.5f : -1.0f, 1.5f, 100 * i + p);
            ck_assert(tp_tensor_upload(t, host, NULL));
        }
    }
    const char *const classes[] = {"T-shirt/top", "Ankle boot", "a \"quoted\" name", "x", NULL};
    const float mean[] = {0.5f, 0.25f, 0.125f}, std[] = {0.3f, 0.2f, 0.1f};
    const int indices[] = {9, 0, 3, 7};
    tp_model_set_class_names(model, classes);
    tp_model_set_class_indices(model, indices, 4);
    tp_model_set_normalization(model, mean, std);
    return model;
}

/* Two models have the same ops, attributes and parameters, bit for bit. */
static void
assert_same_model(TpModel *a, TpModel *b)
{
    ck_assert_uint_eq(tp_model_get_n_nodes(a), tp_model_get_n_nodes(b));
    for (guint i = 0; i < tp_model_get_n_nodes(a); i++) {
        const TpNode *na = tp_model_get_node(a, i), *nb = tp_model_get_node(b, i);
        ck_assert_int_eq(na->op, nb->op);
        ck_assert_str_eq(na->name, nb->name);
        ck_assert_int_eq(na->n_params, nb->n_params);
        for (int p = 0; p < na->n_params; p++) {
            g_autofree float *ha = tp_tensor_dup_host(na->params[p], NULL);
            g_autofree float *hb = tp_tensor_dup_host(nb->params[p], NULL);
            ck_assert_uint_eq(na->params[p]->numel, nb->params[p]->numel);
            ck_assert_msg(memcmp(ha, hb, na->params[p]->numel * sizeof(float)) == 0,
                          "%s parameter %d differs", na->name, p);
        }
    }
}

START_TEST(test_round_trip)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = every_op_model(backend);
    g_autofree char *dir = tp_test_make_temp_dir();
    g_autofree char *path = g_build_filename(dir, "every-op.onnx", NULL);
    g_autoptr(GError) error = NULL;
    float input[4 * 3 * 11 * 9];
    gsize n1, n2;

    ck_assert_msg(tp_onnx_save(model, path, &error), "%s", error ? error->message : "");
    g_autoptr(TpModel) back = load(backend, path);
    assert_same_model(model, back);

    tp_test_fill_uniform(input, G_N_ELEMENTS(input), -2.0f, 2.0f, 5);
    g_autofree float *y1 = run(model, input, 4, &n1);
    g_autofree float *y2 = run(back, input, 4, &n2);
    ck_assert_uint_eq(n1, 4 * 4);
    ck_assert_uint_eq(n1, n2);
    ck_assert_msg(memcmp(y1, y2, n1 * sizeof(float)) == 0, "outputs differ after a round trip");

    const char *const *classes = tp_model_get_class_names(back);
    ck_assert_ptr_nonnull(classes);
    ck_assert_str_eq(classes[0], "T-shirt/top");
    ck_assert_str_eq(classes[2], "a \"quoted\" name");
    ck_assert_ptr_null(classes[4]);
    int n_indices;
    const int *indices = tp_model_get_class_indices(back, &n_indices);
    ck_assert_int_eq(n_indices, 4);
    ck_assert(indices[0] == 9 && indices[1] == 0 && indices[2] == 3 && indices[3] == 7);
    const float *mean, *std;
    ck_assert(tp_model_get_normalization(back, &mean, &std));
    ck_assert_float_eq(mean[1], 0.25f);
    ck_assert_float_eq(std[2], 0.1f);

    /* A second export of the import is byte-identical to the first. */
    g_autofree char *again = g_build_filename(dir, "again.onnx", NULL);
    g_autofree char *b1 = NULL, *b2 = NULL;
    gsize l1, l2;
    ck_assert(tp_onnx_save(back, again, NULL));
    ck_assert(g_file_get_contents(path, &b1, &l1, NULL));
    ck_assert(g_file_get_contents(again, &b2, &l2, NULL));
    ck_assert(l1 == l2 && memcmp(b1, b2, l1) == 0);
    tp_test_remove_dir(dir);
}
END_TEST

/* The zoo's architectures, small, as the round-trip and ONNX Runtime tests
 * use them. */
static const struct {
    const char *arch;
    TpZooConfig config;
} zoo_models[] = {
    {"lenet5", {1, 28, 28, 10, 1.0, 1}},
    {"vgg11", {1, 28, 28, 10, 0.125, 2}},
    {"resnet20", {3, 32, 32, 10, 0.5, 3}},
};

static TpModel *
zoo_model(TpBackend *backend, gsize i)
{
    g_autoptr(GError) error = NULL;
    TpModel *model = tp_zoo_build(backend, zoo_models[i].arch, &zoo_models[i].config, &error);

    ck_assert_msg(model != NULL, "%s", error ? error->message : "");
    return model;
}

START_TEST(test_round_trip_zoo)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autofree char *dir = tp_test_make_temp_dir();

    for (gsize m = 0; m < G_N_ELEMENTS(zoo_models); m++) {
        g_autoptr(TpModel) model = zoo_model(backend, m);
        g_autofree char *path = g_strdup_printf("%s/%s.onnx", dir, zoo_models[m].arch);
        const TpShape *shape = tp_model_get_shape(model, 0);
        gsize n = 2 * (gsize)shape->dim[0] * shape->dim[1] * shape->dim[2], n1, n2;
        g_autofree float *input = g_new(float, n);

        ck_assert(tp_onnx_save(model, path, NULL));
        g_autoptr(TpModel) back = load(backend, path);
        assert_same_model(model, back);
        tp_test_fill_uniform(input, n, -1.0f, 1.0f, 9);
        g_autofree float *y1 = run(model, input, 2, &n1);
        g_autofree float *y2 = run(back, input, 2, &n2);
        ck_assert(n1 == n2 && memcmp(y1, y2, n1 * sizeof(float)) == 0);
    }
    tp_test_remove_dir(dir);
}
END_TEST

/* Export writes unique node and weight names whatever the model's names
 * are (two Convs named alike, an explicit name equal to a generated one), and
 * a model without ops; each imports again and computes the same outputs. */
START_TEST(test_round_trip_names)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autofree char *dir = tp_test_make_temp_dir();
    g_autofree char *path = g_build_filename(dir, "m.onnx", NULL);
    TpOpAttrs a;
    float input[2 * 2 * 5 * 5];
    gsize n1, n2;

    for (int variant = 0; variant < 2; variant++) {
        g_autoptr(TpModel) model = tp_model_new(backend, 2, 5, 5);
        g_autoptr(GError) error = NULL;
        if (variant == 0) {
            memset(&a, 0, sizeof(a));
            a.conv = (TpConvAttrs){2, {3, 3}, {1, 1}, {1, 1, 1, 1}, {1, 1}, 1, TRUE};
            int x = tp_test_add(model, TP_OP_CONV, "conv", 0, 0, &a);
            x = tp_test_add(model, TP_OP_CONV, "conv", x, 0, &a);
            x = tp_test_add(model, TP_OP_CONV, NULL, x, 0, &a);
            x = tp_test_add(model, TP_OP_CONV, "Conv_2", x, 0, &a);
            tp_test_add(model, TP_OP_RELU, "conv.weight", x, 0, NULL);
            for (guint i = 0; i < 4; i++)
                for (int p = 0; p < 2; p++) {
                    TpTensor *t = tp_model_get_param(model, i, p);
                    g_autofree float *host = g_new(float, t->numel);
                    tp_test_fill_uniform(host, t->numel, -1.0f, 1.0f, 10 * i + p);
                    ck_assert(tp_tensor_upload(t, host, NULL));
                }
        }
        ck_assert_msg(tp_onnx_save(model, path, &error), "%s", error ? error->message : "");
        g_autoptr(TpModel) back = load(backend, path);
        ck_assert_uint_eq(tp_model_get_n_nodes(back), tp_model_get_n_nodes(model));
        tp_test_fill_uniform(input, G_N_ELEMENTS(input), -1.0f, 1.0f, 3);
        g_autofree float *y1 = run(model, input, 2, &n1);
        g_autofree float *y2 = run(back, input, 2, &n2);
        ck_assert(n1 == n2 && memcmp(y1, y2, n1 * sizeof(float)) == 0);
    }
    tp_test_remove_dir(dir);
}
END_TEST

/* PyTorch's models survive a round trip through taskprune bit-exactly too. */
START_TEST(test_round_trip_torch)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autofree char *dir = tp_test_make_temp_dir();

    for (gsize m = 0; m < G_N_ELEMENTS(torch_models); m++) {
        g_autofree char *file = g_strconcat(torch_models[m].name, ".onnx", NULL);
        g_autofree char *input_file = g_strconcat(torch_models[m].name, ".input.bin", NULL);
        g_autofree char *path = data_path(file);
        g_autofree char *copy = g_build_filename(dir, file, NULL);
        g_autoptr(TpModel) model = load(backend, path);
        gsize n_in, n1, n2;

        ck_assert(tp_onnx_save(model, copy, NULL));
        g_autoptr(TpModel) back = load(backend, copy);
        assert_same_model(model, back);
        g_autofree float *input = read_floats(input_file, &n_in);
        g_autofree float *y1 = run(model, input, torch_models[m].batch, &n1);
        g_autofree float *y2 = run(back, input, torch_models[m].batch, &n2);
        ck_assert(n1 == n2 && memcmp(y1, y2, n1 * sizeof(float)) == 0);
    }
    tp_test_remove_dir(dir);
}
END_TEST

START_TEST(test_save_error)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autoptr(TpModel) model = every_op_model(backend);
    g_autoptr(GError) error = NULL;

    ck_assert(!tp_onnx_save(model, "/nonexistent-folder/model.onnx", &error));
    ck_assert(g_error_matches(error, TP_ONNX_ERROR, TP_ONNX_ERROR_IO));
    ck_assert_ptr_nonnull(strstr(error->message, "/nonexistent-folder/model.onnx"));
}
END_TEST

/* ---------------------------------------------------------------- bad input */

/* Loading data that must fail: a TP_ONNX_ERROR whose message starts with
 * the source name. Returns the message (owned). */
static char *
load_fails(TpBackend *backend, const guint8 *data, gsize length, const char *dir)
{
    g_autoptr(GError) error = NULL;
    TpModel *model = tp_onnx_load_data(backend, data, length, "bad.onnx", dir, &error);

    ck_assert_msg(model == NULL, "bad data loaded");
    ck_assert_msg(error != NULL && error->domain == TP_ONNX_ERROR, "not a TP_ONNX_ERROR");
    ck_assert_msg(g_str_has_prefix(error->message, "bad.onnx: "), "%s", error->message);
    return g_strdup(error->message);
}

/* Every truncation of a real model fails cleanly; random bit flips either
 * load (a flipped weight is still a model) or fail cleanly — never crash. */
START_TEST(test_corrupt)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open(tp_test_backend_name(_i));
    g_autofree char *path = data_path("torch-resnet.onnx");
    g_autofree guint8 *bytes = NULL;
    gsize length;
    int loaded = 0, refused = 0;

    ck_assert(g_file_get_contents(path, (char **)&bytes, &length, NULL));
    for (gsize k = 0; k < 97; k++)
        g_free(load_fails(backend, bytes, length * k / 97, NULL));

    g_autoptr(GRand) rand = g_rand_new_with_seed(11);
    g_autofree guint8 *copy = g_malloc(length);
    for (int trial = 0; trial < 400; trial++) {
        g_autoptr(GError) error = NULL;
        memcpy(copy, bytes, length);
        for (int f = 0; f < 1 + trial % 4; f++)
            copy[g_rand_int_range(rand, 0, (gint32)length)] ^=
                (guint8)(1u << g_rand_int_range(rand, 0, 8));
        TpModel *model = tp_onnx_load_data(backend, copy, length, "flipped.onnx", NULL, &error);
        if (model != NULL) {
            loaded++;
            tp_model_free(model);
        } else {
            refused++;
            ck_assert_msg(error->domain == TP_ONNX_ERROR &&
                              g_str_has_prefix(error->message, "flipped.onnx: "),
                          "%s", error->message);
        }
    }
    ck_assert_int_gt(refused, 0);
    ck_assert_int_eq(loaded + refused, 400);
}
END_TEST

/* protobuf-c allocations go to an arena freed as a whole, so a test may point
 * fields of an unpacked model at its own strings and arrays. */
static void *
arena_alloc(void *arena, size_t size)
{
    void *p = g_malloc0(size);
    g_ptr_array_add(arena, p);
    return p;
}

static void
arena_free(void *arena, void *p)
{
}

/* The every-op model as a ModelProto unpacked into arena, to break on purpose. */
static Onnx__ModelProto *
every_op_proto(TpBackend *backend, GPtrArray *arena)
{
    ProtobufCAllocator allocator = {arena_alloc, arena_free, arena};
    g_autofree guint8 *bytes = NULL;
    gsize length;
    g_autoptr(TpModel) model = every_op_model(backend);
    g_autofree char *dir = tp_test_make_temp_dir();
    g_autofree char *path = g_build_filename(dir, "m.onnx", NULL);

    ck_assert(tp_onnx_save(model, path, NULL));
    ck_assert(g_file_get_contents(path, (char **)&bytes, &length, NULL));
    tp_test_remove_dir(dir);
    return onnx__model_proto__unpack(&allocator, length, bytes);
}

static guint8 *
pack(const Onnx__ModelProto *proto, gsize *out_length)
{
    *out_length = onnx__model_proto__get_packed_size(proto);
    guint8 *bytes = g_malloc(*out_length);
    onnx__model_proto__pack(proto, bytes);
    return bytes;
}

static Onnx__TensorProto *
initializer(Onnx__ModelProto *proto, const char *name)
{
    for (gsize i = 0; i < proto->graph->n_initializer; i++)
        if (g_str_equal(proto->graph->initializer[i]->name, name))
            return proto->graph->initializer[i];
    ck_abort_msg("no initializer %s", name);
    return NULL;
}

/* Each breakage of a valid model and the words its error must contain. */
typedef void (*Breakage)(Onnx__ModelProto *proto, GPtrArray *arena);

static void
break_op(Onnx__ModelProto *proto, GPtrArray *arena)
{
    proto->graph->node[2]->op_type = (char *)"Hardmax";
}

/* Three unsupported nodes of two types: one message lists both. */
static void
break_ops(Onnx__ModelProto *proto, GPtrArray *arena)
{
    proto->graph->node[2]->op_type = (char *)"Hardmax";
    proto->graph->node[4]->op_type = (char *)"Einsum";
    proto->graph->node[5]->op_type = (char *)"Hardmax";
}

static void
break_dynamic(Onnx__ModelProto *proto, GPtrArray *arena)
{
    Onnx__TensorShapeProto__Dimension *d = proto->graph->input[0]->type->tensor_type->shape->dim[2];
    d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    d->dim_param = (char *)"height";
}

static void
break_weight_shape(Onnx__ModelProto *proto, GPtrArray *arena)
{
    Onnx__TensorProto *t = initializer(proto, "conv1.weight");
    t->dims[1] = 1; /* [8, 3, 3, 3] -> [8, 1, 9, 3]: the same bytes */
    t->dims[2] = 9;
}

static void
break_raw_length(Onnx__ModelProto *proto, GPtrArray *arena)
{
    initializer(proto, "fc1.weight")->raw_data.len -= 4;
}

static void
break_missing(Onnx__ModelProto *proto, GPtrArray *arena)
{
    proto->graph->node[10]->input[1] = (char *)"nowhere";
}

static void
break_opset(Onnx__ModelProto *proto, GPtrArray *arena)
{
    proto->opset_import[0]->version = 18;
}

static void
break_bn_training(Onnx__ModelProto *proto, GPtrArray *arena)
{
    proto->graph->node[1]->n_output = 3;
    proto->graph->node[1]->output = arena_alloc(arena, 3 * sizeof(char *));
    proto->graph->node[1]->output[0] = (char *)"v2";
    proto->graph->node[1]->output[1] = (char *)"mean";
    proto->graph->node[1]->output[2] = (char *)"var";
}

static void
break_attribute(Onnx__ModelProto *proto, GPtrArray *arena)
{
    proto->graph->node[4]->attribute[0]->name = (char *)"storage_hint";
}

/* ONNX's fields are optional: protobuf-c leaves an absent name NULL. */
static void
break_unnamed_initializer(Onnx__ModelProto *proto, GPtrArray *arena)
{
    initializer(proto, "conv1.bias")->name = NULL;
}

static void
break_unnamed_input(Onnx__ModelProto *proto, GPtrArray *arena)
{
    proto->graph->input[0]->name = NULL;
}

static void
break_unnamed_output(Onnx__ModelProto *proto, GPtrArray *arena)
{
    proto->graph->output[0]->name = NULL;
}

static void
break_unnamed_attribute(Onnx__ModelProto *proto, GPtrArray *arena)
{
    proto->graph->node[0]->attribute[1]->name = NULL;
}

static void
break_no_op_type(Onnx__ModelProto *proto, GPtrArray *arena)
{
    proto->graph->node[3]->op_type = NULL;
}

/* conv1's attributes are kernel_shape, strides, pads, dilations, group. */
static void
break_stride_zero(Onnx__ModelProto *proto, GPtrArray *arena)
{
    proto->graph->node[0]->attribute[1]->ints[1] = 0;
}

static void
break_stride_zero_same(Onnx__ModelProto *proto, GPtrArray *arena)
{
    Onnx__AttributeProto *pads = proto->graph->node[0]->attribute[2];

    break_stride_zero(proto, arena);
    pads->name = (char *)"auto_pad";
    pads->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    pads->n_ints = 0;
    pads->has_s = TRUE;
    pads->s.data = (guint8 *)"SAME_UPPER";
    pads->s.len = strlen("SAME_UPPER");
}

static void
break_duplicate_name(Onnx__ModelProto *proto, GPtrArray *arena)
{
    proto->graph->node[3]->name = proto->graph->node[0]->name;
}

static const struct {
    Breakage apply;
    const char *expect[3];
    int code;
} breakages[] = {
    {break_op, {"Hardmax node 'relu1'", "not supported"}, TP_ONNX_ERROR_UNSUPPORTED},
    {break_ops,
     {"3 nodes of 2 op types are not supported",
      "Hardmax (2 nodes; first: Hardmax node 'relu1')",
      "Einsum (1 node; first: Einsum node 'maxpool')"},
     TP_ONNX_ERROR_UNSUPPORTED},
    {break_dynamic, {"dimension 2 is dynamic ('height')"}, TP_ONNX_ERROR_UNSUPPORTED},
    {break_weight_shape,
     {"Conv node 'conv1'", "weight has shape [8, 1, 9, 3], [8, 3, 9, 3] is needed"},
     TP_ONNX_ERROR_INVALID},
    {break_raw_length, {"tensor 'fc1.weight'", "raw data"}, TP_ONNX_ERROR_INVALID},
    {break_missing, {"Gemm node 'fc1'", "'nowhere'"}, TP_ONNX_ERROR_INVALID},
    {break_opset, {"opset 18 is not supported"}, TP_ONNX_ERROR_UNSUPPORTED},
    {break_bn_training, {"BatchNormalization node 'bn1'", "output 1"}, TP_ONNX_ERROR_UNSUPPORTED},
    {break_attribute, {"MaxPool node 'maxpool'", "'storage_hint'"}, TP_ONNX_ERROR_UNSUPPORTED},
    {break_unnamed_initializer, {"initializer 1 has no name"}, TP_ONNX_ERROR_INVALID},
    {break_unnamed_input, {"graph input 0 has no name"}, TP_ONNX_ERROR_INVALID},
    {break_unnamed_output, {"graph output 0 has no name"}, TP_ONNX_ERROR_INVALID},
    {break_unnamed_attribute, {"Conv node 'conv1'", "attribute 1 has no name"},
     TP_ONNX_ERROR_INVALID},
    {break_no_op_type, {"the op type of node 3 has no name"}, TP_ONNX_ERROR_INVALID},
    {break_stride_zero, {"Conv node 'conv1'", "'strides' holds 0"}, TP_ONNX_ERROR_INVALID},
    {break_stride_zero_same, {"Conv node 'conv1'", "'strides' holds 0"}, TP_ONNX_ERROR_INVALID},
    {break_duplicate_name, {"Conv node 'conv1'", "same name"}, TP_ONNX_ERROR_INVALID},
};

START_TEST(test_malformed)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(GPtrArray) arena = g_ptr_array_new_with_free_func(g_free);
    Onnx__ModelProto *proto = every_op_proto(backend, arena);
    g_autofree guint8 *broken = NULL;
    gsize broken_length;
    g_autoptr(GError) error = NULL;

    breakages[_i].apply(proto, arena);
    broken = pack(proto, &broken_length);
    ck_assert_ptr_null(tp_onnx_load_data(backend, broken, broken_length, "bad.onnx", NULL, &error));
    ck_assert_msg(g_error_matches(error, TP_ONNX_ERROR, breakages[_i].code), "%s (code %d)",
                  error->message, error->code);
    for (int k = 0; k < 3 && breakages[_i].expect[k]; k++)
        ck_assert_msg(strstr(error->message, breakages[_i].expect[k]) != NULL, "'%s' lacks '%s'",
                      error->message, breakages[_i].expect[k]);
}
END_TEST

/* Hostile sizes fail when the model is read, before anything large is
 * allocated: an input of 60000x60000 pixels (the 185-byte model), and
 * a Conv with 10^6 output channels on a 64x64 image (4 MB of weights, 16 GB of
 * activations per sample). Raising [backend] max-tensor-bytes admits the
 * small one's input. */
START_TEST(test_hostile_sizes)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(GPtrArray) arena = g_ptr_array_new_with_free_func(g_free);
    ProtobufCAllocator allocator = {arena_alloc, arena_free, arena};
    g_autoptr(TpModel) model = tp_model_new(backend, 1, 64, 64);
    g_autofree char *dir = tp_test_make_temp_dir();
    g_autofree char *path = g_build_filename(dir, "m.onnx", NULL);
    g_autofree guint8 *bytes = NULL, *packed = NULL;
    gsize length, packed_length;
    TpOpAttrs a;

    memset(&a, 0, sizeof(a));
    a.conv = (TpConvAttrs){1, {1, 1}, {1, 1}, {0}, {1, 1}, 1, FALSE};
    tp_test_add(model, TP_OP_CONV, "wide", 0, 0, &a);
    ck_assert(tp_onnx_save(model, path, NULL));
    ck_assert(g_file_get_contents(path, (char **)&bytes, &length, NULL));
    tp_test_remove_dir(dir);

    Onnx__ModelProto *proto = onnx__model_proto__unpack(&allocator, length, bytes);
    Onnx__TensorShapeProto *shape = proto->graph->input[0]->type->tensor_type->shape;
    shape->dim[2]->dim_value = shape->dim[3]->dim_value = 60000;
    packed = pack(proto, &packed_length);
    g_autofree char *message = load_fails(backend, packed, packed_length, NULL);
    ck_assert_msg(strstr(message, "input 'input' (one sample) of shape 1x60000x60000 is larger "
                                  "than the limit of 4294967296 bytes"),
                  "%s", message);
    backend->max_tensor_bytes = G_GUINT64_CONSTANT(1) << 34;
    TpModel *raised = tp_onnx_load_data(backend, packed, packed_length, "raised.onnx", NULL, NULL);
    ck_assert_ptr_nonnull(raised);
    tp_model_free(raised);
    backend->max_tensor_bytes = TP_BACKEND_DEFAULT_MAX_TENSOR_BYTES;

    shape->dim[2]->dim_value = shape->dim[3]->dim_value = 64;
    Onnx__TensorProto *w = initializer(proto, "wide.weight");
    w->dims[0] = 1000000;
    w->raw_data.len = 1000000 * sizeof(float);
    w->raw_data.data = arena_alloc(arena, w->raw_data.len);
    g_free(packed);
    packed = pack(proto, &packed_length);
    g_free(message);
    message = load_fails(backend, packed, packed_length, NULL);
    ck_assert_msg(strstr(message, "Conv node 'wide'") &&
                      strstr(message, "one sample of shape 1000000x64x64 is larger than the limit"),
                  "%s", message);
}
END_TEST

/* PyTorch's exporter dedups equal initializers: a weight reached through an
 * Identity (and that Identity's output through a second one) loads, and the
 * model computes what the original does. */
START_TEST(test_identity_on_constant)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(GPtrArray) arena = g_ptr_array_new_with_free_func(g_free);
    Onnx__ModelProto *proto = every_op_proto(backend, arena);
    Onnx__GraphProto *graph = proto->graph;
    Onnx__NodeProto **nodes = arena_alloc(arena, (graph->n_node + 2) * sizeof(*nodes));
    g_autoptr(TpModel) original = every_op_model(backend);
    g_autoptr(TpModel) model = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree guint8 *bytes = NULL;
    g_autofree float *x = g_new(float, 2 * 3 * 11 * 9);
    g_autofree float *want = NULL;
    g_autofree float *got = NULL;
    gsize n_want, n_got, length;

    for (int k = 0; k < 2; k++) {
        Onnx__NodeProto *id = arena_alloc(arena, sizeof(*id));

        onnx__node_proto__init(id);
        id->name = k == 0 ? (char *)"Identity_0" : (char *)"Identity_1";
        id->op_type = (char *)"Identity";
        id->n_input = id->n_output = 1;
        id->input = arena_alloc(arena, sizeof(char *));
        id->output = arena_alloc(arena, sizeof(char *));
        id->input[0] = k == 0 ? (char *)"fc1.weight" : (char *)"shared.0";
        id->output[0] = k == 0 ? (char *)"shared.0" : (char *)"shared.1";
        nodes[k] = id;
    }
    for (gsize i = 0; i < graph->n_node; i++) {
        nodes[i + 2] = graph->node[i];
        for (gsize j = 0; j < graph->node[i]->n_input; j++)
            if (g_str_equal(graph->node[i]->input[j], "fc1.weight"))
                graph->node[i]->input[j] = (char *)"shared.1";
    }
    graph->node = nodes;
    graph->n_node += 2;
    bytes = pack(proto, &length);
    model = tp_onnx_load_data(backend, bytes, length, "dedup.onnx", NULL, &error);
    ck_assert_msg(model != NULL, "%s", error ? error->message : "");
    ck_assert_uint_eq(tp_model_get_n_nodes(model), tp_model_get_n_nodes(original));

    tp_test_fill_uniform(x, 2 * 3 * 11 * 9, -1.0f, 1.0f, 7);
    want = run(original, x, 2, &n_want);
    got = run(model, x, 2, &n_got);
    ck_assert_uint_eq(n_got, n_want);
    for (gsize i = 0; i < n_want; i++)
        ck_assert_float_eq(got[i], want[i]);
}
END_TEST

/* External data: read from a file inside the model's folder; refused when
 * the location leaves it or the file is short. */
static const struct {
    const char *location;
    gboolean ok;
    const char *expect;
} external[] = {
    {"weights.bin", TRUE, NULL},
    {"../weights.bin", FALSE, "must be a relative path inside the model's folder"},
    {"/etc/passwd", FALSE, "must be a relative path inside the model's folder"},
    {"short.bin", FALSE, "bytes at offset 0"},
    {"absent.bin", FALSE, "missing or outside"},
};

START_TEST(test_external_data)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(GPtrArray) arena = g_ptr_array_new_with_free_func(g_free);
    Onnx__ModelProto *proto = every_op_proto(backend, arena);
    g_autofree guint8 *packed = NULL;
    gsize packed_length;
    g_autofree char *dir = tp_test_make_temp_dir();
    g_autofree char *model_path = g_build_filename(dir, "model.onnx", NULL);
    g_autofree char *weights = g_build_filename(dir, "weights.bin", NULL);
    g_autofree char *short_file = g_build_filename(dir, "short.bin", NULL);
    g_autoptr(GError) error = NULL;
    Onnx__TensorProto *t = initializer(proto, "fc1.weight");
    ProtobufCBinaryData raw = t->raw_data;
    char offset[] = "offset", zero[] = "0";

    ck_assert(g_file_set_contents(weights, (const char *)raw.data, (gssize)raw.len, NULL));
    ck_assert(g_file_set_contents(short_file, (const char *)raw.data, (gssize)raw.len / 2, NULL));
    Onnx__StringStringEntryProto location = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    Onnx__StringStringEntryProto start = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    Onnx__StringStringEntryProto *entries[] = {&location, &start};
    location.key = (char *)"location";
    location.value = (char *)external[_i].location;
    start.key = offset;
    start.value = zero;
    t->has_raw_data = FALSE;
    t->raw_data.len = 0;
    t->has_data_location = TRUE;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    t->n_external_data = 2;
    t->external_data = entries;
    packed = pack(proto, &packed_length);
    ck_assert(g_file_set_contents(model_path, (const char *)packed, (gssize)packed_length, NULL));

    TpModel *model = tp_onnx_load(backend, model_path, &error);
    if (external[_i].ok) {
        ck_assert_msg(model != NULL, "%s", error ? error->message : "");
        g_autofree float *w = tp_tensor_dup_host(tp_model_get_param(model, 10, 0), NULL);
        ck_assert(memcmp(w, raw.data, raw.len) == 0);
        tp_model_free(model);
    } else {
        ck_assert_ptr_null(model);
        ck_assert_msg(strstr(error->message, external[_i].expect) &&
                          strstr(error->message, "fc1.weight"),
                      "%s", error->message);
    }
    tp_test_remove_dir(dir);
}
END_TEST

START_TEST(test_not_a_file)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(GError) error = NULL;

    ck_assert_ptr_null(tp_onnx_load(backend, "/nonexistent/model.onnx", &error));
    ck_assert(g_error_matches(error, TP_ONNX_ERROR, TP_ONNX_ERROR_IO));
    ck_assert_ptr_nonnull(strstr(error->message, "/nonexistent/model.onnx"));
    g_clear_error(&error);
    g_free(load_fails(backend, (const guint8 *)"", 0, NULL));
}
END_TEST

/* ---------------------------------------------------------------- ONNX Runtime */

/* The folder of tests/ort/run.js when onnxruntime-node is installed there
 * (install-deps.sh does it), else NULL after saying why. */
static const char *
ort_dir(void)
{
    const char *dir = g_getenv("TP_ORT_DIR");
    g_autofree char *module =
        dir ? g_build_filename(dir, "node_modules", "onnxruntime-node", "package.json", NULL)
            : NULL;
    g_autofree char *node = g_find_program_in_path("node");

    if (module == NULL || node == NULL || !g_file_test(module, G_FILE_TEST_EXISTS)) {
        printf("SKIP: ONNX Runtime interoperability: onnxruntime-node is not installed in "
               "%s (run ./install-deps.sh)\n",
               dir ? dir : "tests/ort");
        return NULL;
    }
    return dir;
}

/* Runs path in ONNX Runtime on input [batch, C, H, W]; returns its output. */
static float *
ort_run(const char *dir, const char *path, const float *input, const TpShape *shape, int batch,
        gsize *out_n)
{
    g_autofree char *work = tp_test_make_temp_dir();
    g_autofree char *in_file = g_build_filename(work, "input.bin", NULL);
    g_autofree char *out_file = g_build_filename(work, "output.bin", NULL);
    g_autofree char *script = g_build_filename(dir, "run.js", NULL);
    g_autofree char *dims =
        g_strdup_printf("%dx%dx%dx%d", batch, shape->dim[0], shape->dim[1], shape->dim[2]);
    g_autofree char *err = NULL, *bytes = NULL;
    g_autoptr(GError) error = NULL;
    gsize n = (gsize)batch * shape->dim[0] * shape->dim[1] * shape->dim[2], length;
    int status;
    const char *argv[] = {"node", script, path, in_file, dims, out_file, NULL};

    ck_assert(g_file_set_contents(in_file, (const char *)input, (gssize)(n * sizeof(float)), NULL));
    ck_assert_msg(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                               &err, &status, &error),
                  "%s", error ? error->message : "");
    ck_assert_msg(g_spawn_check_wait_status(status, NULL), "ONNX Runtime failed on %s: %s", path,
                  err);
    ck_assert(g_file_get_contents(out_file, &bytes, &length, NULL));
    tp_test_remove_dir(work);
    *out_n = length / sizeof(float);
    return (float *)g_steal_pointer(&bytes);
}

/* Models taskprune exports run in ONNX Runtime with taskprune's outputs
 * (within 1e-4): the every-op model, the zoo's architectures, and the
 * PyTorch models after a trip through taskprune. */
START_TEST(test_onnxruntime)
{
    const char *dir = ort_dir();
    if (dir == NULL)
        return;
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autofree char *work = tp_test_make_temp_dir();
    g_autoptr(GPtrArray) models = g_ptr_array_new_with_free_func((GDestroyNotify)tp_model_free);

    g_ptr_array_add(models, every_op_model(backend));
    for (gsize m = 0; m < G_N_ELEMENTS(zoo_models); m++)
        g_ptr_array_add(models, zoo_model(backend, m));
    for (gsize m = 0; m < G_N_ELEMENTS(torch_models); m++) {
        g_autofree char *file = g_strconcat(torch_models[m].name, ".onnx", NULL);
        g_autofree char *path = data_path(file);
        g_ptr_array_add(models, load(backend, path));
    }
    for (guint m = 0; m < models->len; m++) {
        TpModel *model = g_ptr_array_index(models, m);
        const TpShape *shape = tp_model_get_shape(model, 0);
        g_autofree char *path = g_strdup_printf("%s/model-%u.onnx", work, m);
        gsize n = 3 * (gsize)shape->dim[0] * shape->dim[1] * shape->dim[2], n_ort, n_tp;
        g_autofree float *input = g_new(float, n);

        ck_assert(tp_onnx_save(model, path, NULL));
        tp_test_fill_uniform(input, n, -1.0f, 1.0f, 40 + m);
        g_autofree float *want = run(model, input, 3, &n_tp);
        g_autofree float *got = ort_run(dir, path, input, shape, 3, &n_ort);
        ck_assert_uint_eq(n_ort, n_tp);
        tp_test_assert_close(got, want, n_tp, 1e-4, 0.0, path);
    }
    tp_test_remove_dir(work);
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("onnx");
    TCase *tc = tcase_create("onnx");
    int n;

    tp_test_init();
    n = tp_test_count_backends();
    tcase_add_loop_test(tc, test_torch, 0, n);
    tcase_add_test(tc, test_fold);
    tcase_add_loop_test(tc, test_round_trip, 0, n);
    tcase_add_loop_test(tc, test_round_trip_torch, 0, n);
    tcase_add_loop_test(tc, test_round_trip_zoo, 0, n);
    tcase_add_loop_test(tc, test_round_trip_names, 0, n);
    tcase_add_loop_test(tc, test_save_error, 0, n);
    tcase_add_loop_test(tc, test_corrupt, 0, n);
    tcase_add_loop_test(tc, test_malformed, 0, G_N_ELEMENTS(breakages));
    tcase_add_test(tc, test_identity_on_constant);
    tcase_add_loop_test(tc, test_external_data, 0, G_N_ELEMENTS(external));
    tcase_add_test(tc, test_not_a_file);
    tcase_add_test(tc, test_hostile_sizes);
    tcase_add_test(tc, test_onnxruntime);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
