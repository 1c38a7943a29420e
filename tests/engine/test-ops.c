/* test-ops.c — the generic op tester: one table of cases (op, attributes,
 * input shape, batch, mode), every case run on every backend the build has.
 * For each case and backend:
 *
 *  1. shape: the output shape the model infers equals the one computed here
 *     independently (the output-size formulas, ceil_mode's rule);
 *  2. forward: a model of the op alone (after a Flatten or Relu feeding it,
 *     where the case says so) against the plain reference kernels of
 *     tests/tp-reference.h; BatchNorm's running statistics too;
 *  3. backward: the analytic gradient of L = Σ r·y (r a fixed random
 *     projection seeded into the output gradient) with respect to the input
 *     and to every trainable parameter, against central finite differences
 *     (L(θ + h) − L(θ − h)) / 2h on up to N_PROBES coordinates each.
 *
 * Finite differences use float32 forwards, so h is 1e-2 and a coordinate
 * passes when |analytic − fd| <= FD_ATOL + FD_RTOL·|fd|. Ops with kinks are fed
 * inputs the perturbation cannot push across one: ReLU inputs at least 0.1
 * away from 0, MaxPool inputs a permutation of values 0.05 apart (no ties).
 * Dropout masks are reproduced by reseeding the model before every forward.
 * A new op needs a new row in `cases`, not a new test (test_cases fails for an
 * op without one).
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "tp-reference.h"
#include "tp-test.h"

#define N_PROBES 24
#define FD_H 1e-2
#define FD_ATOL 1e-3
#define FD_RTOL 5e-3
#define FWD_ATOL 1e-5
#define FWD_RTOL 1e-4
#define SEED 1234

/* What feeds the op under test. */
typedef enum {
    FEED_INPUT,          /* op(input) */
    FEED_FLATTEN,        /* op(Flatten(input)): ops that need a 1-D input */
    FEED_INPUT_TWICE,    /* Add(input, input) */
    FEED_INPUT_AND_RELU, /* Add(input, Relu(input)) */
    FEED_INPUT_AND_POOL, /* op(input, GlobalAveragePool(input)): broadcast [C, 1, 1] */
    FEED_POOL_AND_INPUT, /* op(GlobalAveragePool(input), input) */
} Feed;

/* How the input is drawn. */
typedef enum {
    DRAW_UNIFORM,        /* uniform in [-2, 2) */
    DRAW_AWAY_FROM_ZERO, /* ±[0.1, 1): ReLU's kink is out of reach of ±h */
    DRAW_DISTINCT,       /* a permutation of values 0.05 apart: no MaxPool ties */
    DRAW_POSITIVE,       /* uniform in [0.5, 2): Sqrt's domain, a divisor */
} Draw;

typedef struct {
    const char *label;
    TpOpType op;
    TpOpAttrs attrs;
    int c, h, w; /* per-sample input of the model */
    int batch;
    TpMode mode;
    Feed feed;
    Draw draw;
    int expect_h, expect_w; /* pools: the expected output size when not 0 */
} OpCase;

/* clang-format off */
#define CONV(...) .op = TP_OP_CONV, .attrs.conv = { __VA_ARGS__ }
#define POOL(kind, ...) .op = kind, .attrs.pool = { __VA_ARGS__ }
#define UNARY(kind, ...) .op = kind, .attrs.unary = { __VA_ARGS__ }
/* A binary op with a constant second operand of per-sample shape (d0, d1, d2). */
#define CONSTANT(kind, d0, d1, d2) .op = kind, \
    .attrs.binary = { .constant = TRUE, .const_shape = { 3, { d0, d1, d2 } } }
#define REDUCE(axes_, squeeze_) .op = TP_OP_REDUCE_MEAN, \
    .attrs.reduce = { .axes = axes_, .squeeze = squeeze_ }

