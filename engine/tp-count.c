/* tp-count.c — parameter and MAC counts of a model (docs/method.md §3):
 *   params        = every trainable parameter: weights, biases, BatchNorm scale and bias;
 *   running_stats = BatchNorm running mean and variance (reported separately);
 *   macs          = per sample: Conv C_out·H_out·W_out·(C_in/groups)·kh·kw, Gemm in·out,
 *                   every other op 0 (each op class's macs member).
 */
#include "config.h"

#include "tp-model.h"
#include "tp-op.h"

/* Counts of node `index` written to *out_count. */
void
tp_model_count_node(const TpModel *model, guint index, TpCount *out_count)
{
    const TpOpClass *klass;
    const TpNode *node;
    TpCount count = {0, 0, 0};

    g_return_if_fail(model != NULL);
    g_return_if_fail(index < tp_model_get_n_nodes(model));
    g_return_if_fail(out_count != NULL);

    node = tp_model_get_node(model, index);
    for (int i = 0; i < node->n_params; i++) {
        if (tp_model_param_is_trainable(model, index, i))
            count.params += node->params[i]->numel;
        else
            count.running_stats += node->params[i]->numel;
    }
    klass = tp_op_class_get(node->op);
    if (klass->macs != NULL)
        count.macs = klass->macs(node, tp_model_get_shape(model, node->inputs[0]),
                                 tp_model_get_shape(model, node->output));
    *out_count = count;
}

/* The sums over every node. */
void
tp_model_count(const TpModel *model, TpCount *out_count)
{
    TpCount total = {0, 0, 0};

    g_return_if_fail(model != NULL);
    g_return_if_fail(out_count != NULL);

    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        TpCount one;

        tp_model_count_node(model, i, &one);
        total.params += one.params;
        total.running_stats += one.running_stats;
        total.macs += one.macs;
    }
    *out_count = total;
}
