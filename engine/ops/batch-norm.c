/* batch-norm.c — BatchNormalization (ONNX), per channel c of x [N, C, H, W]
 * or [N, C] (after a Gemm):
 *
 *   y = scale[c] · (x − mean[c]) / sqrt(var[c] + epsilon) + bias[c]
 *
 * Evaluation uses the running mean and variance. Training uses the batch's
 * mean and (biased) variance and updates the running statistics in place:
 * running = momentum · running + (1 − momentum) · batch, the variance update
 * using the unbiased batch variance (tp-backend.h). Training needs at least
 * two values per channel (N·H·W ≥ 2).
 *
 * Backward follows the mode of the last forward. After a training forward it
 * is the backend's batch-statistics backward. After an evaluation forward the
 * op is a fixed per-channel affine map, so
 *   dx = dy · scale / sqrt(running_var + eps),
 *   dscale = Σ dy · (x − running_mean) / sqrt(running_var + eps),   dbias = Σ dy,
 * computed with the eval-mode forward kernel (dx, the inverse std) and the
 * backward kernel fed the running statistics in place of the saved ones
 * (dscale, dbias); criteria such as Taylor differentiate eval-mode models.
 *
 * Synchronized statistics (state->sync_comm set, docs/scaling.md): a
 * training forward normalizes with the mean and biased variance of the whole
 * global batch, every rank's slice: per-channel sums over (N, H, W), then
 * sums of squared deviations from the global mean, each summed over the
 * ranks in double, on the host; the running statistics are updated from
 * those global ones. Its backward sums over the ranks, per channel,
 *   A = Σ w·dy   and   B = Σ w·dy·x̂,   x̂ = (x − mean) / sqrt(var + eps),
 * where w is the rank's share of the batch's samples: each rank's dy is the
 * gradient of its own mean loss and the trainer weighs ranks' gradients by w
 * (tp-train.c), so the gradient of the global loss is w·dy. With M values
 * per channel in the global batch,
 *   dx = scale / sqrt(var + eps) · (dy − (A + x̂·B) / (M·w)),
 * the gradient of the global loss divided by w (the trainer's weighing
 * multiplies it back); dscale = Σ dy·x̂ and dbias = Σ dy are the rank's own,
 * summed with the other gradients.
 *
 * Attributes (TpBatchNormAttrs): epsilon (default 1e-5, > 0), momentum
 * (default 0.9, in (0, 1]). Parameters [C] each: 0 scale (starts at 1),
 * 1 bias, 2 running mean, 3 running var (starts at 1); 2 and 3 are not
 * trainable. No MACs are counted.
 */
#include "config.h"

#include <math.h>

#include "tp-onnx.h"
#include "tp-op.h"

enum {
    SCALE,
    BIAS,
    RUNNING_MEAN,
    RUNNING_VAR,
};

/* state->buffers[]: all [C]. */
enum {
    SAVE_MEAN,   /* batch mean of the last training forward */
    SAVE_INVSTD, /* 1 / sqrt(batch var + eps) of the last training forward */
    ONES,        /* eval-mode backward: constant 1 */
    ZEROS,       /* eval-mode backward: constant 0 */
    RUN_INVSTD,  /* eval-mode backward: 1 / sqrt(running var + eps) */
};

static gboolean
batch_norm_check(TpNode *node, const TpShape *const *inputs, TpOpSignature *sig, GError **error)
{
    TpBatchNormAttrs *a = &node->attrs.batch_norm;
    const TpShape *in = inputs[0];
    int c = in->dim[0];

    if (a->epsilon == 0.0f)
        a->epsilon = 1e-5f;
    if (a->momentum == 0.0f)
        a->momentum = 0.9f;
    if (!(a->epsilon > 0.0f) || !isfinite(a->epsilon)) {
        tp_op_set_error(error, node, "epsilon %g: must be positive", a->epsilon);
        return FALSE;
    }
    if (!(a->momentum > 0.0f && a->momentum <= 1.0f)) {
        tp_op_set_error(error, node, "momentum %g: must be in (0, 1]", a->momentum);
        return FALSE;
    }

    sig->output = *in;
    sig->n_params = 4;
    for (int i = 0; i < 4; i++) {
        sig->params[i] = (TpOpParamShape){1, {c}};
        sig->trainable[i] = i == SCALE || i == BIAS;
    }
    sig->init[SCALE] = 1.0f;
    sig->init[RUNNING_VAR] = 1.0f;
    return TRUE;
}

