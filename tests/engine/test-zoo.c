/* test-zoo.c — the built-in architectures (engine/tp-zoo.c) on the cpu
 * backend: every arch builds for 1x28x28 and 3x32x32 at two widths and runs
 * a forward pass with logits [batch, classes]; its parameter, running-stat
 * and MAC counts equal a per-layer tally written out here, and the published
 * totals of vgg11 and resnet18 at 1x28x28; node names and where VGG pools;
 * the initialization statistics (Kaiming-normal convs, uniform linear layers,
 * BatchNorm 1/0/0/1); determinism in the seed; errors that say what is
 * valid. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "tp-test.h"
#include "tp-zoo.h"

static const char *const arch_list[] = {"lenet5", "vgg11", "vgg16", "resnet18", "resnet20"};

/* The inputs every arch must build for. */
static const int inputs[][3] = {{1, 28, 28}, {3, 32, 32}};

static const double widths[] = {1.0, 0.3};

/* Builds arch or fails the test with the error. */
static TpModel *
build(TpBackend *backend, const char *arch, int c, int h, int w, int classes, double width,
      guint64 seed)
{
    TpZooConfig config = {c, h, w, classes, width, seed};
    g_autoptr(GError) error = NULL;
    TpModel *model = tp_zoo_build(backend, arch, &config, &error);

    ck_assert_msg(model != NULL, "%s: %s", arch, error ? error->message : "no error set");
    return model;
}

/* The index of the node named name, or -1. */
static int
find_node(const TpModel *model, const char *name)
{
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++)
        if (g_str_equal(tp_model_get_node(model, i)->name, name))
            return (int)i;
    return -1;
}

/* The node named name, which must exist and be an `op`. */
static const TpNode *
node_named(const TpModel *model, const char *name, TpOpType op)
{
    int i = find_node(model, name);

    ck_assert_msg(i >= 0, "no node '%s'", name);
    ck_assert_msg(tp_model_get_node(model, i)->op == op, "'%s' is a %s, want %s", name,
                  tp_op_type_to_string(tp_model_get_node(model, i)->op), tp_op_type_to_string(op));
    return tp_model_get_node(model, i);
}

/* A host copy of parameter p of the node named name (g_free it). */
static float *
param_copy(TpModel *model, const char *name, int p, gsize *out_n)
{
    int i = find_node(model, name);
    TpTensor *t;
    g_autoptr(GError) error = NULL;
    float *host;

    ck_assert_msg(i >= 0, "no node '%s'", name);
    t = tp_model_get_param(model, (guint)i, p);
    ck_assert_ptr_nonnull(t);
    host = tp_tensor_dup_host(t, &error);
    ck_assert_msg(host != NULL, "%s", error ? error->message : "");
    *out_n = t->numel;
    return host;
}

/* ------------------------------------------------------------ the tally */

/* Counts by hand, layer by layer (docs/method.md §3): the feature map's shape
 * flows through, each layer adds its own parameters and MACs. */
typedef struct {
    int c, h, w;
    guint64 params, running, macs;
} Tally;

/* round(c · width), at least 1. */
static int
chans(int c, double width)
{
    return MAX((int)floor(c * width + 0.5), 1);
}

static void
t_conv(Tally *t, int out, int k, int stride, int pad, gboolean bias)
{
    int oh = (t->h + 2 * pad - k) / stride + 1, ow = (t->w + 2 * pad - k) / stride + 1;

    t->params += (guint64)out * t->c * k * k + (bias ? out : 0);
    t->macs += (guint64)out * oh * ow * t->c * k * k;
    t->c = out;
    t->h = oh;
    t->w = ow;
}

static void
t_bn(Tally *t)
{
    t->params += 2 * (guint64)t->c;
    t->running += 2 * (guint64)t->c;
}

static void
t_pool2(Tally *t)
{
    t->h /= 2;
    t->w /= 2;
}

/* Flatten (of whatever map is there) then a linear layer. */
static void
t_linear(Tally *t, int out)
{
    int in = t->c * t->h * t->w;

    t->params += (guint64)in * out + out;
    t->macs += (guint64)in * out;
    t->c = out;
    t->h = t->w = 1;
}