static const OpCase cases[] = {
    /* Conv */
    { "conv 3x3 pad 1 bias", CONV(.out_channels = 4, .kernel = { 3, 3 }, .pads = { 1, 1, 1, 1 },
                                  .bias = TRUE), 3, 7, 9, 2, TP_MODE_EVAL },
    { "conv stride 2", CONV(.out_channels = 5, .kernel = { 3, 3 }, .stride = { 2, 2 },
                            .pads = { 1, 1, 1, 1 }, .bias = TRUE), 3, 7, 9, 2, TP_MODE_TRAIN },
    { "conv asymmetric pads, stride 2x1", CONV(.out_channels = 4, .kernel = { 3, 2 },
                                               .stride = { 2, 1 }, .pads = { 0, 1, 2, 1 },
                                               .bias = TRUE), 3, 7, 9, 2, TP_MODE_EVAL },
    { "conv dilation 2", CONV(.out_channels = 3, .kernel = { 3, 3 }, .dilation = { 2, 2 },
                              .pads = { 2, 1, 2, 1 }, .bias = TRUE), 2, 7, 9, 2, TP_MODE_EVAL },
    { "conv groups 2", CONV(.out_channels = 6, .kernel = { 3, 3 }, .groups = 2,
                            .pads = { 1, 1, 1, 1 }, .bias = TRUE), 4, 7, 9, 2, TP_MODE_EVAL },
    { "conv depthwise", CONV(.out_channels = 3, .kernel = { 3, 3 }, .groups = 3,
                             .pads = { 1, 1, 1, 1 }), 3, 7, 9, 2, TP_MODE_EVAL },
    { "conv depthwise x2", CONV(.out_channels = 6, .kernel = { 3, 3 }, .groups = 3,
                                .stride = { 2, 2 }, .bias = TRUE), 3, 7, 9, 1, TP_MODE_EVAL },
    { "conv 1x1 no bias, 37 channels", CONV(.out_channels = 5, .kernel = { 1, 1 }),
      37, 5, 6, 2, TP_MODE_EVAL },
    { "conv 1 channel 5x3 no bias", CONV(.out_channels = 3, .kernel = { 5, 3 }),
      1, 7, 9, 3, TP_MODE_EVAL },
    { "conv 37 channels stride 2", CONV(.out_channels = 8, .kernel = { 3, 3 },
                                        .stride = { 2, 2 }, .pads = { 1, 1, 1, 1 },
                                        .bias = TRUE), 37, 7, 9, 2, TP_MODE_EVAL },
    { "conv no bias batch 1", CONV(.out_channels = 4, .kernel = { 3, 3 }), 3, 7, 9, 1,
      TP_MODE_EVAL },
    /* 16 channels in and out, 16 tiles of 4x4: the cpu backend runs these by
     * Winograd's algorithm, in eval mode on filters prepared once. */
    { "conv 3x3 pad 1, 16 channels, batch 4", CONV(.out_channels = 16, .kernel = { 3, 3 },
      .pads = { 1, 1, 1, 1 }, .bias = TRUE), 16, 8, 8, 4, TP_MODE_EVAL },
    { "conv 3x3 pad 1, 16 channels, batch 4, training", CONV(.out_channels = 16,
      .kernel = { 3, 3 }, .pads = { 1, 1, 1, 1 }), 16, 8, 8, 4, TP_MODE_TRAIN },
    /* These run on the live taps only (engine/ops/conv.c), in both modes. */
    { "conv 3x3 pad 1 on a 1x1 map: only the centre tap is live",
      CONV(.out_channels = 4, .kernel = { 3, 3 }, .pads = { 1, 1, 1, 1 }, .bias = TRUE),
      5, 1, 1, 2, TP_MODE_EVAL },
    { "conv 5x5 pad 2 on a 2x3 map: first and last kernel rows dead",
      CONV(.out_channels = 3, .kernel = { 5, 5 }, .pads = { 2, 2, 2, 2 }), 2, 2, 3, 2,
      TP_MODE_EVAL },
    { "conv 3x3 dilation 2 pad 2 on a 1x1 map: centre live", CONV(.out_channels = 2,
      .kernel = { 3, 3 }, .dilation = { 2, 2 }, .pads = { 2, 2, 2, 2 }, .bias = TRUE),
      2, 1, 1, 2, TP_MODE_EVAL },
    { "conv 3x3 pad 1 on a 1x1 map, training", CONV(.out_channels = 4, .kernel = { 3, 3 },
      .pads = { 1, 1, 1, 1 }, .bias = TRUE), 5, 1, 1, 2, TP_MODE_TRAIN },
    { "conv 5x5 pad 2 on a 2x3 map, training", CONV(.out_channels = 3, .kernel = { 5, 5 },
      .pads = { 2, 2, 2, 2 }), 2, 2, 3, 2, TP_MODE_TRAIN },

    /* Pools */
    { "maxpool 2x2/2", POOL(TP_OP_MAX_POOL, .kernel = { 2, 2 }, .stride = { 2, 2 }),
      3, 8, 8, 2, TP_MODE_EVAL, FEED_INPUT, DRAW_DISTINCT, 4, 4 },
    { "maxpool 3x3/2 pad 1", POOL(TP_OP_MAX_POOL, .kernel = { 3, 3 }, .stride = { 2, 2 },
                                  .pads = { 1, 1, 1, 1 }),
      2, 7, 9, 2, TP_MODE_EVAL, FEED_INPUT, DRAW_DISTINCT, 4, 5 },
    { "maxpool 3x3/2 ceil", POOL(TP_OP_MAX_POOL, .kernel = { 3, 3 }, .stride = { 2, 2 },
                                 .ceil_mode = TRUE),
      2, 8, 9, 2, TP_MODE_TRAIN, FEED_INPUT, DRAW_DISTINCT, 4, 4 },
    /* ceil would give 4, but the 4th window would start in the end padding. */
    { "maxpool 2x2/2 pad 1 ceil, last window dropped",
      POOL(TP_OP_MAX_POOL, .kernel = { 2, 2 }, .stride = { 2, 2 }, .pads = { 1, 1, 1, 1 },
           .ceil_mode = TRUE),
      2, 5, 5, 2, TP_MODE_EVAL, FEED_INPUT, DRAW_DISTINCT, 3, 3 },
    { "maxpool asymmetric pads", POOL(TP_OP_MAX_POOL, .kernel = { 3, 2 }, .stride = { 1, 2 },
                                      .pads = { 1, 0, 2, 1 }),
      2, 5, 6, 2, TP_MODE_EVAL, FEED_INPUT, DRAW_DISTINCT, 6, 3 },
    { "avgpool 2x2/1", POOL(TP_OP_AVERAGE_POOL, .kernel = { 2, 2 }),
      3, 5, 6, 2, TP_MODE_EVAL, FEED_INPUT, DRAW_UNIFORM, 4, 5 },
    { "avgpool 3x3/2 pad 1 exclude pad", POOL(TP_OP_AVERAGE_POOL, .kernel = { 3, 3 },
                                              .stride = { 2, 2 }, .pads = { 1, 1, 1, 1 }),
      3, 7, 9, 2, TP_MODE_EVAL, FEED_INPUT, DRAW_UNIFORM, 4, 5 },
    { "avgpool 3x3/2 pad 1 include pad", POOL(TP_OP_AVERAGE_POOL, .kernel = { 3, 3 },
                                              .stride = { 2, 2 }, .pads = { 1, 1, 1, 1 },
                                              .count_include_pad = TRUE),
      3, 7, 9, 2, TP_MODE_EVAL, FEED_INPUT, DRAW_UNIFORM, 4, 5 },
    /* ceil: 5 windows, the last one overhanging the end padding. */
    { "avgpool 3x3/2 pad 1 ceil include pad", POOL(TP_OP_AVERAGE_POOL, .kernel = { 3, 3 },
                                                   .stride = { 2, 2 }, .pads = { 1, 1, 1, 1 },
                                                   .ceil_mode = TRUE,
                                                   .count_include_pad = TRUE),
      2, 8, 8, 2, TP_MODE_EVAL, FEED_INPUT, DRAW_UNIFORM, 5, 5 },
    { "avgpool 3x3/2 pad 1 ceil exclude pad", POOL(TP_OP_AVERAGE_POOL, .kernel = { 3, 3 },
                                                   .stride = { 2, 2 }, .pads = { 1, 1, 1, 1 },
                                                   .ceil_mode = TRUE),
      2, 8, 7, 2, TP_MODE_TRAIN, FEED_INPUT, DRAW_UNIFORM, 5, 4 },
    { "global average pool", .op = TP_OP_GLOBAL_AVERAGE_POOL, .c = 5, .h = 7, .w = 9,
      .batch = 3, .mode = TP_MODE_EVAL, .expect_h = 1, .expect_w = 1 },

    /* BatchNormalization */
    { "batchnorm train", .op = TP_OP_BATCH_NORM, .c = 4, .h = 5, .w = 6, .batch = 3,
      .mode = TP_MODE_TRAIN },
    { "batchnorm eval", .op = TP_OP_BATCH_NORM, .attrs.batch_norm = { .epsilon = 1e-3f },
      .c = 4, .h = 5, .w = 6, .batch = 3, .mode = TP_MODE_EVAL },
    { "batchnorm 1-D train", .op = TP_OP_BATCH_NORM,
      .attrs.batch_norm = { .momentum = 0.8f }, .c = 10, .h = 1, .w = 1, .batch = 8,
      .mode = TP_MODE_TRAIN, .feed = FEED_FLATTEN },
    { "batchnorm 1-D eval", .op = TP_OP_BATCH_NORM, .c = 10, .h = 1, .w = 1, .batch = 4,
      .mode = TP_MODE_EVAL, .feed = FEED_FLATTEN },

    /* Gemm */
    { "gemm bias", .op = TP_OP_GEMM, .attrs.gemm = { .out_features = 5, .bias = TRUE },
      .c = 3, .h = 2, .w = 2, .batch = 4, .mode = TP_MODE_TRAIN, .feed = FEED_FLATTEN },
    { "gemm no bias batch 1", .op = TP_OP_GEMM, .attrs.gemm = { .out_features = 7 },
      .c = 3, .h = 2, .w = 2, .batch = 1, .mode = TP_MODE_EVAL, .feed = FEED_FLATTEN },

    /* Dropout */
    { "dropout train", .op = TP_OP_DROPOUT, .attrs.dropout = { .ratio = 0.3f }, .c = 4, .h = 5,
      .w = 6, .batch = 3, .mode = TP_MODE_TRAIN },
    { "dropout eval", .op = TP_OP_DROPOUT, .attrs.dropout = { .ratio = 0.3f }, .c = 4, .h = 5,
      .w = 6, .batch = 3, .mode = TP_MODE_EVAL },

    /* The rest */
    { "softmax", .op = TP_OP_SOFTMAX, .c = 10, .h = 1, .w = 1, .batch = 3,
      .mode = TP_MODE_TRAIN, .feed = FEED_FLATTEN },
    { "add x + x", .op = TP_OP_ADD, .c = 3, .h = 4, .w = 5, .batch = 2, .mode = TP_MODE_EVAL,
      .feed = FEED_INPUT_TWICE },
    { "add x + relu(x)", .op = TP_OP_ADD, .c = 3, .h = 4, .w = 5, .batch = 2,
      .mode = TP_MODE_TRAIN, .feed = FEED_INPUT_AND_RELU, .draw = DRAW_AWAY_FROM_ZERO },
    { "flatten", .op = TP_OP_FLATTEN, .c = 3, .h = 4, .w = 5, .batch = 2, .mode = TP_MODE_EVAL },
    { "relu", .op = TP_OP_RELU, .c = 3, .h = 5, .w = 7, .batch = 2, .mode = TP_MODE_TRAIN,
      .draw = DRAW_AWAY_FROM_ZERO },

    /* Pointwise (unary.c); bounds and kinks away from the finite differences' reach. */
    { "clip (relu6 shape)", UNARY(TP_OP_CLIP, .lo = -0.55f, .hi = 0.65f), 3, 5, 7, 2,
      TP_MODE_TRAIN },
    { "clip, no upper bound", UNARY(TP_OP_CLIP, .lo = 0.33f, .hi = INFINITY), 3, 4, 5, 2,
      TP_MODE_EVAL },
    { "sigmoid", .op = TP_OP_SIGMOID, .c = 3, .h = 5, .w = 7, .batch = 2, .mode = TP_MODE_TRAIN },
    { "hard sigmoid (PyTorch's alpha 1/6)", UNARY(TP_OP_HARD_SIGMOID, .alpha = 1.0f / 6.0f,
      .beta = 0.5f), 3, 5, 7, 2, TP_MODE_TRAIN },
    { "hard sigmoid (ONNX default)", UNARY(TP_OP_HARD_SIGMOID, .alpha = 0.2f, .beta = 0.5f),
      10, 1, 1, 3, TP_MODE_EVAL, FEED_FLATTEN },
    { "hard swish", .op = TP_OP_HARD_SWISH, .c = 3, .h = 5, .w = 7, .batch = 2,
      .mode = TP_MODE_TRAIN },
    { "leaky relu 0.1", UNARY(TP_OP_LEAKY_RELU, .alpha = 0.1f), 3, 5, 7, 2, TP_MODE_TRAIN,
      FEED_INPUT, DRAW_AWAY_FROM_ZERO },
    { "tanh", .op = TP_OP_TANH, .c = 3, .h = 5, .w = 7, .batch = 2, .mode = TP_MODE_TRAIN },
    { "erf", .op = TP_OP_ERF, .c = 3, .h = 5, .w = 7, .batch = 2, .mode = TP_MODE_TRAIN },
    { "sqrt", .op = TP_OP_SQRT, .c = 3, .h = 5, .w = 7, .batch = 2, .mode = TP_MODE_TRAIN,
      .draw = DRAW_POSITIVE },
    { "pow 2", UNARY(TP_OP_POW, .alpha = 2.0f), 3, 5, 7, 2, TP_MODE_TRAIN },
    { "pow 0.5", UNARY(TP_OP_POW, .alpha = 0.5f), 3, 4, 5, 2, TP_MODE_TRAIN, FEED_INPUT,
      DRAW_POSITIVE },

    /* Binary, broadcasting (binary.c, add.c). */
    { "mul by a channel gate (SE)", .op = TP_OP_MUL, .c = 4, .h = 5, .w = 6, .batch = 2,
      .mode = TP_MODE_TRAIN, .feed = FEED_INPUT_AND_POOL },
    { "mul x * x", .op = TP_OP_MUL, .c = 3, .h = 4, .w = 5, .batch = 2, .mode = TP_MODE_TRAIN,
      .feed = FEED_INPUT_TWICE },
    { "mul by a constant [C, 1, 1] (layer scale)", CONSTANT(TP_OP_MUL, 4, 1, 1), 4, 5, 6, 2,
      TP_MODE_TRAIN },
    { "mul by a constant [1, 1, W]", CONSTANT(TP_OP_MUL, 1, 1, 6), 4, 5, 6, 2, TP_MODE_EVAL },
    { "sub the channel mean", .op = TP_OP_SUB, .c = 4, .h = 5, .w = 6, .batch = 2,
      .mode = TP_MODE_TRAIN, .feed = FEED_INPUT_AND_POOL },
    { "sub from the channel mean", .op = TP_OP_SUB, .c = 4, .h = 5, .w = 6, .batch = 2,
      .mode = TP_MODE_TRAIN, .feed = FEED_POOL_AND_INPUT },
    { "sub a constant mean [C, 1, 1]", CONSTANT(TP_OP_SUB, 3, 1, 1), 3, 5, 6, 2,
      TP_MODE_TRAIN },
    { "div by the channel mean", .op = TP_OP_DIV, .c = 4, .h = 5, .w = 6, .batch = 2,
      .mode = TP_MODE_TRAIN, .feed = FEED_INPUT_AND_POOL, .draw = DRAW_POSITIVE },
    { "div the channel mean", .op = TP_OP_DIV, .c = 4, .h = 5, .w = 6, .batch = 2,
      .mode = TP_MODE_TRAIN, .feed = FEED_POOL_AND_INPUT, .draw = DRAW_POSITIVE },
    { "div by a constant scalar", CONSTANT(TP_OP_DIV, 1, 1, 1), 3, 4, 5, 2, TP_MODE_TRAIN },
    { "add the channel mean", .op = TP_OP_ADD, .c = 4, .h = 5, .w = 6, .batch = 2,
      .mode = TP_MODE_TRAIN, .feed = FEED_INPUT_AND_POOL },
    { "add a constant [C, H, W]", CONSTANT(TP_OP_ADD, 3, 4, 5), 3, 4, 5, 2, TP_MODE_TRAIN },

    /* ReduceMean (reduce-mean.c): axes are per-sample bits. */
    { "reduce mean over H, W, keepdims", REDUCE(0x6, FALSE), 4, 5, 6, 2, TP_MODE_TRAIN },
    { "reduce mean over H, W (x.mean([2, 3]))", REDUCE(0x6, TRUE), 4, 5, 6, 2, TP_MODE_TRAIN },
    { "reduce mean over C", REDUCE(0x1, FALSE), 4, 5, 6, 2, TP_MODE_TRAIN },
    { "reduce mean over W (a LayerNorm's)", REDUCE(0x4, FALSE), 4, 5, 6, 3, TP_MODE_TRAIN },
    { "reduce mean of features", REDUCE(0x1, FALSE), 6, 2, 1, 2, TP_MODE_EVAL, FEED_FLATTEN },
};
/* clang-format on */

