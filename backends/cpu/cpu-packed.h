/* cpu-packed.h — a convolution's weights packed for products with few
 * columns, and that product. At batch 1 a deep layer's GEMM is
 * W[out_c, K] · col[K, n] with n a handful of pixels (9 on a 3x3 map), where
 * OpenBLAS runs at half its peak (its small-matrix kernels) or repacks all
 * of W on every call. Packed once (the prepared form, tp-backend.h), W is
 * read in the order the multiply needs it, once per call.
 *
 * Layout: panels of PANEL rows, [ceil(rows / PANEL), depth, PANEL]: for each
 * panel and k, the PANEL weights W[panel rows, k] side by side; the rows past
 * the last one are zeros.
 */
#ifndef CPU_PACKED_H
#define CPU_PACKED_H

#include <glib.h>

#include "cpu-parallel.h"

G_BEGIN_DECLS

/* Up to this many columns the packed product beats sgemm (measured: 1.3 to
 * 1.8x on VGG-11's layers at batch 1, slower from about 3000 columns). */
#define CPU_PACKED_MAX_COLUMNS 256

/* Floats of the packed form of a [rows, depth] matrix. */
gsize cpu_packed_size(int rows, int depth);

/* packed = w [rows, depth] in the layout above. */
void cpu_packed_pack(int rows, int depth, const float *w, float *packed);

/* c[rows, columns] (leading dimension ldc) = W · b, W packed [rows, depth]
 * and b [depth, columns] (leading dimension ldb), split over the pool. */
void cpu_packed_gemm(CpuPool *pool, int rows, int columns, int depth, const float *packed,
                     const float *b, gsize ldb, float *c, gsize ldc);

G_END_DECLS

#endif /* CPU_PACKED_H */