static Tally
tally_lenet5(int c, int h, int w, int classes, double width)
{
    Tally t = {c, h + (h < 32 ? 4 : 0), w + (w < 32 ? 4 : 0), 0, 0, 0};

    /* Padding 2 on each side is the same as a 4-larger input here. */
    t_conv(&t, chans(6, width), 5, 1, 0, TRUE);
    t_pool2(&t);
    t_conv(&t, chans(16, width), 5, 1, 0, TRUE);
    t_pool2(&t);
    t_linear(&t, chans(120, width));
    t_linear(&t, chans(84, width));
    t_linear(&t, classes);
    return t;
}

static Tally
tally_vgg(const int *cfg, int c, int h, int w, int classes, double width)
{
    Tally t = {c, h, w, 0, 0, 0};

    for (int i = 0; cfg[i] != 0; i++) {
        if (cfg[i] < 0) {
            if (t.h >= 2 && t.w >= 2)
                t_pool2(&t);
            continue;
        }
        t_conv(&t, chans(cfg[i], width), 3, 1, 1, FALSE);
        t_bn(&t);
    }
    t.h = t.w = 1; /* global average pool */
    t_linear(&t, chans(512, width));
    t_linear(&t, classes);
    return t;
}

static Tally
tally_resnet(int n_stages, const int *blocks, const int *planes, int c, int h, int w, int classes,
             double width)
{
    Tally t = {c, h, w, 0, 0, 0};

    t_conv(&t, chans(planes[0], width), 3, 1, 1, FALSE);
    t_bn(&t);
    for (int s = 0; s < n_stages; s++) {
        for (int b = 0; b < blocks[s]; b++) {
            int out = chans(planes[s], width), stride = b == 0 && s > 0 ? 2 : 1;
            Tally in = t;

            t_conv(&t, out, 3, stride, 1, FALSE);
            t_bn(&t);
            t_conv(&t, out, 3, 1, 1, FALSE);
            t_bn(&t);
            if (stride != 1 || in.c != out) {
                Tally proj = {in.c, in.h, in.w, 0, 0, 0};

                t_conv(&proj, out, 1, stride, 0, FALSE);
                t_bn(&proj);
                ck_assert(proj.h == t.h && proj.w == t.w);
                t.params += proj.params;
                t.running += proj.running;
                t.macs += proj.macs;
            }
        }
    }
    t.h = t.w = 1;
    t_linear(&t, classes);
    return t;
}

static const int vgg11_cfg[] = {64, -1, 128, -1, 256, 256, -1, 512, 512, -1, 512, 512, -1, 0};
static const int vgg16_cfg[] = {64,  64,  -1,  128, 128, -1,  256, 256, 256, -1,
                                512, 512, 512, -1,  512, 512, 512, -1,  0};

static Tally
tally(const char *arch, int c, int h, int w, int classes, double width)
{
    static const int r18_blocks[] = {2, 2, 2, 2}, r18_planes[] = {64, 128, 256, 512};
    static const int r20_blocks[] = {3, 3, 3}, r20_planes[] = {16, 32, 64};

    if (g_str_equal(arch, "lenet5"))
        return tally_lenet5(c, h, w, classes, width);
    if (g_str_equal(arch, "vgg11"))
        return tally_vgg(vgg11_cfg, c, h, w, classes, width);
    if (g_str_equal(arch, "vgg16"))
        return tally_vgg(vgg16_cfg, c, h, w, classes, width);
    if (g_str_equal(arch, "resnet18"))
        return tally_resnet(4, r18_blocks, r18_planes, c, h, w, classes, width);
    ck_assert_str_eq(arch, "resnet20");
    return tally_resnet(3, r20_blocks, r20_planes, c, h, w, classes, width);
}

/* ------------------------------------------------------------ tests */

START_TEST(test_archs_listed)
{
    const char *const *archs = tp_zoo_get_archs();
    gsize n = 0;

    for (; archs[n] != NULL; n++) {
        const char *line = tp_zoo_describe(archs[n]);

        ck_assert_msg(n < G_N_ELEMENTS(arch_list), "more archs than the test knows");
        ck_assert_str_eq(archs[n], arch_list[n]);
        ck_assert_msg(line != NULL && *line != '\0' && strchr(line, '\n') == NULL,
                      "%s: no one-line description", archs[n]);
    }
    ck_assert_uint_eq(n, G_N_ELEMENTS(arch_list));
    ck_assert_ptr_null(tp_zoo_describe("vgg13"));
}
END_TEST