/* One case built on one backend. */
typedef struct {
    const OpCase *cs;
    const char *backend_name;
    TpBackend *backend;
    TpModel *model;
    guint op_node; /* index of the node under test */
    int out;       /* its output value */
    gsize n_in, n_out;
    float *x;     /* model input [batch, c, h, w], host */
    float *r;     /* the projection of the output, host */
    guint32 seed; /* for this case's random draws */
} Fixture;

static gsize
shape_numel(const TpShape *shape)
{
    gsize n = 1;

    for (int i = 0; i < shape->ndim; i++)
        n *= (gsize)shape->dim[i];
    return n;
}

static int
or_default(int value, int fallback)
{
    return value != 0 ? value : fallback;
}

/* The per-sample output shape, computed here from the case alone. */
static TpShape
expected_shape(const OpCase *cs)
{
    const TpConvAttrs *a = &cs->attrs.conv;
    TpShape s = {3, {cs->c, cs->h, cs->w}};

    switch (cs->op) {
    case TP_OP_CONV: {
        int sh = or_default(a->stride[0], 1), sw = or_default(a->stride[1], 1);
        int dh = or_default(a->dilation[0], 1), dw = or_default(a->dilation[1], 1);

        s.dim[0] = a->out_channels;
        s.dim[1] = (cs->h + a->pads[0] + a->pads[2] - dh * (a->kernel[0] - 1) - 1) / sh + 1;
        s.dim[2] = (cs->w + a->pads[1] + a->pads[3] - dw * (a->kernel[1] - 1) - 1) / sw + 1;
        break;
    }
    case TP_OP_MAX_POOL:
    case TP_OP_AVERAGE_POOL:
    case TP_OP_GLOBAL_AVERAGE_POOL:
        s.dim[1] = cs->expect_h;
        s.dim[2] = cs->expect_w;
        break;
    case TP_OP_GEMM:
        s = (TpShape){1, {cs->attrs.gemm.out_features}};
        break;
    case TP_OP_FLATTEN:
        s = (TpShape){1, {cs->c * cs->h * cs->w}};
        break;
    case TP_OP_REDUCE_MEAN: {
        TpShape in = cs->feed == FEED_FLATTEN ? (TpShape){1, {cs->c * cs->h * cs->w}} : s;

        s.ndim = 0;
        for (int d = 0; d < in.ndim; d++) {
            if (!(cs->attrs.reduce.axes & (1u << d)))
                s.dim[s.ndim++] = in.dim[d];
            else if (!cs->attrs.reduce.squeeze)
                s.dim[s.ndim++] = 1;
        }
        break;
    }
    default:
        if (cs->feed == FEED_FLATTEN)
            s = (TpShape){1, {cs->c * cs->h * cs->w}};
        break;
    }
    return s;
}

