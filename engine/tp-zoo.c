/* tp-zoo.c — the built-in architectures (tp-zoo.h), built op by op with
 * tp_model_add() and initialized as PyTorch / torchvision initialize them:
 *
 *   Conv weight   normal(0, sqrt(2 / fan_out)), fan_out = out_channels · kh · kw
 *                 (kaiming_normal_, mode 'fan_out', nonlinearity 'relu');
 *   Conv bias     0 (LeNet-5's; the other archs have none);
 *   Gemm weight   uniform(−1/√in, 1/√in) (nn.Linear's default,
 *   Gemm bias     uniform(−1/√in, 1/√in)   kaiming_uniform_ with a = √5);
 *   BatchNorm     scale 1, bias 0, running mean 0, running var 1 (as
 *                 tp_model_add() creates them).
 *
 * Every draw comes from one GRand seeded with config->seed, node by node in
 * graph order, weight before bias, so a seed gives the same model byte for
 * byte. Normals come in pairs from Box–Muller's polar form over
 * g_rand_double().
 *
 * Channel counts are round(c · width), at least 1. Node names follow the
 * PyTorch modules ("features.0", "layer2.0.downsample.0", "fc"), so the
 * layers line up with a torchvision model's module names.
 */
#include "config.h"

#include <math.h>

#include "tp-zoo.h"

G_DEFINE_QUARK(tp_zoo_error, tp_zoo_error)

/* Limits of a config, stated in the errors. */
#define MAX_WIDTH 16.0
#define MAX_CLASSES 100000
#define MAX_INPUT_DIM 4096

/* ------------------------------------------------------------ building */

/* A model being built. After the first failure `error` holds it and every
 * later call does nothing and returns -1, so builders read as straight lines
 * and check once at the end. */
typedef struct {
    TpModel *model;
    double width;       /* the width multiplier */
    const char *prefix; /* prepended to node names ("layer2.1."), or NULL */
    GError *error;
} Net;

/* round(c · width), at least 1. */
static int
scaled(const Net *net, int c)
{
    return MAX((int)lround(c * net->width), 1);
}

/* Appends one op (net->prefix + name) reading in0, and in1 for Add; returns
 * the value it writes, or -1 once anything has failed. */
static int
add(Net *net, TpOpType op, const char *name, int in0, int in1, const TpOpAttrs *attrs)
{
    g_autofree char *full = NULL;
    int inputs[TP_NODE_MAX_INPUTS] = {in0, in1};

    if (net->error != NULL)
        return -1;
    full = g_strconcat(net->prefix != NULL ? net->prefix : "", name, NULL);
    return tp_model_add(net->model, op, full, inputs, attrs, &net->error);
}

/* A square conv with `pad` on every side. */
static int
conv(Net *net, const char *name, int in, int out_channels, int kernel, int stride, int pad,
     gboolean bias)
{
    TpOpAttrs attrs = {.conv = {.out_channels = out_channels,
                                .kernel = {kernel, kernel},
                                .stride = {stride, stride},
                                .pads = {pad, pad, pad, pad},
                                .bias = bias}};

    return add(net, TP_OP_CONV, name, in, 0, &attrs);
}

static int
gemm(Net *net, const char *name, int in, int out_features)
{
    TpOpAttrs attrs = {.gemm = {.out_features = out_features, .bias = TRUE}};

    return add(net, TP_OP_GEMM, name, in, 0, &attrs);
}

static int
max_pool2(Net *net, const char *name, int in)
{
    TpOpAttrs attrs = {.pool = {.kernel = {2, 2}, .stride = {2, 2}}};

    return add(net, TP_OP_MAX_POOL, name, in, 0, &attrs);
}

/* The op with no attributes (Relu, BatchNormalization with its defaults,
 * GlobalAveragePool, Flatten). */
static int
op(Net *net, TpOpType type, const char *name, int in)
{
    return add(net, type, name, in, 0, NULL);
}