/* Iteration _i: arch _i / 4, input (_i / 2) % 2, width _i % 2. */
START_TEST(test_build_count_forward)
{
    const char *arch = arch_list[_i / 4];
    const int *in = inputs[(_i / 2) % 2];
    double width = widths[_i % 2];
    const int classes = 7, batch = 2, n_in = batch * in[0] * in[1] * in[2];
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpModel) model = build(backend, arch, in[0], in[1], in[2], classes, width, 1);
    g_autoptr(GError) error = NULL;
    g_autofree float *x = g_new(float, n_in);
    g_autofree float *y = NULL;
    Tally want = tally(arch, in[0], in[1], in[2], classes, width);
    const TpShape *shape = tp_model_get_shape(model, tp_model_get_output(model));
    TpCount count;
    TpTensor *out;

    tp_model_count(model, &count);
    ck_assert_msg(count.params == want.params && count.running_stats == want.running &&
                      count.macs == want.macs,
                  "%s %dx%dx%d width %g: params %" G_GUINT64_FORMAT " running %" G_GUINT64_FORMAT
                  " MACs %" G_GUINT64_FORMAT ", want %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
                  " %" G_GUINT64_FORMAT,
                  arch, in[0], in[1], in[2], width, count.params, count.running_stats, count.macs,
                  want.params, want.running, want.macs);

    ck_assert_int_eq(shape->ndim, 1);
    ck_assert_int_eq(shape->dim[0], classes);
    ck_assert_int_eq(tp_model_get_logits(model), tp_model_get_output(model));

    tp_test_fill_uniform(x, n_in, -1.0f, 1.0f, 5);
    ck_assert_msg(tp_model_forward(model, x, batch, TP_MODE_EVAL, &error), "%s: %s", arch,
                  error ? error->message : "");
    out = tp_model_get_value(model, tp_model_get_output(model));
    ck_assert_int_eq(out->ndim, 2);
    ck_assert_int_eq(out->shape[0], batch);
    ck_assert_int_eq(out->shape[1], classes);
    y = tp_tensor_dup_host(out, &error);
    for (int i = 0; i < batch * classes; i++)
        ck_assert_msg(isfinite(y[i]), "%s: logit %d is %g", arch, i, y[i]);
}
END_TEST

/* The published totals: vgg11-fmnist and ResNet-18 (CIFAR stem) on
 * 1x28x28 with 10 classes. MACs by hand: vgg11 pools after convs 1, 2, 4, 6
 * (28 → 14 → 7 → 3 → 1); resnet18's stages run at 28, 14, 7, 4. */
START_TEST(test_published_totals)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpModel) vgg = build(backend, "vgg11", 1, 28, 28, 10, 1.0, 0);
    g_autoptr(TpModel) resnet = build(backend, "resnet18", 1, 28, 28, 10, 1.0, 0);
    TpCount count;

    tp_model_count(vgg, &count);
    ck_assert_uint_eq(count.params, 9489866);
    ck_assert_uint_eq(count.running_stats, 5504);
    ck_assert_uint_eq(count.macs, 95090688); /* about 95.1 M */

    tp_model_count(resnet, &count);
    ck_assert_uint_eq(count.params, 11172810);
    ck_assert_uint_eq(count.running_stats, 9600);
    ck_assert_uint_eq(count.macs, 455800832); /* about 455.8 M */
}
END_TEST