static void
conv_geometry(const OpCase *cs, TpConvGeometry *g)
{
    const TpConvAttrs *a = &cs->attrs.conv;
    TpShape out = expected_shape(cs);

    *g = (TpConvGeometry){
        .n = cs->batch,
        .c = cs->c,
        .h = cs->h,
        .w = cs->w,
        .out_c = out.dim[0],
        .out_h = out.dim[1],
        .out_w = out.dim[2],
        .kh = a->kernel[0],
        .kw = a->kernel[1],
        .stride_h = or_default(a->stride[0], 1),
        .stride_w = or_default(a->stride[1], 1),
        .pad_t = a->pads[0],
        .pad_l = a->pads[1],
        .pad_b = a->pads[2],
        .pad_r = a->pads[3],
        .dil_h = or_default(a->dilation[0], 1),
        .dil_w = or_default(a->dilation[1], 1),
        .groups = or_default(a->groups, 1),
    };
}

static void
pool_geometry(const OpCase *cs, TpPoolGeometry *g)
{
    const TpPoolAttrs *a = &cs->attrs.pool;

    *g = (TpPoolGeometry){
        .mode = cs->op == TP_OP_MAX_POOL ? TP_POOL_MAX : TP_POOL_AVERAGE,
        .n = cs->batch,
        .c = cs->c,
        .h = cs->h,
        .w = cs->w,
        .out_h = cs->expect_h,
        .out_w = cs->expect_w,
        .kh = a->kernel[0],
        .kw = a->kernel[1],
        .stride_h = or_default(a->stride[0], 1),
        .stride_w = or_default(a->stride[1], 1),
        .pad_t = a->pads[0],
        .pad_l = a->pads[1],
        .pad_b = a->pads[2],
        .pad_r = a->pads[3],
        .count_include_pad = a->count_include_pad,
    };
    if (cs->op == TP_OP_GLOBAL_AVERAGE_POOL) {
        g->kh = cs->h;
        g->kw = cs->w;
        g->stride_h = g->stride_w = 1;
    }
}

