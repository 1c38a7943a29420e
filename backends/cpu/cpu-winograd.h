/* cpu-winograd.h — 3x3 stride-1 convolutions by Winograd's minimal
 * filtering, F(4x4, 3x3) (Lavin and Gray 2016, "Fast algorithms for
 * convolutional neural networks"): each 4x4 output tile costs 36
 * multiplications per channel pair instead of 144.
 *
 * The kernels implement the contracts of the conv2d members of
 * TpBackendVTable (tp-backend.h) for the geometries cpu_winograd_suits()
 * accepts; cpu-kernels.c calls them instead of im2col + sgemm there. The
 * bias gradient stays with the caller.
 */
#ifndef CPU_WINOGRAD_H
#define CPU_WINOGRAD_H

#include <glib.h>

#include "cpu-kernels.h"
#include "tp-backend.h"

G_BEGIN_DECLS

/* TRUE when g is a 3x3 convolution with stride 1, dilation 1 and one group
 * (any padding) with enough channels in and out that the transforms pay. */
gboolean cpu_winograd_fits(const TpConvGeometry *g);

/* TRUE when g fits and has enough output tiles (g->n included) that the
 * transforms pay: the forward pass and both backward passes take the same
 * decision. */
gboolean cpu_winograd_suits(const TpConvGeometry *g);

/* conv2d_forward from weights, or from the filters transformed once
 * (prepared, then weights is NULL); with relu, y = max(y, 0) as well. */
gboolean cpu_winograd_forward(CpuBackend *cpu, const TpConvGeometry *g, const float *x,
                              const float *weights, const float *prepared, const float *bias,
                              gboolean relu, float *y, GError **error);
gboolean cpu_winograd_backward_data(CpuBackend *cpu, const TpConvGeometry *g, const float *dy,
                                    const float *weights, float *dx, GError **error);
/* The filters transformed once (U) for repeated forwards: its size in
 * floats, and U from weights. For a g that cpu_winograd_fits(). */
gsize cpu_winograd_prepared_size(const TpConvGeometry *g);
void cpu_winograd_prepare(CpuBackend *cpu, const TpConvGeometry *g, const float *weights,
                          float *prepared);
/* dweights only; the caller computes dbias. */
gboolean cpu_winograd_backward_filter(CpuBackend *cpu, const TpConvGeometry *g, const float *x,
                                      const float *dy, float *dweights, GError **error);

G_END_DECLS

#endif /* CPU_WINOGRAD_H */