/* The per-sample shape of a value built so far. */
static const TpShape *
shape_of(const Net *net, int value)
{
    return tp_model_get_shape(net->model, value);
}

/* ------------------------------------------------------------ lenet5 */

/* conv 6@5x5 → relu → maxpool 2 → conv 16@5x5 → relu → maxpool 2 → flatten →
 * fc 120 → relu → fc 84 → relu → fc classes. The first conv pads 2 on a side
 * shorter than 32 (so 28x28 keeps its size, like MNIST padded to LeNet's
 * 32x32) and 0 otherwise; both sizes reach the classifier as 16@5x5. */
static void
build_lenet5(Net *net, const TpZooConfig *config)
{
    int pad_h = config->height < 32 ? 2 : 0, pad_w = config->width < 32 ? 2 : 0;
    TpOpAttrs conv1 = {.conv = {.out_channels = scaled(net, 6),
                                .kernel = {5, 5},
                                .pads = {pad_h, pad_w, pad_h, pad_w},
                                .bias = TRUE}};
    int v;

    v = add(net, TP_OP_CONV, "conv1", 0, 0, &conv1);
    v = op(net, TP_OP_RELU, "relu1", v);
    v = max_pool2(net, "pool1", v);
    v = conv(net, "conv2", v, scaled(net, 16), 5, 1, 0, TRUE);
    v = op(net, TP_OP_RELU, "relu2", v);
    v = max_pool2(net, "pool2", v);
    v = op(net, TP_OP_FLATTEN, "flatten", v);
    v = gemm(net, "fc1", v, scaled(net, 120));
    v = op(net, TP_OP_RELU, "relu3", v);
    v = gemm(net, "fc2", v, scaled(net, 84));
    v = op(net, TP_OP_RELU, "relu4", v);
    gemm(net, "fc3", v, config->classes);
}

/* The smallest side lenet5 takes: 12 → 12 (conv1, padded) → 6 → 2 → 1. */
#define LENET5_MIN_SIDE 12

/* ------------------------------------------------------------ vgg */

#define M (-1) /* a max-pool in a VGG cfg */

/* torchvision's cfgs "A" (VGG-11) and "D" (VGG-16), ended by 0. */
static const int vgg11_cfg[] = {64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M, 0};
static const int vgg16_cfg[] = {64,  64,  M,   128, 128, M,   256, 256, 256, M,
                                512, 512, 512, M,   512, 512, 512, M,   0};

/* features: per number c, conv 3x3 pad 1 (round(c·w), no bias) → BatchNorm →
 * ReLU; per M, a 2x2/2 max-pool while both sides are >= 2 (skipped below,
 * its index kept so names match torchvision's). Then avgpool (global) →
 * flatten → classifier: Linear 512w → 512w, ReLU, Dropout 0.5, Linear →
 * classes. */
static void
build_vgg(Net *net, const TpZooConfig *config, const int *cfg)
{
    TpOpAttrs dropout = {.dropout = {.ratio = 0.5f}};
    int v = 0, index = 0;

    for (int i = 0; cfg[i] != 0; i++) {
        char name[32];

        if (cfg[i] == M) {
            const TpShape *s = net->error == NULL ? shape_of(net, v) : NULL;

            g_snprintf(name, sizeof name, "features.%d", index++);
            if (s != NULL && s->dim[1] >= 2 && s->dim[2] >= 2)
                v = max_pool2(net, name, v);
            continue;
        }
        g_snprintf(name, sizeof name, "features.%d", index++);
        v = conv(net, name, v, scaled(net, cfg[i]), 3, 1, 1, FALSE);
        g_snprintf(name, sizeof name, "features.%d", index++);
        v = op(net, TP_OP_BATCH_NORM, name, v);
        g_snprintf(name, sizeof name, "features.%d", index++);
        v = op(net, TP_OP_RELU, name, v);
    }
    v = op(net, TP_OP_GLOBAL_AVERAGE_POOL, "avgpool", v);
    v = op(net, TP_OP_FLATTEN, "flatten", v);
    v = gemm(net, "classifier.0", v, scaled(net, 512));
    v = op(net, TP_OP_RELU, "classifier.1", v);
    v = add(net, TP_OP_DROPOUT, "classifier.2", v, 0, &dropout);
    gemm(net, "classifier.3", v, config->classes);
}