static TpBatchNormGeometry
batch_norm_geometry(const OpCase *cs)
{
    gboolean flat = cs->feed == FEED_FLATTEN;
    float eps = cs->attrs.batch_norm.epsilon, momentum = cs->attrs.batch_norm.momentum;

    return (TpBatchNormGeometry){
        .n = cs->batch,
        .c = flat ? cs->c * cs->h * cs->w : cs->c,
        .hw = flat ? 1 : cs->h * cs->w,
        .epsilon = eps != 0.0f ? eps : 1e-5f,
        .momentum = momentum != 0.0f ? momentum : 0.9f,
    };
}

/* ------------------------------------------------------------ setup */

static void
fixture_init(Fixture *f, int index)
{
    g_autoptr(GError) error = NULL;
    const OpCase *cs = &cases[index % G_N_ELEMENTS(cases)];
    int in[2];
    int v = 0;

    memset(f, 0, sizeof *f);
    f->cs = cs;
    f->seed = SEED + (guint32)(index % G_N_ELEMENTS(cases)) * 7919u;
    f->backend_name = tp_test_backend_name(index / (int)G_N_ELEMENTS(cases));
    f->backend = tp_test_backend_open(f->backend_name);
    f->model = tp_model_new(f->backend, cs->c, cs->h, cs->w);

    if (cs->feed == FEED_FLATTEN)
        v = tp_model_add(f->model, TP_OP_FLATTEN, "feed", &v, NULL, &error);
    else if (cs->feed == FEED_INPUT_AND_RELU)
        v = tp_model_add(f->model, TP_OP_RELU, "feed", &v, NULL, &error);
    else if (cs->feed == FEED_INPUT_AND_POOL || cs->feed == FEED_POOL_AND_INPUT)
        v = tp_model_add(f->model, TP_OP_GLOBAL_AVERAGE_POOL, "feed", &v, NULL, &error);
    ck_assert_msg(v >= 0, "%s", error ? error->message : "");
    f->op_node = (guint)v; /* after the feed node, if there is one */

    in[0] = cs->feed == FEED_INPUT_AND_RELU || cs->feed == FEED_INPUT_AND_POOL ? 0 : v;
    in[1] = cs->feed == FEED_POOL_AND_INPUT ? 0 : v;
    f->out = tp_model_add(f->model, cs->op, "op", in, &cs->attrs, &error);
    ck_assert_msg(f->out >= 0, "%s: %s", cs->label, error ? error->message : "");

    f->n_in = (gsize)cs->batch * cs->c * cs->h * cs->w;
    f->n_out = (gsize)cs->batch * shape_numel(tp_model_get_shape(f->model, f->out));
    f->x = g_new(float, f->n_in);
    f->r = g_new(float, f->n_out);
}

static void
fixture_clear(Fixture *f)
{
    g_free(f->x);
    g_free(f->r);
    tp_model_free(f->model);
    tp_backend_free(f->backend);
}

/* The input, drawn as the case says. */
static void
draw_input(Fixture *f)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(f->seed + 1);

    switch (f->cs->draw) {
    case DRAW_UNIFORM:
        tp_test_fill_uniform(f->x, f->n_in, -2.0f, 2.0f, f->seed + 1);
        break;
    case DRAW_AWAY_FROM_ZERO:
        for (gsize i = 0; i < f->n_in; i++)
            f->x[i] =
                (float)(g_rand_double_range(rand, 0.1, 1.0) * (g_rand_boolean(rand) ? 1.0 : -1.0));
        break;
    case DRAW_POSITIVE:
        tp_test_fill_uniform(f->x, f->n_in, 0.5f, 2.0f, f->seed + 1);
        break;
    case DRAW_DISTINCT:
        for (gsize i = 0; i < f->n_in; i++)
            f->x[i] = (float)(0.05 * (double)i - 0.025 * (double)f->n_in);
        for (gsize i = f->n_in - 1; i > 0; i--) { /* Fisher-Yates */
            gsize j = (gsize)g_rand_int_range(rand, 0, (gint32)i + 1);
            float t = f->x[i];

            f->x[i] = f->x[j];
            f->x[j] = t;
        }
        break;
    }
}