/* The kernel geometry for x: [n, c, everything else]. */
static void
batch_norm_geometry(const TpNode *node, const TpTensor *x, TpBatchNormGeometry *g)
{
    int hw = 1;

    for (int i = 2; i < x->ndim; i++)
        hw *= x->shape[i];
    *g = (TpBatchNormGeometry){
        .n = x->shape[0],
        .c = x->shape[1],
        .hw = hw,
        .epsilon = node->attrs.batch_norm.epsilon,
        .momentum = node->attrs.batch_norm.momentum,
    };
}

/* Synchronized training forward (see the top of the file). */
static gboolean
batch_norm_forward_sync(const TpNode *node, const TpBatchNormGeometry *g, const TpTensor *x,
                        TpTensor *output, TpTensor *save_mean, TpTensor *save_invstd,
                        TpComm *comm, GError **error)
{
    gsize c = (gsize)g->c, hw = (gsize)g->hw;
    g_autofree float *host = tp_tensor_dup_host(x, error);
    g_autofree float *p[4] = {NULL, NULL, NULL, NULL};
    g_autofree double *sums = g_new0(double, c + 1);
    g_autofree float *mean = g_new(float, c);
    g_autofree float *invstd = g_new(float, c);
    double count;

    if (host == NULL)
        return FALSE;
    for (int i = 0; i < 4; i++)
        if ((p[i] = tp_tensor_dup_host(node->params[i], error)) == NULL)
            return FALSE;
    for (gsize s = 0; s < (gsize)g->n; s++)
        for (gsize ch = 0; ch < c; ch++)
            for (gsize k = 0; k < hw; k++)
                sums[ch] += host[(s * c + ch) * hw + k];
    sums[c] = (double)g->n * (double)hw;
    if (!tp_comm_all_reduce_double(comm, sums, c + 1, error))
        return FALSE;
    count = sums[c];
    if (count < 2) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                    "training needs at least 2 values per channel, the global batch has %g",
                    count);
        return FALSE;
    }
    for (gsize ch = 0; ch < c; ch++)
        sums[ch] /= count;
    {
        g_autofree double *squares = g_new0(double, c);

        for (gsize s = 0; s < (gsize)g->n; s++)
            for (gsize ch = 0; ch < c; ch++)
                for (gsize k = 0; k < hw; k++) {
                    double d = host[(s * c + ch) * hw + k] - sums[ch];
                    squares[ch] += d * d;
                }
        if (!tp_comm_all_reduce_double(comm, squares, c, error))
            return FALSE;
        for (gsize ch = 0; ch < c; ch++) {
            double var = squares[ch] / count;

            mean[ch] = (float)sums[ch];
            invstd[ch] = (float)(1.0 / sqrt(var + g->epsilon));
            p[RUNNING_MEAN][ch] = (float)(g->momentum * (double)p[RUNNING_MEAN][ch] +
                                          (1.0 - g->momentum) * sums[ch]);
            p[RUNNING_VAR][ch] = (float)(g->momentum * (double)p[RUNNING_VAR][ch] +
                                         (1.0 - g->momentum) * squares[ch] / (count - 1));
        }
    }
    for (gsize s = 0; s < (gsize)g->n; s++)
        for (gsize ch = 0; ch < c; ch++)
            for (gsize k = 0; k < hw; k++) {
                float *v = &host[(s * c + ch) * hw + k];
                *v = p[SCALE][ch] * (*v - mean[ch]) * invstd[ch] + p[BIAS][ch];
            }
    return tp_tensor_upload(output, host, error) && tp_tensor_upload(save_mean, mean, error) &&
           tp_tensor_upload(save_invstd, invstd, error) &&
           tp_tensor_upload(node->params[RUNNING_MEAN], p[RUNNING_MEAN], error) &&
           tp_tensor_upload(node->params[RUNNING_VAR], p[RUNNING_VAR], error);
}

