/* tp-sgd.c — SGD with momentum, Nesterov and weight decay over a model's
 * trainable parameters: one velocity tensor per parameter (zeroed at
 * creation, never reallocated) and one backend sgd_update per parameter and
 * step (the update rule is TpSgdHyper's, in tp-backend.h). */
#include "config.h"

#include <math.h>

#include "tp-sgd.h"

/* One trainable parameter: where it is in the model and its velocity. */
typedef struct {
    guint node;
    int param;
    TpTensor *velocity;
} TpSgdSlot;

struct _TpSgd {
    TpModel *model; /* borrowed; outlives the optimizer */
    TpSgdHyper hyper;
    GArray *slots; /* TpSgdSlot, in node order */
};

static void
slot_clear(gpointer data)
{
    TpSgdSlot *slot = data;

    g_clear_pointer(&slot->velocity, tp_tensor_free);
}

/* Checks the hyper-parameters as PyTorch does; error in TP_MODEL_ERROR_INVALID. */
static gboolean
hyper_check(const TpSgdHyper *hyper, GError **error)
{
    const char *problem = NULL;

    if (!(hyper->lr >= 0.0f) || !isfinite(hyper->lr))
        problem = "the learning rate must be a finite number >= 0";
    else if (!(hyper->momentum >= 0.0f) || !isfinite(hyper->momentum))
        problem = "momentum must be a finite number >= 0";
    else if (!(hyper->weight_decay >= 0.0f) || !isfinite(hyper->weight_decay))
        problem = "weight decay must be a finite number >= 0";
    else if (hyper->nesterov && hyper->momentum == 0.0f)
        problem = "nesterov needs a momentum > 0";
    if (problem == NULL)
        return TRUE;
    g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_INVALID,
                "SGD (lr %g, momentum %g, weight decay %g%s): %s", hyper->lr, hyper->momentum,
                hyper->weight_decay, hyper->nesterov ? ", nesterov" : "", problem);
    return FALSE;
}

/* An optimizer over every trainable parameter of model, velocities zeroed on
 * the model's backend. */
TpSgd *
tp_sgd_new(TpModel *model, const TpSgdHyper *hyper, GError **error)
{
    g_autoptr(GArray) slots = NULL;
    TpSgd *sgd;

    g_return_val_if_fail(model != NULL, NULL);
    g_return_val_if_fail(hyper != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    if (!hyper_check(hyper, error))
        return NULL;

    slots = g_array_new(FALSE, TRUE, sizeof(TpSgdSlot));
    g_array_set_clear_func(slots, slot_clear);
    for (guint i = 0; i < tp_model_get_n_nodes(model); i++) {
        const TpNode *node = tp_model_get_node(model, i);

        for (int p = 0; p < node->n_params; p++) {
            TpSgdSlot slot = {i, p, NULL};

            if (!tp_model_param_is_trainable(model, i, p))
                continue;
            slot.velocity = tp_tensor_new_zeros(tp_model_get_backend(model), node->params[p]->ndim,
                                                node->params[p]->shape, error);
            if (slot.velocity == NULL) {
                g_prefix_error(error, "SGD velocity of %s '%s' parameter %d: ",
                               tp_op_type_to_string(node->op), node->name, p);
                return NULL;
            }
            g_array_append_val(slots, slot);
        }
    }

    sgd = g_new0(TpSgd, 1);
    sgd->model = model;
    sgd->hyper = *hyper;
    sgd->slots = g_steal_pointer(&slots);
    return sgd;
}

void
tp_sgd_free(TpSgd *sgd)
{
    if (sgd == NULL)
        return;
    g_array_unref(sgd->slots);
    g_free(sgd);
}

guint
tp_sgd_get_n_velocities(const TpSgd *sgd)
{
    g_return_val_if_fail(sgd != NULL, 0);
    return sgd->slots->len;
}

TpTensor *
tp_sgd_get_velocity(TpSgd *sgd, guint i)
{
    g_return_val_if_fail(sgd != NULL && i < sgd->slots->len, NULL);
    return g_array_index(sgd->slots, TpSgdSlot, i).velocity;
}

void
tp_sgd_set_lr(TpSgd *sgd, float lr)
{
    g_return_if_fail(sgd != NULL);
    g_return_if_fail(lr >= 0.0f);
    sgd->hyper.lr = lr;
}

/* One update of every trainable parameter. Every parameter is checked for a
 * gradient before any is changed, so a failed step changes nothing (short of
 * a backend failure midway). */
gboolean
tp_sgd_step(TpSgd *sgd, GError **error)
{
    TpBackend *backend;

    g_return_val_if_fail(sgd != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    for (guint s = 0; s < sgd->slots->len; s++) {
        const TpSgdSlot *slot = &g_array_index(sgd->slots, TpSgdSlot, s);

        if (tp_model_get_param_grad(sgd->model, slot->node, slot->param) == NULL) {
            const TpNode *node = tp_model_get_node(sgd->model, slot->node);

            g_set_error(error, TP_MODEL_ERROR, TP_MODEL_ERROR_STATE,
                        "SGD step: parameter %d of %s '%s' has no gradient yet: run "
                        "tp_model_backward() first",
                        slot->param, tp_op_type_to_string(node->op), node->name);
            return FALSE;
        }
    }

    backend = tp_model_get_backend(sgd->model);
    for (guint s = 0; s < sgd->slots->len; s++) {
        const TpSgdSlot *slot = &g_array_index(sgd->slots, TpSgdSlot, s);
        TpTensor *w = tp_model_get_param(sgd->model, slot->node, slot->param);
        TpTensor *g = tp_model_get_param_grad(sgd->model, slot->node, slot->param);

        if (!backend->vt.sgd_update(backend->self, w->numel, w->data, g->data, slot->velocity->data,
                                    &sgd->hyper, error)) {
            const TpNode *node = tp_model_get_node(sgd->model, slot->node);

            g_prefix_error(error,
                           "SGD step: %s '%s' parameter %d: ", tp_op_type_to_string(node->op),
                           node->name, slot->param);
            return FALSE;
        }
        tp_tensor_touch(w);
    }
    return TRUE;
}
