/* cpu-broadcast.c — the cpu backend's binary family (binary_forward,
 * binary_backward) and reduce family (reduce_forward, reduce_backward), which
 * share one indexing scheme: an output laid out like y and up to two
 * operands read through broadcast strides (contracts: TpBroadcastGeometry,
 * TpReduceGeometry in tp-backend.h).
 *
 * A geometry is first collapsed: axes of extent 1 in y are dropped and
 * neighbouring axes where every operand is either full or broadcast alike
 * are merged, so y [n, c, h, w] against b [1, c, 1, 1] becomes three axes
 * [n, c, h * w] with b's strides (0, 1, 0). Then
 *
 *   - a result laid out like y (forward, the gradient of an operand that was
 *     not broadcast, reduce backward) runs row by row over the last axis,
 *     each row a loop with operand strides 0 or 1 that the compiler
 *     vectorizes, split over the pool by rows;
 *   - a result that sums over broadcast axes (the gradient of a broadcast
 *     operand, reduce forward) is a gather: each of its elements, split over
 *     the pool, sums its terms in double over the axes it was broadcast
 *     along, so no two threads write one element and the sums do not
 *     depend on the thread count.
 */
#include "config.h"

#include "cpu-kernels.h"

/* How one result element comes from p (laid out like y), a and b (through
 * their strides) and alpha. */
typedef enum {
    TERM_ADD,       /* a + b */
    TERM_SUB,       /* a - b */
    TERM_MUL,       /* a * b */
    TERM_DIV,       /* a / b */
    TERM_P,         /* alpha * p */
    TERM_A,         /* alpha * a */
    TERM_P_MUL_A,   /* p * a */
    TERM_P_MUL_B,   /* p * b */
    TERM_P_DIV_B,   /* p / b */
    TERM_P_DIV_DB,  /* -p * a / (b * b): the divisor's gradient */
} Term;

/* A collapsed geometry: k axes of y with y's strides and each operand's
 * (0 where it is broadcast). */
typedef struct {
    int k;
    gsize extent[TP_KERNEL_MAX_DIMS];
    gsize ys[TP_KERNEL_MAX_DIMS], as[TP_KERNEL_MAX_DIMS], bs[TP_KERNEL_MAX_DIMS];
    gsize numel;
} Collapsed;

/* Collapses y against operands of shapes a and b (NULL: absent, read as
 * full) over ndim axes. */
static void
collapse(int ndim, const int *y, const int *a, const int *b, Collapsed *c)
{
    int ext[TP_KERNEL_MAX_DIMS];
    gboolean afull[TP_KERNEL_MAX_DIMS], bfull[TP_KERNEL_MAX_DIMS];
    int k = 0;

    for (int d = 0; d < ndim; d++) {
        gboolean fa = a == NULL || a[d] != 1, fb = b == NULL || b[d] != 1;
        if (y[d] == 1)
            continue;
        if (k > 0 && afull[k - 1] == fa && bfull[k - 1] == fb) {
            ext[k - 1] *= y[d];
            continue;
        }
        ext[k] = y[d];
        afull[k] = fa;
        bfull[k] = fb;
        k++;
    }
    if (k == 0) {
        ext[0] = 1;
        afull[0] = bfull[0] = TRUE;
        k = 1;
    }
    c->k = k;
    c->numel = 1;
    {
        gsize ys = 1, as = 1, bs = 1;
        for (int d = k - 1; d >= 0; d--) {
            c->extent[d] = (gsize)ext[d];
            c->ys[d] = ys;
            c->as[d] = afull[d] ? as : 0;
            c->bs[d] = bfull[d] ? bs : 0;
            ys *= (gsize)ext[d];
            if (afull[d])
                as *= (gsize)ext[d];
            if (bfull[d])
                bs *= (gsize)ext[d];
        }
        c->numel = ys;
    }
}

typedef struct {
    const Collapsed *c;
    Term term;
    float alpha;
    const float *p, *a, *b;
    float *out;
    /* gather: which operand the result has the shape of (its strides) */
    const gsize *os;
    gsize per_element; /* terms summed per result element */
} Job;

static inline __attribute__((always_inline)) void
row(Term term, gsize n, float alpha, const float *p, const float *a, gsize sa, const float *b,
    gsize sb, float *out)
{
#define LOOP(expr)                                                                                 \
    for (gsize i = 0; i < n; i++) {                                                                \
        float pv = p != NULL ? p[i] : 0.0f, av = a != NULL ? a[i * sa] : 0.0f;                     \
        float bv = b != NULL ? b[i * sb] : 0.0f;                                                   \
        (void)pv, (void)av, (void)bv;                                                              \
        out[i] = (expr);                                                                           \
    }                                                                                              \
    break

    switch (term) {
    case TERM_ADD:
        LOOP(av + bv);
    case TERM_SUB:
        LOOP(av - bv);
    case TERM_MUL:
        LOOP(av * bv);
    case TERM_DIV:
        LOOP(av / bv);
    case TERM_P:
        LOOP(alpha * pv);
    case TERM_A:
        LOOP(alpha * av);
    case TERM_P_MUL_A:
        LOOP(pv * av);
    case TERM_P_MUL_B:
        LOOP(pv * bv);
    case TERM_P_DIV_B:
        LOOP(pv / bv);
    case TERM_P_DIV_DB:
        LOOP(-pv * av / (bv * bv));
    }
#undef LOOP
}