static gboolean
batch_norm_forward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                   TpTensor *output, TpMode mode, TpOpState *state, GError **error)
{
    TpBatchNormGeometry g;
    TpTensor *save_mean, *save_invstd;
    float *const p[4] = {node->params[SCALE]->data, node->params[BIAS]->data,
                         node->params[RUNNING_MEAN]->data, node->params[RUNNING_VAR]->data};

    batch_norm_geometry(node, inputs[0], &g);
    if (mode != TP_MODE_TRAIN)
        return backend->vt.batch_norm_forward_eval(backend->self, &g, inputs[0]->data, p[SCALE],
                                                   p[BIAS], p[RUNNING_MEAN], p[RUNNING_VAR],
                                                   output->data, error);

    if ((gint64)g.n * g.hw < 2) {
        g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                    "training needs at least 2 values per channel, the batch has %d", g.n * g.hw);
        return FALSE;
    }
    save_mean = tp_op_state_buffer(state, backend, SAVE_MEAN, (gsize)g.c, error);
    save_invstd = save_mean != NULL
                      ? tp_op_state_buffer(state, backend, SAVE_INVSTD, (gsize)g.c, error)
                      : NULL;
    if (save_invstd == NULL)
        return FALSE;
    tp_tensor_touch(node->params[RUNNING_MEAN]);
    tp_tensor_touch(node->params[RUNNING_VAR]);
    if (state->sync_comm != NULL)
        return batch_norm_forward_sync(node, &g, inputs[0], output, save_mean, save_invstd,
                                       state->sync_comm, error);
    return backend->vt.batch_norm_forward_train(
        backend->self, &g, inputs[0]->data, p[SCALE], p[BIAS], p[RUNNING_MEAN], p[RUNNING_VAR],
        output->data, save_mean->data, save_invstd->data, error);
}

/* Backward of the evaluation-mode forward (see the top of the file). */
static gboolean
batch_norm_backward_eval(const TpNode *node, TpBackend *backend, const TpBatchNormGeometry *g,
                         const TpTensor *x, const TpTensor *dy, TpTensor *dx, TpOpState *state,
                         GError **error)
{
    TpBatchNormGeometry per_channel = {
        .n = 1, .c = g->c, .hw = 1, .epsilon = g->epsilon, .momentum = g->momentum};
    TpTensor *ones, *zeros, *invstd;
    gsize c = (gsize)g->c;

    if ((ones = tp_op_state_buffer(state, backend, ONES, c, error)) == NULL ||
        (zeros = tp_op_state_buffer(state, backend, ZEROS, c, error)) == NULL ||
        (invstd = tp_op_state_buffer(state, backend, RUN_INVSTD, c, error)) == NULL)
        return FALSE;
    if (!tp_tensor_fill(ones, 1.0f, error) || !tp_tensor_fill(zeros, 0.0f, error))
        return FALSE;

    /* invstd = 1 · (1 − 0) / sqrt(running_var + eps) + 0 */
    if (!backend->vt.batch_norm_forward_eval(backend->self, &per_channel, ones->data, ones->data,
                                             zeros->data, zeros->data,
                                             node->params[RUNNING_VAR]->data, invstd->data, error))
        return FALSE;
    /* dscale and dbias: the training backward with the running statistics as
     * the saved ones; its dx is discarded (overwritten below). */
    if (!backend->vt.batch_norm_backward(backend->self, g, x->data, dy->data,
                                         node->params[SCALE]->data,
                                         node->params[RUNNING_MEAN]->data, invstd->data, dx->data,
                                         node->grads[SCALE]->data, node->grads[BIAS]->data, error))
        return FALSE;
    /* dx = scale · (dy − 0) / sqrt(running_var + eps) + 0 */
    return backend->vt.batch_norm_forward_eval(backend->self, g, dy->data,
                                               node->params[SCALE]->data, zeros->data, zeros->data,
                                               node->params[RUNNING_VAR]->data, dx->data, error);
}

