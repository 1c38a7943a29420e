/* sgemm.c — OpenBLAS's single-precision GEMM rate on this machine, the
 * yardstick bench/run.py holds convolution layers to.
 *     sgemm M N K THREADS RUNS
 * Prints one JSON object: every timed C = A B (row-major, after one untimed
 * call) in GFLOP/s. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int
main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: sgemm M N K THREADS RUNS\n");
        return 2;
    }
    int m = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]), runs = atoi(argv[5]);
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
    float *c = malloc(sizeof(float) * m * n);

    if (a == NULL || b == NULL || c == NULL || runs < 1) {
        fprintf(stderr, "sgemm: out of memory or RUNS < 1\n");
        return 1;
    }
    openblas_set_num_threads(atoi(argv[4]));
    for (long i = 0; i < (long)m * k; i++)
        a[i] = (float)(i % 7) - 3;
    for (long i = 0; i < (long)k * n; i++)
        b[i] = (float)(i % 5) - 2;
    printf("{\"gflops\": [");
    for (int r = -1; r < runs; r++) {
        double start = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
        double s = now() - start;
        if (r >= 0)
            printf("%s%.2f", r > 0 ? ", " : "", 2.0 * m * n * k / s / 1e9);
    }
    printf("]}\n");
    free(a);
    free(b);
    free(c);
    return 0;
}
