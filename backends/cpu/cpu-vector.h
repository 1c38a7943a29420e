/* cpu-vector.h — a vector of LANES floats for kernels the compiler turns
 * into vector instructions (GCC vector extensions), and VECTOR_CLONES, which
 * compiles a function for AVX-512 and AVX2 as well, chosen when the plugin is
 * loaded by what the processor has. Used by cpu-winograd.c and cpu-packed.c.
 */
#ifndef CPU_VECTOR_H
#define CPU_VECTOR_H

#define LANES 16

/* LANES floats; arithmetic is elementwise, and a float operand is broadcast. */
typedef float Lanes __attribute__((vector_size(LANES * sizeof(float))));

#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef VECTOR_CLONES
#define VECTOR_CLONES
#endif

#endif /* CPU_VECTOR_H */
