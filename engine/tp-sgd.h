/* tp-sgd.h — stochastic gradient descent with momentum, Nesterov and weight
 * decay over every trainable parameter of a model (PyTorch's SGD semantics,
 * dampening 0; the update is in tp-backend.h, TpSgdHyper). */
#ifndef TP_SGD_H
#define TP_SGD_H

#include <glib.h>

#include "tp-backend.h"
#include "tp-model.h"

G_BEGIN_DECLS

typedef struct _TpSgd TpSgd;

/* An optimizer for model's trainable parameters with zeroed velocities. The
 * model must outlive it and keep its ops (pruning makes a new optimizer). */
TpSgd *tp_sgd_new(TpModel *model, const TpSgdHyper *hyper, GError **error);
void tp_sgd_free(TpSgd *sgd);

/* The optimizer's state: one velocity per trainable parameter, in node and
 * parameter order (borrowed). Checkpoints save and restore them. */
guint tp_sgd_get_n_velocities(const TpSgd *sgd);
TpTensor *tp_sgd_get_velocity(TpSgd *sgd, guint i);

/* Learning-rate schedules change it between steps. */
void tp_sgd_set_lr(TpSgd *sgd, float lr);

/* Updates every trainable parameter from its gradient of the last backward.
 * Fails if a parameter has no gradient yet. */
gboolean tp_sgd_step(TpSgd *sgd, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpSgd, tp_sgd_free)

G_END_DECLS

#endif /* TP_SGD_H */