/* Parameters drawn at a scale that keeps outputs near unit size. */
static void
init_params(Fixture *f)
{
    const TpNode *node = tp_model_get_node(f->model, f->op_node);
    g_autoptr(GError) error = NULL;

    for (int p = 0; p < node->n_params; p++) {
        TpTensor *t = tp_model_get_param(f->model, f->op_node, p);
        g_autofree float *host = g_new(float, t->numel);
        float lo = -0.5f, hi = 0.5f;

        if (p == 0 && (node->op == TP_OP_CONV || node->op == TP_OP_GEMM)) {
            float bound = sqrtf(3.0f * (float)t->shape[0] / (float)t->numel);

            lo = -bound;
            hi = bound;
        } else if (node->op == TP_OP_BATCH_NORM && p == 0) {
            lo = 0.5f;
            hi = 1.5f;
        } else if ((node->op == TP_OP_BATCH_NORM && p == 3) || node->op == TP_OP_DIV) {
            lo = 0.5f; /* a variance, a divisor */
            hi = 2.0f;
        }
        tp_test_fill_uniform(host, t->numel, lo, hi, f->seed + 10 + (guint32)p);
        ck_assert(tp_tensor_upload(t, host, &error));
    }
}

/* Forward (reseeded: the same dropout mask every time) and a host copy of the
 * output, g_free'd by the caller. */
static float *
run_forward(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    float *y;

    tp_model_set_seed(f->model, SEED);
    ck_assert_msg(tp_model_forward(f->model, f->x, f->cs->batch, f->cs->mode, &error),
                  "%s [%s]: %s", f->cs->label, f->backend_name, error ? error->message : "");
    y = tp_tensor_dup_host(tp_model_get_value(f->model, f->out), &error);
    ck_assert_ptr_nonnull(y);
    return y;
}

/* L = Σ r·y, in double. */
static double
objective(Fixture *f)
{
    g_autofree float *y = run_forward(f);
    double sum = 0.0;

    for (gsize i = 0; i < f->n_out; i++)
        sum += (double)f->r[i] * y[i];
    return sum;
}

/* ------------------------------------------------------------ forward */

/* The function a pointwise op computes (tp-backend.h has the formulas). */
static TpUnaryFunction
unary_function(TpOpType op)
{
    switch (op) {
    case TP_OP_CLIP:
        return TP_UNARY_CLIP;
    case TP_OP_SIGMOID:
        return TP_UNARY_SIGMOID;
    case TP_OP_HARD_SIGMOID:
        return TP_UNARY_HARD_SIGMOID;
    case TP_OP_HARD_SWISH:
        return TP_UNARY_HARD_SWISH;
    case TP_OP_LEAKY_RELU:
        return TP_UNARY_LEAKY_RELU;
    case TP_OP_TANH:
        return TP_UNARY_TANH;
    case TP_OP_ERF:
        return TP_UNARY_ERF;
    case TP_OP_SQRT:
        return TP_UNARY_SQRT;
    case TP_OP_POW:
        return TP_UNARY_POW;
    default:
        g_assert_not_reached();
    }
}

/* y = a op b for a binary case: the operands as its feed says, each
 * [batch, c, h, w] or [batch, c, 1, 1] (the pooled input), or the constant
 * parameter p[0] ([1, its shape]). */
static gboolean
reference_binary(const Fixture *f, float *const *p, float *y)
{
    const OpCase *cs = f->cs;
    const TpBinaryAttrs *attrs = &cs->attrs.binary;
    TpBinaryOp op = cs->op == TP_OP_ADD   ? TP_BINARY_ADD
                    : cs->op == TP_OP_SUB ? TP_BINARY_SUB
                    : cs->op == TP_OP_MUL ? TP_BINARY_MUL
                                          : TP_BINARY_DIV;
    TpBroadcastGeometry g = {4, {cs->batch, cs->c, cs->h, cs->w}, {cs->batch, cs->c, cs->h, cs->w},
                             {cs->batch, cs->c, cs->h, cs->w}};
    g_autofree float *pooled = g_new0(float, (gsize)cs->batch * cs->c);
    const float *a = f->x, *b = f->x;
    gsize hw = (gsize)cs->h * cs->w;

    for (gsize i = 0; i < (gsize)cs->batch * cs->c; i++) {
        double sum = 0.0;

        for (gsize k = 0; k < hw; k++)
            sum += f->x[i * hw + k];
        pooled[i] = (float)(sum / (double)hw);
    }
    if (attrs->constant) {
        b = p[0];
        g.b[0] = 1;
        for (int d = 0; d < 3; d++)
            g.b[d + 1] = attrs->const_shape.dim[d];
    } else if (cs->feed == FEED_INPUT_AND_POOL) {
        b = pooled;
        g.b[2] = g.b[3] = 1;
    } else if (cs->feed == FEED_POOL_AND_INPUT) {
        a = pooled;
        g.a[2] = g.a[3] = 1;
    }
    ref_binary_forward(op, &g, a, b, y);
    return TRUE;
}

/* The reference output into y (and BatchNorm's updated running statistics
 * into rm, rv, which hold the old ones). FALSE when the op has no exact
 * reference (Dropout in training: its seed is the model's business). */