#undef M

static void
build_vgg11(Net *net, const TpZooConfig *config)
{
    build_vgg(net, config, vgg11_cfg);
}

static void
build_vgg16(Net *net, const TpZooConfig *config)
{
    build_vgg(net, config, vgg16_cfg);
}

/* ------------------------------------------------------------ resnet */

/* torchvision's BasicBlock, named PREFIX.{conv1,bn1,relu1,conv2,bn2,
 * downsample.0,downsample.1,add,relu2}: conv3x3/stride → BN → ReLU → conv3x3
 * → BN, plus the input, or a projection (conv 1x1/stride → BN) where the
 * stride or the channel count changes, then ReLU. */
static int
basic_block(Net *net, int x, int planes, int stride)
{
    int in_channels = net->error == NULL ? shape_of(net, x)->dim[0] : 0;
    int v, shortcut = x;

    v = conv(net, "conv1", x, planes, 3, stride, 1, FALSE);
    v = op(net, TP_OP_BATCH_NORM, "bn1", v);
    v = op(net, TP_OP_RELU, "relu1", v);
    v = conv(net, "conv2", v, planes, 3, 1, 1, FALSE);
    v = op(net, TP_OP_BATCH_NORM, "bn2", v);
    if (stride != 1 || in_channels != planes) {
        shortcut = conv(net, "downsample.0", x, planes, 1, stride, 0, FALSE);
        shortcut = op(net, TP_OP_BATCH_NORM, "downsample.1", shortcut);
    }
    v = add(net, TP_OP_ADD, "add", v, shortcut, NULL);
    return op(net, TP_OP_RELU, "relu2", v);
}

/* A CIFAR-style ResNet: stem conv 3x3/1 (channels[0]) → BN → ReLU, no
 * max-pool; stage s (layer1, layer2, ...) has blocks[s] BasicBlocks of
 * channels[s], the first with stride 1 for stage 0 and 2 after; then
 * avgpool (global) → flatten → fc → classes. */
static void
build_resnet(Net *net, const TpZooConfig *config, int n_stages, const int *blocks,
             const int *channels)
{
    int v;

    v = conv(net, "conv1", 0, scaled(net, channels[0]), 3, 1, 1, FALSE);
    v = op(net, TP_OP_BATCH_NORM, "bn1", v);
    v = op(net, TP_OP_RELU, "relu", v);
    for (int s = 0; s < n_stages; s++) {
        for (int b = 0; b < blocks[s]; b++) {
            g_autofree char *prefix = g_strdup_printf("layer%d.%d.", s + 1, b);

            net->prefix = prefix;
            v = basic_block(net, v, scaled(net, channels[s]), b == 0 && s > 0 ? 2 : 1);
            net->prefix = NULL;
        }
    }
    v = op(net, TP_OP_GLOBAL_AVERAGE_POOL, "avgpool", v);
    v = op(net, TP_OP_FLATTEN, "flatten", v);
    gemm(net, "fc", v, config->classes);
}

static void
build_resnet18(Net *net, const TpZooConfig *config)
{
    static const int blocks[] = {2, 2, 2, 2}, channels[] = {64, 128, 256, 512};

    build_resnet(net, config, G_N_ELEMENTS(blocks), blocks, channels);
}

static void
build_resnet20(Net *net, const TpZooConfig *config)
{
    static const int blocks[] = {3, 3, 3}, channels[] = {16, 32, 64};

    build_resnet(net, config, G_N_ELEMENTS(blocks), blocks, channels);
}

/* ------------------------------------------------------------ the table */