/* Backward of a synchronized training forward (see the top of the file). */
static gboolean
batch_norm_backward_sync(const TpNode *node, const TpBatchNormGeometry *g, const TpTensor *x,
                         const TpTensor *dy, TpTensor *dx, TpOpState *state, GError **error)
{
    gsize c = (gsize)g->c, hw = (gsize)g->hw;
    g_autofree float *hx = tp_tensor_dup_host(x, error);
    g_autofree float *hdy = hx != NULL ? tp_tensor_dup_host(dy, error) : NULL;
    g_autofree float *mean = hdy != NULL ? tp_tensor_dup_host(state->buffers[SAVE_MEAN], error)
                                         : NULL;
    g_autofree float *invstd =
        mean != NULL ? tp_tensor_dup_host(state->buffers[SAVE_INVSTD], error) : NULL;
    g_autofree float *scale = invstd != NULL ? tp_tensor_dup_host(node->params[SCALE], error)
                                             : NULL;
    g_autofree float *dscale = g_new0(float, c);
    g_autofree float *dbias = g_new0(float, c);
    /* n·Σ dy, n·Σ dy·x̂ per channel, then n (this rank's samples): summed
     * over the ranks and divided by the total, they are A and B, since
     * w = n / total. */
    g_autofree double *sums = g_new0(double, 2 * c + 1);
    double local = (double)g->n * (double)hw; /* M·w */

    if (scale == NULL)
        return FALSE;
    for (gsize s = 0; s < (gsize)g->n; s++)
        for (gsize ch = 0; ch < c; ch++)
            for (gsize k = 0; k < hw; k++) {
                gsize i = (s * c + ch) * hw + k;
                double xhat = (hx[i] - mean[ch]) * (double)invstd[ch];

                sums[ch] += hdy[i];
                sums[c + ch] += hdy[i] * xhat;
            }
    for (gsize ch = 0; ch < c; ch++) {
        dbias[ch] = (float)sums[ch];
        dscale[ch] = (float)sums[c + ch];
    }
    for (gsize i = 0; i < 2 * c; i++)
        sums[i] *= g->n;
    sums[2 * c] = g->n;
    if (!tp_comm_all_reduce_double(state->sync_comm, sums, 2 * c + 1, error))
        return FALSE;
    for (gsize i = 0; i < 2 * c; i++)
        sums[i] /= sums[2 * c];
    for (gsize s = 0; s < (gsize)g->n; s++)
        for (gsize ch = 0; ch < c; ch++)
            for (gsize k = 0; k < hw; k++) {
                gsize i = (s * c + ch) * hw + k;
                double xhat = (hx[i] - mean[ch]) * (double)invstd[ch];

                hx[i] = (float)(scale[ch] * (double)invstd[ch] *
                                (hdy[i] - (sums[ch] + xhat * sums[c + ch]) / local));
            }
    return tp_tensor_upload(dx, hx, error) &&
           tp_tensor_upload(node->grads[SCALE], dscale, error) &&
           tp_tensor_upload(node->grads[BIAS], dbias, error);
}