static gboolean
reference_forward(const Fixture *f, float *const *p, float *rm, float *rv, float *y)
{
    const OpCase *cs = f->cs;
    g_autofree float *relu_x = NULL;
    const float *a = f->x;
    gsize n_in = f->n_in;

    switch (cs->op) {
    case TP_OP_CONV: {
        TpConvGeometry g;

        conv_geometry(cs, &g);
        ref_conv2d_forward(&g, a, p[0], cs->attrs.conv.bias ? p[1] : NULL, y);
        return TRUE;
    }
    case TP_OP_MAX_POOL:
    case TP_OP_AVERAGE_POOL:
    case TP_OP_GLOBAL_AVERAGE_POOL: {
        TpPoolGeometry g;

        pool_geometry(cs, &g);
        ref_pool2d_forward(&g, a, y);
        return TRUE;
    }
    case TP_OP_BATCH_NORM: {
        TpBatchNormGeometry g = batch_norm_geometry(cs);
        g_autofree float *save = g_new(float, 2 * (gsize)g.c);

        if (cs->mode == TP_MODE_TRAIN)
            ref_batch_norm_forward_train(&g, a, p[0], p[1], rm, rv, y, save, save + g.c);
        else
            ref_batch_norm_forward_eval(&g, a, p[0], p[1], p[2], p[3], y);
        return TRUE;
    }
    case TP_OP_GEMM: {
        int in = cs->c * cs->h * cs->w, out = cs->attrs.gemm.out_features;

        ref_gemm(FALSE, TRUE, cs->batch, out, in, 1.0f, a, p[0], 0.0f, y);
        if (cs->attrs.gemm.bias)
            ref_add_bias(cs->batch, out, p[1], y);
        return TRUE;
    }
    case TP_OP_DROPOUT:
        if (cs->mode == TP_MODE_TRAIN)
            return FALSE;
        memcpy(y, a, n_in * sizeof(float));
        return TRUE;
    case TP_OP_SOFTMAX:
        ref_softmax_forward(cs->batch, cs->c * cs->h * cs->w, a, y);
        return TRUE;
    case TP_OP_ADD:
        if (cs->feed != FEED_INPUT_AND_RELU)
            return reference_binary(f, p, y);
        relu_x = g_new(float, n_in);
        ref_relu_forward(n_in, a, relu_x);
        ref_add(n_in, a, relu_x, y);
        return TRUE;
    case TP_OP_MUL:
    case TP_OP_SUB:
    case TP_OP_DIV:
        return reference_binary(f, p, y);
    case TP_OP_CLIP:
    case TP_OP_SIGMOID:
    case TP_OP_HARD_SIGMOID:
    case TP_OP_HARD_SWISH:
    case TP_OP_LEAKY_RELU:
    case TP_OP_TANH:
    case TP_OP_ERF:
    case TP_OP_SQRT:
    case TP_OP_POW: {
        const TpUnaryAttrs *u = &cs->attrs.unary;
        TpUnaryOp op = {unary_function(cs->op), u->alpha, u->beta, u->lo, u->hi};

        ref_unary_forward(&op, n_in, a, y);
        return TRUE;
    }
    case TP_OP_REDUCE_MEAN: {
        TpShape out = expected_shape(cs);
        TpReduceGeometry g = {4, {cs->batch, cs->c, cs->h, cs->w}, {cs->batch, 1, 1, 1}};

        if (cs->feed == FEED_FLATTEN)
            g = (TpReduceGeometry){2, {cs->batch, cs->c * cs->h * cs->w}, {cs->batch, 1}};
        /* keepdims' layout: reduced axes 1, the others as in x */
        for (int d = 1; d < g.ndim; d++)
            g.y[d] = cs->attrs.reduce.axes & (1u << (d - 1)) ? 1 : g.x[d];
        g_assert(shape_numel(&out) * (gsize)cs->batch ==
                 (gsize)g.y[0] * g.y[1] * (g.ndim > 2 ? (gsize)g.y[2] * g.y[3] : 1));
        ref_reduce_forward(TP_REDUCE_MEAN, &g, a, y);
        return TRUE;
    }
    case TP_OP_FLATTEN:
        memcpy(y, a, n_in * sizeof(float));
        return TRUE;
    case TP_OP_RELU:
        ref_relu_forward(n_in, a, y);
        return TRUE;
    case TP_N_OPS:
        break;
    }
    g_assert_not_reached();
}

/* Training Dropout has no exact reference: every output is 0 or x / (1 - ratio),
 * about `ratio` of them are 0, a second draw differs and a reseeded one does not. */
static void
check_dropout_train(Fixture *f, const float *y)
{
    double ratio = f->cs->attrs.dropout.ratio, n = (double)f->n_in;
    double sigma = sqrt(n * ratio * (1.0 - ratio));
    g_autofree float *again = NULL;
    g_autofree float *redrawn = NULL;
    g_autoptr(GError) error = NULL;
    int dropped = 0;

    for (gsize i = 0; i < f->n_in; i++) {
        double kept = f->x[i] / (1.0 - ratio);

        if (y[i] == 0.0f)
            dropped++;
        else
            ck_assert_msg(fabs(y[i] - kept) <= 1e-6 * (1.0 + fabs(kept)),
                          "%s: element %" G_GSIZE_FORMAT ": %g is neither 0 nor x/(1-ratio) %g",
                          f->cs->label, i, y[i], kept);
    }
    ck_assert_msg(fabs(dropped - n * ratio) <= 5.0 * sigma, "%s: dropped %d of %g, ratio %g",
                  f->cs->label, dropped, n, ratio);

    again = run_forward(f);
    ck_assert_msg(memcmp(again, y, f->n_in * sizeof(float)) == 0,
                  "%s: a reseeded forward drew a different mask", f->cs->label);
    ck_assert(tp_model_forward(f->model, f->x, f->cs->batch, TP_MODE_TRAIN, &error));
    redrawn = tp_tensor_dup_host(tp_model_get_value(f->model, f->out), &error);
    ck_assert_msg(memcmp(redrawn, y, f->n_in * sizeof(float)) != 0,
                  "%s: two training forwards drew the same mask", f->cs->label);
}

