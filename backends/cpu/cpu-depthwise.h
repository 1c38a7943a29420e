/* cpu-depthwise.h — depthwise convolutions (groups = input channels, each
 * output channel reading one input channel) by direct kernels, as mobile
 * networks use them: 3x3 and 5x5, stride 1 or 2, any padding and dilation.
 *
 * The kernels implement the contracts of the conv2d members of
 * TpBackendVTable (tp-backend.h) for the geometries cpu_depthwise_fits()
 * accepts; cpu-kernels.c calls them instead of im2col + sgemm there (a
 * GEMM of depth kh * kw per channel, one sgemm call each, is mostly call
 * overhead). The bias gradient stays with the caller.
 */
#ifndef CPU_DEPTHWISE_H
#define CPU_DEPTHWISE_H

#include <glib.h>

#include "cpu-kernels.h"
#include "tp-backend.h"

G_BEGIN_DECLS

/* TRUE when g is depthwise: groups = c > 1 (out_c a multiple of c). */
gboolean cpu_depthwise_fits(const TpConvGeometry *g);

/* conv2d_forward; with relu, y = max(y, 0) as well. */
gboolean cpu_depthwise_forward(CpuBackend *cpu, const TpConvGeometry *g, const float *x,
                               const float *weights, const float *bias, gboolean relu, float *y,
                               GError **error);
gboolean cpu_depthwise_backward_data(CpuBackend *cpu, const TpConvGeometry *g, const float *dy,
                                     const float *weights, float *dx, GError **error);
/* dweights only; the caller computes dbias. */
gboolean cpu_depthwise_backward_filter(CpuBackend *cpu, const TpConvGeometry *g, const float *x,
                                       const float *dy, float *dweights, GError **error);

G_END_DECLS

#endif /* CPU_DEPTHWISE_H */