static gboolean
batch_norm_backward(const TpNode *node, TpBackend *backend, TpTensor *const *inputs,
                    const TpTensor *output, const TpTensor *doutput, TpTensor *const *dinputs,
                    TpOpState *state, GError **error)
{
    TpBatchNormGeometry g;

    g_return_val_if_fail(dinputs[0] != NULL, FALSE);

    batch_norm_geometry(node, inputs[0], &g);
    if (state->mode != TP_MODE_TRAIN)
        return batch_norm_backward_eval(node, backend, &g, inputs[0], doutput, dinputs[0], state,
                                        error);
    if (state->sync_comm != NULL)
        return batch_norm_backward_sync(node, &g, inputs[0], doutput, dinputs[0], state, error);
    return backend->vt.batch_norm_backward(
        backend->self, &g, inputs[0]->data, doutput->data, node->params[SCALE]->data,
        state->buffers[SAVE_MEAN]->data, state->buffers[SAVE_INVSTD]->data, dinputs[0]->data,
        node->grads[SCALE]->data, node->grads[BIAS]->data, error);
}

static void
batch_norm_export(const TpNode *node, TpOnnxNodeWriter *w)
{
    tp_onnx_writer_float(w, "epsilon", node->attrs.batch_norm.epsilon);
    tp_onnx_writer_float(w, "momentum", node->attrs.batch_norm.momentum);
}

/* Every parameter is per channel of the input. */
static void
batch_norm_cut(const TpNode *node, const TpShape *input, const GArray *in, const GArray *out,
               TpOpAttrs *attrs, const GArray **rows, const GArray **cols)
{
    rows[0] = rows[1] = rows[2] = rows[3] = in;
}

/* ONNX: the inference form, X, scale, B, mean, var (each [C]). */
static gboolean
batch_norm_import(TpOnnxReader *r, TpOpAttrs *attrs, int *inputs, const float **params,
                  GError **error)
{
    static const char *const known[] = {"epsilon", "momentum",        "spatial", "training_mode",
                                        "is_test", "consumed_inputs", NULL};
    static const char *const names[] = {"scale", "bias", "mean", "var"};
    gint64 spatial, training;

    if (!tp_onnx_reader_attrs(r, known, error) || !tp_onnx_reader_value(r, 0, &inputs[0], error) ||
        !tp_onnx_reader_float(r, "epsilon", 1e-5f, &attrs->batch_norm.epsilon, error) ||
        !tp_onnx_reader_float(r, "momentum", 0.9f, &attrs->batch_norm.momentum, error) ||
        !tp_onnx_reader_int(r, "spatial", 1, &spatial, error) ||
        !tp_onnx_reader_int(r, "training_mode", 0, &training, error))
        return FALSE;
    if (spatial != 1 || training != 0)
        return tp_onnx_reader_error(
            r, error, TP_ONNX_ERROR_UNSUPPORTED,
            "only the inference form (spatial = 1, training_mode = 0) is supported");
    gint64 channels = tp_onnx_reader_shape(r, inputs[0])->dim[0];
    for (int i = 0; i < 4; i++) {
        const TpOnnxConst *p;

        if (!tp_onnx_reader_param(r, i + 1, FALSE, &p, error) ||
            !tp_onnx_reader_check_dims(r, names[i], p, 1, &channels, error))
            return FALSE;
        params[i] = p->f;
    }
    return TRUE;
}

const TpOpClass tp_op_batch_norm = {
    /* .name = */ "BatchNormalization",
    /* .n_inputs = */ 1,
    /* .check = */ batch_norm_check,
    /* .forward = */ batch_norm_forward,
    /* .backward = */ batch_norm_backward,
    /* .macs = */ NULL,
    /* .import = */ batch_norm_import,
    /* .param_names = */ {"scale", "bias", "mean", "var"},
    /* .export = */ batch_norm_export,
    /* .channels = */ tp_op_channels_keep,
    /* .cut = */ batch_norm_cut,
    /* .lrp_rule = */ TP_OP_LRP_NONE, /* folded into its Conv first (tp-lrp.c) */
    /* .sign = */ TP_OP_SIGN_ANY,
    /* .n_values = */ NULL,
    /* .export_opset = */ 0,
};