START_TEST(test_forward)
{
    Fixture f;
    g_autoptr(GError) error = NULL;
    g_autofree char *what = NULL;
    float *p[TP_NODE_MAX_PARAMS] = {NULL};
    g_autofree float *y = NULL;
    g_autofree float *want = NULL;
    const TpShape *shape;
    TpShape expect;
    TpTensor *value;
    const TpNode *node;

    fixture_init(&f, _i);
    what = g_strdup_printf("%s [%s]: forward", f.cs->label, f.backend_name);
    node = tp_model_get_node(f.model, f.op_node);

    /* Shape inference. */
    shape = tp_model_get_shape(f.model, f.out);
    expect = expected_shape(f.cs);
    ck_assert_msg(shape->ndim == expect.ndim &&
                      memcmp(shape->dim, expect.dim, sizeof(int) * (gsize)expect.ndim) == 0,
                  "%s: output shape [%d, %d, %d] (ndim %d), want [%d, %d, %d] (ndim %d)", what,
                  shape->dim[0], shape->dim[1], shape->dim[2], shape->ndim, expect.dim[0],
                  expect.dim[1], expect.dim[2], expect.ndim);

    draw_input(&f);
    init_params(&f);
    for (int i = 0; i < node->n_params; i++)
        p[i] = tp_tensor_dup_host(node->params[i], &error);

    y = run_forward(&f);
    value = tp_model_get_value(f.model, f.out);
    ck_assert_int_eq(value->ndim, 1 + expect.ndim);
    ck_assert_int_eq(value->shape[0], f.cs->batch);
    ck_assert_uint_eq(value->numel, f.n_out);

    want = g_new(float, f.n_out);
    if (!reference_forward(&f, p, p[2], p[3], want)) {
        check_dropout_train(&f, y);
    } else {
        tp_test_assert_close(y, want, f.n_out, FWD_ATOL, FWD_RTOL, what);
    }

    if (f.cs->op == TP_OP_BATCH_NORM) {
        /* p[2], p[3] now hold the reference's running statistics. */
        g_autofree float *rm = tp_tensor_dup_host(node->params[2], &error);
        g_autofree float *rv = tp_tensor_dup_host(node->params[3], &error);
        g_autofree char *what_rm = g_strdup_printf("%s: running mean", what);
        g_autofree char *what_rv = g_strdup_printf("%s: running var", what);

        tp_test_assert_close(rm, p[2], node->params[2]->numel, FWD_ATOL, FWD_RTOL, what_rm);
        tp_test_assert_close(rv, p[3], node->params[3]->numel, FWD_ATOL, FWD_RTOL, what_rv);
    }

    for (int i = 0; i < node->n_params; i++)
        g_free(p[i]);
    fixture_clear(&f);
}
END_TEST

/* ------------------------------------------------------------ backward */

/* Compares the analytic gradient `grad` of `target` (n floats, host copy in
 * `host`; the input when target is NULL) with central differences of L at
 * up to N_PROBES coordinates. */
static void
check_gradient(Fixture *f, TpTensor *target, float *host, gsize n, const float *grad,
               const char *what)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(f->seed + 99);
    g_autoptr(GError) error = NULL;
    float analytic[N_PROBES], numeric[N_PROBES];
    int probes = n < N_PROBES ? (int)n : N_PROBES;

    for (int k = 0; k < probes; k++) {
        gsize i = n <= N_PROBES ? (gsize)k : (gsize)g_rand_int_range(rand, 0, (gint32)n);
        float saved = host[i];
        float plus = (float)(saved + FD_H), minus = (float)(saved - FD_H);
        double l_plus, l_minus;

        host[i] = plus;
        if (target != NULL)
            ck_assert(tp_tensor_upload(target, host, &error));
        l_plus = objective(f);
        host[i] = minus;
        if (target != NULL)
            ck_assert(tp_tensor_upload(target, host, &error));
        l_minus = objective(f);
        host[i] = saved;
        if (target != NULL)
            ck_assert(tp_tensor_upload(target, host, &error));

        analytic[k] = grad[i];
        numeric[k] = (float)((l_plus - l_minus) / ((double)plus - (double)minus));
    }
    tp_test_assert_close(analytic, numeric, (gsize)probes, FD_ATOL, FD_RTOL, what);
}

START_TEST(test_backward)
{
    Fixture f;
    g_autoptr(GError) error = NULL;
    g_autofree float *y = NULL;
    g_autofree float *dx = NULL;
    float *dp[TP_NODE_MAX_PARAMS] = {NULL};
    const TpNode *node;
    TpTensor *seed;

    fixture_init(&f, _i);
    node = tp_model_get_node(f.model, f.op_node);
    draw_input(&f);
    init_params(&f);
    tp_test_fill_uniform(f.r, f.n_out, -1.0f, 1.0f, f.seed + 2);

    /* Analytic: seed dL/dy = r at the output. */
    y = run_forward(&f);
    seed = tp_model_ensure_grad(f.model, f.out, &error);
    ck_assert_msg(seed != NULL, "%s", error ? error->message : "");
    ck_assert(tp_tensor_upload(seed, f.r, &error));
    ck_assert_msg(tp_model_backward(f.model, f.out, &error), "%s [%s]: backward: %s", f.cs->label,
                  f.backend_name, error ? error->message : "");
    ck_assert_ptr_nonnull(tp_model_get_grad(f.model, 0));
    dx = tp_tensor_dup_host(tp_model_get_grad(f.model, 0), &error);
    for (int p = 0; p < node->n_params; p++) {
        TpTensor *g = tp_model_get_param_grad(f.model, f.op_node, p);

        if (!tp_model_param_is_trainable(f.model, f.op_node, p)) {
            ck_assert_ptr_null(g);
            continue;
        }
        ck_assert_ptr_nonnull(g);
        dp[p] = tp_tensor_dup_host(g, &error);
    }

    /* Numeric. */
    {
        g_autofree char *what = g_strdup_printf("%s [%s]: d input", f.cs->label, f.backend_name);

        check_gradient(&f, NULL, f.x, f.n_in, dx, what);
    }
    for (int p = 0; p < node->n_params; p++) {
        TpTensor *param = tp_model_get_param(f.model, f.op_node, p);
        g_autofree float *host = NULL;
        g_autofree char *what = NULL;

        if (dp[p] == NULL)
            continue;
        host = tp_tensor_dup_host(param, &error);
        what = g_strdup_printf("%s [%s]: d parameter %d", f.cs->label, f.backend_name, p);
        check_gradient(&f, param, host, param->numel, dp[p], what);
        g_free(dp[p]);
    }
    fixture_clear(&f);
}
END_TEST

/* Every op type has at least one case here. */
START_TEST(test_cases)
{
    gboolean found = FALSE;

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        found = found || cases[i].op == (TpOpType)_i;
    ck_assert_msg(found, "op %s has no case in test-ops", tp_op_type_to_string((TpOpType)_i));
}
END_TEST

int
main(void)
{
    Suite *suite;
    TCase *tc;
    int n;

    tp_test_init();
    n = (int)G_N_ELEMENTS(cases) * tp_test_count_backends();

    suite = suite_create("ops");
    tc = tcase_create("ops");
    tcase_add_loop_test(tc, test_forward, 0, n);
    tcase_add_loop_test(tc, test_backward, 0, n);
    tcase_add_loop_test(tc, test_cases, 0, TP_N_OPS);
    suite_add_tcase(suite, tc);
    return tp_test_run(suite);
}
