/* tp-zoo.h — built-in architectures to train a base model from scratch:
 * lenet5, vgg11, vgg16 (BatchNorm, a width multiplier), resnet18 and
 * resnet20 (CIFAR-style stems), for 28×28×1 and 32×32×3 inputs (any size
 * their pooling allows), initialized as PyTorch initializes them. */
#ifndef TP_ZOO_H
#define TP_ZOO_H

#include <glib.h>

#include "tp-model.h"

G_BEGIN_DECLS

#define TP_ZOO_ERROR (tp_zoo_error_quark())
GQuark tp_zoo_error_quark(void);

typedef enum {
    TP_ZOO_ERROR_UNKNOWN_ARCH, /* no architecture by that name; the message lists them */
    TP_ZOO_ERROR_INVALID,      /* an input size, class count or width it cannot build */
} TpZooError;

/* Valid values: channels, height and width 1 to 4096 (lenet5: height and
 * width at least 12); classes 1 to 100000; width_multiplier in (0, 16]. */
typedef struct {
    int channels, height, width; /* the input, per sample */
    int classes;                 /* outputs */
    double width_multiplier;     /* scales every hidden layer's channels/neurons
                                    (round(c · w), at least 1); 0 means 1 */
    guint64 seed;                /* initialization draws: same seed, same bytes */
} TpZooConfig;

/* The architecture names, NULL-terminated (static). */
const char *const *tp_zoo_get_archs(void);

/* One line about arch (static), or NULL if there is no such arch. */
const char *tp_zoo_describe(const char *arch);

/* A new model of architecture arch on backend, initialized from config->seed
 * (owned by the caller; free it before the backend). The last op is the Gemm
 * that writes the logits [classes]. NULL with error in TP_ZOO_ERROR for an
 * unknown arch or a config outside the values above; a failure to allocate
 * the weights keeps its backend's domain. */
TpModel *tp_zoo_build(TpBackend *backend, const char *arch, const TpZooConfig *config,
                      GError **error);

G_END_DECLS

#endif /* TP_ZOO_H */