/* Rows [begin, end) of the last axis, for a result laid out like y. */
static void
rows_range(gpointer data, gsize begin, gsize end)
{
    const Job *job = data;
    const Collapsed *c = job->c;
    const gsize inner = c->extent[c->k - 1];
    const gsize sa = c->as[c->k - 1], sb = c->bs[c->k - 1];

    for (gsize r = begin; r < end; r++) {
        gsize rest = r, ao = 0, bo = 0;
        const float *p = job->p != NULL ? job->p + r * inner : NULL;
        const float *a, *b;
        float *out = job->out + r * inner;

        for (int d = c->k - 2; d >= 0; d--) {
            gsize i = rest % c->extent[d];
            rest /= c->extent[d];
            ao += i * c->as[d];
            bo += i * c->bs[d];
        }
        a = job->a != NULL ? job->a + ao : NULL;
        b = job->b != NULL ? job->b + bo : NULL;
        /* constant strides, so that each call is its own vectorized loop */
        if (sa == 1 && sb == 1)
            row(job->term, inner, job->alpha, p, a, 1, b, 1, out);
        else if (sa == 1)
            row(job->term, inner, job->alpha, p, a, 1, b, 0, out);
        else if (sb == 1)
            row(job->term, inner, job->alpha, p, a, 0, b, 1, out);
        else
            row(job->term, inner, job->alpha, p, a, 0, b, 0, out);
    }
}

static void
run_rows(CpuBackend *cpu, Job *job)
{
    gsize inner = job->c->extent[job->c->k - 1];

    cpu_pool_run(cpu->pool, job->c->numel / inner, cpu_grain(inner), rows_range, job);
}

static inline double
term_value(Term term, float alpha, float pv, float av, float bv)
{
    switch (term) {
    case TERM_ADD:
        return (double)av + bv;
    case TERM_SUB:
        return (double)av - bv;
    case TERM_MUL:
        return (double)av * bv;
    case TERM_DIV:
        return (double)av / bv;
    case TERM_P:
        return (double)alpha * pv;
    case TERM_A:
        return (double)alpha * av;
    case TERM_P_MUL_A:
        return (double)pv * av;
    case TERM_P_MUL_B:
        return (double)pv * bv;
    case TERM_P_DIV_B:
        return (double)pv / bv;
    case TERM_P_DIV_DB:
        return -(double)pv * av / ((double)bv * bv);
    }
    return 0.0;
}

/* Result elements [begin, end) of a gather: element j of the operand whose
 * strides are os sums the terms of every y index that reads it. */
static void
gather_range(gpointer data, gsize begin, gsize end)
{
    const Job *job = data;
    const Collapsed *c = job->c;
    const int k = c->k;
    gsize oext[TP_KERNEL_MAX_DIMS]; /* the result's extents: 1 on summed axes */
    int summed[TP_KERNEL_MAX_DIMS], n_summed = 0;

    for (int d = 0; d < k; d++) {
        oext[d] = job->os[d] != 0 ? c->extent[d] : 1;
        if (job->os[d] == 0 && c->extent[d] > 1)
            summed[n_summed++] = d;
    }
    for (gsize j = begin; j < end; j++) {
        gsize rest = j, y0 = 0, a0 = 0, b0 = 0;
        gsize idx[TP_KERNEL_MAX_DIMS] = {0};
        double sum = 0.0;

        for (int d = k - 1; d >= 0; d--) {
            gsize i = rest % oext[d];
            rest /= oext[d];
            y0 += i * c->ys[d];
            a0 += i * c->as[d];
            b0 += i * c->bs[d];
        }
        /* an odometer over the summed axes; the last of them is the loop */
        for (;;) {
            gsize yo = y0, ao = a0, bo = b0;
            int last = n_summed > 0 ? summed[n_summed - 1] : -1;
            gsize n = last >= 0 ? c->extent[last] : 1;
            gsize sy = last >= 0 ? c->ys[last] : 0, sa = last >= 0 ? c->as[last] : 0;
            gsize sb = last >= 0 ? c->bs[last] : 0;
            int s;

            for (s = 0; s + 1 < n_summed; s++) {
                yo += idx[s] * c->ys[summed[s]];
                ao += idx[s] * c->as[summed[s]];
                bo += idx[s] * c->bs[summed[s]];
            }
            for (gsize i = 0; i < n; i++) {
                float pv = job->p != NULL ? job->p[yo + i * sy] : 0.0f;
                float av = job->a != NULL ? job->a[ao + i * sa] : 0.0f;
                float bv = job->b != NULL ? job->b[bo + i * sb] : 0.0f;
                sum += term_value(job->term, job->alpha, pv, av, bv);
            }
            for (s = n_summed - 2; s >= 0; s--) {
                if (++idx[s] < c->extent[summed[s]])
                    break;
                idx[s] = 0;
            }
            if (s < 0)
                break;
        }
        job->out[j] = (float)sum;
    }
}