/* Width 0 means 1; a width rounds each layer and keeps at least 1 unit. */
START_TEST(test_width_rounding)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpModel) zero = build(backend, "lenet5", 1, 28, 28, 10, 0.0, 0);
    g_autoptr(TpModel) tiny = build(backend, "lenet5", 1, 28, 28, 10, 0.01, 0);
    g_autoptr(TpModel) odd = build(backend, "resnet20", 3, 32, 32, 10, 0.3, 0);
    TpCount count;

    tp_model_count(zero, &count);
    ck_assert_uint_eq(count.params, 61706); /* LeNet-5's classic count */
    ck_assert_int_eq(node_named(tiny, "conv1", TP_OP_CONV)->attrs.conv.out_channels, 1);
    ck_assert_int_eq(node_named(tiny, "fc1", TP_OP_GEMM)->attrs.gemm.out_features, 1);
    ck_assert_int_eq(node_named(tiny, "fc3", TP_OP_GEMM)->attrs.gemm.out_features, 10);
    /* 16 · 0.3 = 4.8 → 5, 32 · 0.3 = 9.6 → 10, 64 · 0.3 = 19.2 → 19 */
    ck_assert_int_eq(node_named(odd, "conv1", TP_OP_CONV)->attrs.conv.out_channels, 5);
    ck_assert_int_eq(node_named(odd, "layer2.0.conv1", TP_OP_CONV)->attrs.conv.out_channels, 10);
    ck_assert_int_eq(node_named(odd, "layer3.2.conv2", TP_OP_CONV)->attrs.conv.out_channels, 19);
}
END_TEST

/* Names are PyTorch's and unique; VGG pools only while the map is >= 2. */
START_TEST(test_structure)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpModel) lenet = build(backend, "lenet5", 3, 32, 32, 10, 1.0, 0);
    g_autoptr(TpModel) vgg28 = build(backend, "vgg11", 1, 28, 28, 10, 0.25, 0);
    g_autoptr(TpModel) vgg32 = build(backend, "vgg11", 3, 32, 32, 10, 0.25, 0);
    g_autoptr(TpModel) vgg1 = build(backend, "vgg16", 1, 1, 1, 10, 0.25, 0);
    g_autoptr(TpModel) r18 = build(backend, "resnet18", 1, 28, 28, 10, 0.25, 0);
    g_autoptr(TpModel) r20 = build(backend, "resnet20", 3, 32, 32, 10, 1.0, 0);
    TpModel *all[] = {lenet, vgg28, vgg32, vgg1, r18, r20};
    static const char *const pools[] = {"features.3", "features.7", "features.14", "features.21",
                                        "features.28"};
    static const int sides28[] = {14, 7, 3, 1}, sides32[] = {16, 8, 4, 2, 1};
    const TpNode *node;
    int n_pools;

    for (gsize m = 0; m < G_N_ELEMENTS(all); m++) {
        g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

        for (guint i = 0; i < tp_model_get_n_nodes(all[m]); i++) {
            const char *name = tp_model_get_node(all[m], i)->name;

            ck_assert_msg(g_hash_table_add(seen, (gpointer)name), "two nodes named '%s'", name);
        }
    }

    /* LeNet-5: no padding at 32x32, so conv1 writes 28x28. */
    node = node_named(lenet, "conv1", TP_OP_CONV);
    ck_assert_int_eq(node->attrs.conv.pads[0], 0);
    ck_assert_int_eq(tp_model_get_shape(lenet, node->output)->dim[1], 28);
    node_named(lenet, "pool2", TP_OP_MAX_POOL);
    ck_assert_int_eq(node_named(lenet, "fc1", TP_OP_GEMM)->params[0]->shape[1], 16 * 5 * 5);

    /* VGG-11: pools at torchvision's indices, 4 of them at 28, 5 at 32. */
    for (int i = 0; i < 4; i++) {
        node = node_named(vgg28, pools[i], TP_OP_MAX_POOL);
        ck_assert_int_eq(tp_model_get_shape(vgg28, node->output)->dim[1], sides28[i]);
    }
    ck_assert_int_eq(find_node(vgg28, "features.28"), -1);
    for (int i = 0; i < 5; i++) {
        node = node_named(vgg32, pools[i], TP_OP_MAX_POOL);
        ck_assert_int_eq(tp_model_get_shape(vgg32, node->output)->dim[1], sides32[i]);
    }
    node_named(vgg28, "features.0", TP_OP_CONV);
    node_named(vgg28, "features.1", TP_OP_BATCH_NORM);
    node_named(vgg28, "features.2", TP_OP_RELU);
    node_named(vgg28, "features.25", TP_OP_CONV);
    node_named(vgg28, "avgpool", TP_OP_GLOBAL_AVERAGE_POOL);
    node_named(vgg28, "classifier.0", TP_OP_GEMM);
    node_named(vgg28, "classifier.1", TP_OP_RELU);
    ck_assert_float_eq(node_named(vgg28, "classifier.2", TP_OP_DROPOUT)->attrs.dropout.ratio, 0.5f);
    node_named(vgg28, "classifier.3", TP_OP_GEMM);
    ck_assert(!node_named(vgg28, "features.0", TP_OP_CONV)->attrs.conv.bias);

    /* A 1x1 input: no pool at all. */
    n_pools = 0;
    for (guint i = 0; i < tp_model_get_n_nodes(vgg1); i++)
        n_pools += tp_model_get_node(vgg1, i)->op == TP_OP_MAX_POOL;
    ck_assert_int_eq(n_pools, 0);

    /* ResNet-18: no stem pool; projections where the stage changes. */
    node_named(r18, "conv1", TP_OP_CONV);
    node_named(r18, "bn1", TP_OP_BATCH_NORM);
    node_named(r18, "relu", TP_OP_RELU);
    ck_assert_int_eq(node_named(r18, "layer1.0.conv1", TP_OP_CONV)->attrs.conv.stride[0], 1);
    ck_assert_int_eq(find_node(r18, "layer1.0.downsample.0"), -1);
    for (int s = 2; s <= 4; s++) {
        g_autofree char *name = g_strdup_printf("layer%d.0.downsample.0", s);
        g_autofree char *bn = g_strdup_printf("layer%d.0.downsample.1", s);
        g_autofree char *second = g_strdup_printf("layer%d.1.downsample.0", s);

        node = node_named(r18, name, TP_OP_CONV);
        ck_assert_int_eq(node->attrs.conv.kernel[0], 1);
        ck_assert_int_eq(node->attrs.conv.stride[0], 2);
        node_named(r18, bn, TP_OP_BATCH_NORM);
        ck_assert_int_eq(find_node(r18, second), -1);
    }
    node = node_named(r18, "layer4.1.add", TP_OP_ADD);
    ck_assert_int_eq(tp_model_get_shape(r18, node->output)->dim[1], 4);
    node_named(r18, "layer4.1.relu2", TP_OP_RELU);
    node_named(r18, "fc", TP_OP_GEMM);
    ck_assert_int_eq(find_node(r20, "layer4.0.conv1"), -1);
    node_named(r20, "layer3.2.conv2", TP_OP_CONV);
    ck_assert_int_eq(find_node(r20, "layer1.0.downsample.0"), -1);
    node_named(r20, "layer2.0.downsample.0", TP_OP_CONV);
    node_named(r20, "layer3.0.downsample.0", TP_OP_CONV);
}
END_TEST