typedef struct {
    const char *name;
    const char *description;
    int min_side; /* the smallest input height and width it takes */
    void (*build)(Net *net, const TpZooConfig *config);
} Arch;

static const Arch archs[] = {
    {"lenet5", "LeNet-5: 2 conv (6, 16 @5x5) + 3 linear (120, 84, classes), ReLU, max-pool",
     LENET5_MIN_SIDE, build_lenet5},
    {"vgg11", "VGG-11 with BatchNorm (cfg A, 8 conv), global pool, 2 linear (512, classes)", 1,
     build_vgg11},
    {"vgg16", "VGG-16 with BatchNorm (cfg D, 13 conv), global pool, 2 linear (512, classes)", 1,
     build_vgg16},
    {"resnet18", "ResNet-18, CIFAR stem (3x3 conv, no max-pool), 4 stages of 2 blocks, 64-512", 1,
     build_resnet18},
    {"resnet20", "ResNet-20 (He et al. 2016, CIFAR), 3 stages of 3 blocks, 16-64, projections", 1,
     build_resnet20},
};

static const char *const arch_names[] = {"lenet5", "vgg11", "vgg16", "resnet18", "resnet20", NULL};

G_STATIC_ASSERT(G_N_ELEMENTS(arch_names) == G_N_ELEMENTS(archs) + 1);

static const Arch *
find_arch(const char *name)
{
    for (gsize i = 0; i < G_N_ELEMENTS(archs); i++)
        if (g_str_equal(archs[i].name, name))
            return &archs[i];
    return NULL;
}

/* The architecture names, NULL-terminated (static). */
const char *const *
tp_zoo_get_archs(void)
{
    return arch_names;
}

/* One line about arch (static), or NULL if there is no such arch. */
const char *
tp_zoo_describe(const char *arch)
{
    const Arch *a;

    g_return_val_if_fail(arch != NULL, NULL);

    a = find_arch(arch);
    return a != NULL ? a->description : NULL;
}

/* ------------------------------------------------------------ init */

/* Draws normal(0, 1) numbers from a GRand, two per step of Box–Muller's
 * polar form (Marsaglia): u, v uniform in (−1, 1) until 0 < s = u² + v² < 1,
 * then u·f and v·f with f = sqrt(−2 ln s / s). */
typedef struct {
    GRand *rand;
    gboolean have_spare;
    double spare;
} Draws;