static void
run_gather(CpuBackend *cpu, Job *job, gsize n_out)
{
    job->per_element = job->c->numel / MAX(n_out, 1);
    cpu_pool_run(cpu->pool, n_out, cpu_grain(job->per_element), gather_range, job);
}

/* TRUE when an operand with strides os is broadcast along some axis. */
static gboolean
is_broadcast(const Collapsed *c, const gsize *os)
{
    for (int d = 0; d < c->k; d++)
        if (os[d] == 0 && c->extent[d] > 1)
            return TRUE;
    return FALSE;
}

static gsize
numel_of(int ndim, const int *shape)
{
    gsize n = 1;

    for (int d = 0; d < ndim; d++)
        n *= (gsize)shape[d];
    return n;
}

/* ------------------------------------------------------------ binary */

gboolean
cpu_binary_forward(gpointer self, TpBinaryOp op, const TpBroadcastGeometry *g, const float *a,
                   const float *b, float *y, GError **error)
{
    static const Term terms[] = {
        [TP_BINARY_ADD] = TERM_ADD,
        [TP_BINARY_SUB] = TERM_SUB,
        [TP_BINARY_MUL] = TERM_MUL,
        [TP_BINARY_DIV] = TERM_DIV,
    };
    Collapsed c;
    Job job = {.c = &c, .term = terms[op], .a = a, .b = b, .out = y};

    collapse(g->ndim, g->y, g->a, g->b, &c);
    run_rows(self, &job);
    return TRUE;
}

/* One operand's gradient: out (its shape, strides os) from the term. */
static void
operand_gradient(CpuBackend *cpu, const Collapsed *c, const gsize *os, gsize n_out, Term term,
                 float alpha, const float *dy, const float *a, const float *b, float *out)
{
    Job job = {.c = c, .term = term, .alpha = alpha, .p = dy, .a = a, .b = b, .out = out,
               .os = os};

    if (is_broadcast(c, os))
        run_gather(cpu, &job, n_out);
    else
        run_rows(cpu, &job);
}

gboolean
cpu_binary_backward(gpointer self, TpBinaryOp op, const TpBroadcastGeometry *g, const float *a,
                    const float *b, const float *dy, float *da, float *db, GError **error)
{
    Collapsed c;

    collapse(g->ndim, g->y, g->a, g->b, &c);
    if (da != NULL) {
        Term term = op == TP_BINARY_MUL ? TERM_P_MUL_B : op == TP_BINARY_DIV ? TERM_P_DIV_B : TERM_P;
        operand_gradient(self, &c, c.as, numel_of(g->ndim, g->a), term, 1.0f, dy, NULL,
                         term == TERM_P ? NULL : b, da);
    }
    if (db != NULL) {
        Term term = op == TP_BINARY_MUL   ? TERM_P_MUL_A
                    : op == TP_BINARY_DIV ? TERM_P_DIV_DB
                                          : TERM_P;
        operand_gradient(self, &c, c.bs, numel_of(g->ndim, g->b), term,
                         op == TP_BINARY_SUB ? -1.0f : 1.0f, dy, term == TERM_P ? NULL : a,
                         op == TP_BINARY_DIV ? b : NULL, db);
    }
    return TRUE;
}

/* ------------------------------------------------------------ reduce */

/* The number of x elements each y element sums. */
static gsize
reduce_count(const TpReduceGeometry *g)
{
    return numel_of(g->ndim, g->x) / MAX(numel_of(g->ndim, g->y), 1);
}

gboolean
cpu_reduce_forward(gpointer self, TpReduceOp op, const TpReduceGeometry *g, const float *x,
                   float *y, GError **error)
{
    Collapsed c;
    gsize count = reduce_count(g);
    float alpha = op == TP_REDUCE_MEAN ? (float)(1.0 / (double)MAX(count, 1)) : 1.0f;

    /* x is the "y" of the collapsed geometry and the result has the shape of
     * operand a */
    collapse(g->ndim, g->x, g->y, NULL, &c);
    operand_gradient(self, &c, c.as, numel_of(g->ndim, g->y), TERM_P, alpha, x, NULL, NULL, y);
    return TRUE;
}

gboolean
cpu_reduce_backward(gpointer self, TpReduceOp op, const TpReduceGeometry *g, const float *dy,
                    float *dx, GError **error)
{
    Collapsed c;
    gsize count = reduce_count(g);
    float alpha = op == TP_REDUCE_MEAN ? (float)(1.0 / (double)MAX(count, 1)) : 1.0f;
    Job job = {.c = &c, .term = TERM_A, .alpha = alpha, .a = dy, .out = dx};

    collapse(g->ndim, g->x, g->y, NULL, &c);
    run_rows(self, &job);
    return TRUE;
}