/* Mean and standard deviation of x[0..n). */
static void
moments(const float *x, gsize n, double *out_mean, double *out_std)
{
    double sum = 0.0, sq = 0.0;

    for (gsize i = 0; i < n; i++)
        sum += x[i];
    *out_mean = sum / (double)n;
    for (gsize i = 0; i < n; i++)
        sq += (x[i] - *out_mean) * (x[i] - *out_mean);
    *out_std = sqrt(sq / (double)n);
}

START_TEST(test_init)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    g_autoptr(TpModel) vgg = build(backend, "vgg11", 1, 28, 28, 10, 0.5, 3);
    g_autoptr(TpModel) lenet = build(backend, "lenet5", 1, 28, 28, 10, 1.0, 3);
    double mean, std, want;
    gsize n;

    /* Kaiming normal, fan_out: the 256→256 3x3 conv (590 k draws; the
     * sample std is within 0.1 % of the true one). */
    {
        g_autofree float *w = param_copy(vgg, "features.25", 0, &n);

        moments(w, n, &mean, &std);
        want = sqrt(2.0 / (256 * 3 * 3));
        ck_assert_msg(fabs(std / want - 1.0) < 0.01, "std %g, want %g", std, want);
        ck_assert_msg(fabs(mean) < 0.01 * want, "mean %g", mean);
    }
    /* Every conv of both models, loosely; small layers are noisy. */
    for (int m = 0; m < 2; m++) {
        TpModel *model = m == 0 ? vgg : lenet;

        for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
            const TpNode *node = tp_model_get_node(model, i);
            g_autofree float *w = NULL;
            const TpConvAttrs *a = &node->attrs.conv;

            if (node->op != TP_OP_CONV)
                continue;
            w = param_copy(model, node->name, 0, &n);
            moments(w, n, &mean, &std);
            want = sqrt(2.0 / (a->out_channels * a->kernel[0] * a->kernel[1]));
            ck_assert_msg(fabs(std / want - 1.0) < 0.1 + 3.0 / sqrt((double)n),
                          "%s: std %g, want %g", node->name, std, want);
        }
    }
    /* LeNet-5's conv biases start at 0. */
    for (int c = 0; c < 2; c++) {
        g_autofree float *b = param_copy(lenet, c == 0 ? "conv1" : "conv2", 1, &n);

        for (gsize i = 0; i < n; i++)
            ck_assert_float_eq(b[i], 0.0f);
    }
    /* Linear: uniform(−1/√in, 1/√in), weights and biases. */
    for (int m = 0; m < 2; m++) {
        TpModel *model = m == 0 ? vgg : lenet;

        for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
            const TpNode *node = tp_model_get_node(model, i);
            double bound, lo = INFINITY, hi = -INFINITY;

            if (node->op != TP_OP_GEMM)
                continue;
            bound = 1.0 / sqrt((double)node->params[0]->shape[1]);
            for (int p = 0; p < 2; p++) {
                g_autofree float *w = param_copy(model, node->name, p, &n);

                for (gsize k = 0; k < n; k++) {
                    lo = MIN(lo, w[k]);
                    hi = MAX(hi, w[k]);
                }
                if (p == 0 && n > 50000) {
                    moments(w, n, &mean, &std);
                    ck_assert_msg(fabs(std / (bound / sqrt(3.0)) - 1.0) < 0.01,
                                  "%s: std %g, want %g", node->name, std, bound / sqrt(3.0));
                    ck_assert(hi > 0.999 * bound && lo < -0.999 * bound);
                }
            }
            ck_assert_msg(lo >= -bound && hi <= bound, "%s: [%g, %g] outside ±%g", node->name, lo,
                          hi, bound);
        }
    }
    /* BatchNorm: scale 1, bias 0, running mean 0, running var 1. */
    for (guint i = 0; i < tp_model_get_n_nodes(vgg); i++) {
        const TpNode *node = tp_model_get_node(vgg, i);
        static const float want_bn[4] = {1.0f, 0.0f, 0.0f, 1.0f};

        if (node->op != TP_OP_BATCH_NORM)
            continue;
        for (int p = 0; p < 4; p++) {
            g_autofree float *v = param_copy(vgg, node->name, p, &n);

            for (gsize k = 0; k < n; k++)
                ck_assert_float_eq(v[k], want_bn[p]);
        }
    }
}
END_TEST