static double
draw_normal(Draws *d)
{
    double u, v, s, f;

    if (d->have_spare) {
        d->have_spare = FALSE;
        return d->spare;
    }
    do {
        u = 2.0 * g_rand_double(d->rand) - 1.0;
        v = 2.0 * g_rand_double(d->rand) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    f = sqrt(-2.0 * log(s) / s);
    d->spare = v * f;
    d->have_spare = TRUE;
    return u * f;
}

/* Fills parameter i of node `index`: normal(0, std) if std > 0, else
 * uniform(−bound, bound). */
static gboolean
init_param(TpModel *model, guint index, int i, Draws *d, double std, double bound, GError **error)
{
    TpTensor *t = tp_model_get_param(model, index, i);
    g_autofree float *host = g_new(float, t->numel);

    for (gsize k = 0; k < t->numel; k++)
        host[k] = std > 0.0 ? (float)(std * draw_normal(d))
                            : (float)g_rand_double_range(d->rand, -bound, bound);
    return tp_tensor_upload(t, host, error);
}

/* Initializes every Conv and Gemm of model from seed (see the top of the
 * file); conv biases and BatchNorm keep the values tp_model_add() gave them. */
static gboolean
init_params(TpModel *model, guint64 seed, GError **error)
{
    guint32 words[2] = {(guint32)(seed & 0xffffffffu), (guint32)(seed >> 32)};
    Draws d = {g_rand_new_with_seed_array(words, G_N_ELEMENTS(words)), FALSE, 0.0};
    gboolean ok = TRUE;

    for (guint n = 0; ok && n < tp_model_get_n_nodes(model); n++) {
        const TpNode *node = tp_model_get_node(model, n);

        if (node->op == TP_OP_CONV) {
            const TpConvAttrs *a = &node->attrs.conv;
            double fan_out = (double)a->out_channels * a->kernel[0] * a->kernel[1];

            ok = init_param(model, n, 0, &d, sqrt(2.0 / fan_out), 0.0, error);
        } else if (node->op == TP_OP_GEMM) {
            double bound = 1.0 / sqrt((double)node->params[0]->shape[1]);

            ok = init_param(model, n, 0, &d, 0.0, bound, error);
            if (ok && node->attrs.gemm.bias)
                ok = init_param(model, n, 1, &d, 0.0, bound, error);
        }
    }
    g_rand_free(d.rand);
    return ok;
}

/* ------------------------------------------------------------ build */

/* Checks config against arch's limits; the message names the arch, the
 * value and what is valid. */
static gboolean
check_config(const Arch *arch, const TpZooConfig *config, double width, GError **error)
{
    if (config->channels < 1 || config->channels > MAX_INPUT_DIM || config->height < 1 ||
        config->height > MAX_INPUT_DIM || config->width < 1 || config->width > MAX_INPUT_DIM) {
        g_set_error(error, TP_ZOO_ERROR, TP_ZOO_ERROR_INVALID,
                    "%s: input %dx%dx%d: channels, height and width must be 1 to %d", arch->name,
                    config->channels, config->height, config->width, MAX_INPUT_DIM);
        return FALSE;
    }
    if (config->height < arch->min_side || config->width < arch->min_side) {
        g_set_error(error, TP_ZOO_ERROR, TP_ZOO_ERROR_INVALID,
                    "%s: input %dx%dx%d is too small: height and width must be at least %d",
                    arch->name, config->channels, config->height, config->width, arch->min_side);
        return FALSE;
    }
    if (config->classes < 1 || config->classes > MAX_CLASSES) {
        g_set_error(error, TP_ZOO_ERROR, TP_ZOO_ERROR_INVALID, "%s: %d classes: must be 1 to %d",
                    arch->name, config->classes, MAX_CLASSES);
        return FALSE;
    }
    if (!(width > 0.0 && width <= MAX_WIDTH)) {
        g_set_error(error, TP_ZOO_ERROR, TP_ZOO_ERROR_INVALID,
                    "%s: width multiplier %g: must be greater than 0 and at most %g", arch->name,
                    width, MAX_WIDTH);
        return FALSE;
    }
    return TRUE;
}

/* A new model of architecture arch on backend, initialized from
 * config->seed; NULL with error (see tp-zoo.h). */
TpModel *
tp_zoo_build(TpBackend *backend, const char *arch, const TpZooConfig *config, GError **error)
{
    const Arch *a;
    Net net = {NULL, 1.0, NULL, NULL};

    g_return_val_if_fail(backend != NULL, NULL);
    g_return_val_if_fail(arch != NULL, NULL);
    g_return_val_if_fail(config != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    a = find_arch(arch);
    if (a == NULL) {
        g_autofree char *list = g_strjoinv(", ", (char **)arch_names);

        g_set_error(error, TP_ZOO_ERROR, TP_ZOO_ERROR_UNKNOWN_ARCH,
                    "no architecture '%s' (available: %s)", arch, list);
        return NULL;
    }
    net.width = config->width_multiplier == 0.0 ? 1.0 : config->width_multiplier;
    if (!check_config(a, config, net.width, error))
        return NULL;

    net.model = tp_model_new(backend, config->channels, config->height, config->width);
    a->build(&net, config);
    if (net.error == NULL)
        init_params(net.model, config->seed, &net.error);
    if (net.error != NULL) {
        g_propagate_prefixed_error(error, net.error, "building %s: ", a->name);
        tp_model_free(net.model);
        return NULL;
    }
    return net.model;
}