/* TRUE if every parameter of a and b (same arch) is bit-identical. */
static gboolean
same_weights(TpModel *a, TpModel *b)
{
    ck_assert_uint_eq(tp_model_get_n_nodes(a), tp_model_get_n_nodes(b));
    for (guint i = 0; i < tp_model_get_n_nodes(a); i++) {
        for (int p = 0; p < tp_model_get_node(a, i)->n_params; p++) {
            const char *name = tp_model_get_node(a, i)->name;
            gsize na, nb;
            g_autofree float *wa = param_copy(a, name, p, &na);
            g_autofree float *wb = param_copy(b, name, p, &nb);

            ck_assert_uint_eq(na, nb);
            if (memcmp(wa, wb, na * sizeof(float)) != 0)
                return FALSE;
        }
    }
    return TRUE;
}

START_TEST(test_determinism)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    const guint64 seed = 42, high = seed | (G_GUINT64_CONSTANT(1) << 32);

    for (gsize a = 0; a < G_N_ELEMENTS(arch_list); a++) {
        const char *arch = arch_list[a];
        double width = g_str_equal(arch, "lenet5") || g_str_equal(arch, "resnet20") ? 1.0 : 0.125;
        g_autoptr(TpModel) one = build(backend, arch, 3, 32, 32, 10, width, seed);
        g_autoptr(TpModel) two = build(backend, arch, 3, 32, 32, 10, width, seed);
        g_autoptr(TpModel) other = build(backend, arch, 3, 32, 32, 10, width, seed + 1);
        g_autoptr(TpModel) upper = build(backend, arch, 3, 32, 32, 10, width, high);

        ck_assert_msg(same_weights(one, two), "%s: seed %" G_GUINT64_FORMAT " twice differs", arch,
                      seed);
        ck_assert_msg(!same_weights(one, other), "%s: seeds 42 and 43 give the same model", arch);
        ck_assert_msg(!same_weights(one, upper), "%s: the seed's upper 32 bits are ignored", arch);
    }
}
END_TEST

/* Asserts error is TP_ZOO_ERROR/code and its message has every needle. */
static void
assert_error(GError *error, int code, const char *const *needles)
{
    ck_assert_msg(error != NULL, "no error set");
    ck_assert_msg(error->domain == TP_ZOO_ERROR && error->code == code,
                  "wrong domain or code for \"%s\"", error->message);
    for (int i = 0; needles[i] != NULL; i++)
        ck_assert_msg(strstr(error->message, needles[i]) != NULL, "\"%s\" does not mention \"%s\"",
                      error->message, needles[i]);
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Builds arch from config, expecting NULL and the error. */
static void
expect_error(TpBackend *backend, const char *arch, TpZooConfig config, int code,
             const char *const *needles)
{
    g_autoptr(GError) error = NULL;

    ck_assert_ptr_null(tp_zoo_build(backend, arch, &config, &error));
    assert_error(error, code, needles);
}

START_TEST(test_errors)
{
    g_autoptr(TpBackend) backend = tp_test_backend_open("cpu");
    const TpZooConfig ok = {1, 28, 28, 10, 1.0, 0};
    TpZooConfig c;

    expect_error(backend, "vgg13", ok, TP_ZOO_ERROR_UNKNOWN_ARCH,
                 NEEDLES("'vgg13'", "lenet5, vgg11, vgg16, resnet18, resnet20"));

    c = ok;
    c.classes = 0;
    expect_error(backend, "vgg11", c, TP_ZOO_ERROR_INVALID,
                 NEEDLES("vgg11", "0 classes", "1 to 100000"));
    c.classes = -3;
    expect_error(backend, "resnet20", c, TP_ZOO_ERROR_INVALID, NEEDLES("-3 classes"));

    c = ok;
    c.width_multiplier = -0.5;
    expect_error(backend, "resnet18", c, TP_ZOO_ERROR_INVALID,
                 NEEDLES("width multiplier -0.5", "greater than 0", "at most 16"));
    c.width_multiplier = NAN;
    expect_error(backend, "resnet18", c, TP_ZOO_ERROR_INVALID, NEEDLES("width multiplier"));
    c.width_multiplier = 17.0;
    expect_error(backend, "resnet18", c, TP_ZOO_ERROR_INVALID, NEEDLES("width multiplier 17"));

    c = ok;
    c.height = c.width = 11;
    expect_error(backend, "lenet5", c, TP_ZOO_ERROR_INVALID,
                 NEEDLES("lenet5", "1x11x11", "too small", "at least 12"));
    c.height = 12;
    expect_error(backend, "lenet5", c, TP_ZOO_ERROR_INVALID, NEEDLES("1x12x11"));

    c = ok;
    c.channels = 0;
    expect_error(backend, "vgg16", c, TP_ZOO_ERROR_INVALID,
                 NEEDLES("input 0x28x28", "must be 1 to 4096"));
    c = ok;
    c.height = -1;
    expect_error(backend, "vgg16", c, TP_ZOO_ERROR_INVALID, NEEDLES("input 1x-1x28"));
    c = ok;
    c.width = 5000;
    expect_error(backend, "resnet20", c, TP_ZOO_ERROR_INVALID, NEEDLES("input 1x28x5000"));

    /* The smallest LeNet-5 input builds. */
    c = ok;
    c.height = c.width = 12;
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(TpModel) model = tp_zoo_build(backend, "lenet5", &c, &error);

        ck_assert_msg(model != NULL, "%s", error ? error->message : "");
    }
}
END_TEST

int
main(void)
{
    Suite *suite = suite_create("zoo");
    TCase *tc = tcase_create("zoo");

    tp_test_init();
    tcase_add_test(tc, test_archs_listed);
    tcase_add_loop_test(tc, test_build_count_forward, 0,
                        G_N_ELEMENTS(arch_list) * G_N_ELEMENTS(inputs) * G_N_ELEMENTS(widths));
    tcase_add_test(tc, test_published_totals);
    tcase_add_test(tc, test_width_rounding);
    tcase_add_test(tc, test_structure);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
