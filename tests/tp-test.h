/* tp-test.h — what every test program shares: setup with fatal warnings,
 * backends from the build tree's plugins, seeded random data and
 * tolerance comparisons. */
#ifndef TP_TEST_H
#define TP_TEST_H

#include <check.h>
#include <glib.h>

#include "tp.h"

/* Makes warnings and criticals fatal. Call first in main(). */
void tp_test_init(void);

/* Runs a suite with Check's defaults and returns the exit status for main(). */
int tp_test_run(Suite *suite);

/* While on, warnings in the "taskprune" log domain are not fatal but
 * collected; tp_test_take_warnings() returns them joined by '\n' (owned) and
 * clears the list. */
void tp_test_capture_warnings(gboolean on);
char *tp_test_take_warnings(void);

/* The process-wide registry (the build tree's plugins through
 * TASKPRUNE_PLUGIN_PATH, set by `make check`). */
TpRegistry *tp_test_registry(void);

/* Names of every backend plugin found that can run here (a new array of
 * borrowed strings). A backend whose open() fails with
 * TP_BACKEND_ERROR_NO_DEVICE (cuda on a machine without a GPU) is left out,
 * and the first time a process sees that it prints "skipped: backend 'NAME':
 * MESSAGE" on stderr, so a test log shows what did not run.
 * Any other open failure fails the test. */
GPtrArray *tp_test_backend_names(void);

/* How many backends tp_test_backend_names() gives, at least 1 (so that a
 * build without any fails in tp_test_backend_name() instead of running
 * nothing). Unlike the others here it may be called outside a test, to
 * size loop tests. */
int tp_test_count_backends(void);

/* Whether backend `name` opens here: FALSE (after printing the skip line
 * above) when its open() fails with TP_BACKEND_ERROR_NO_DEVICE. Any other
 * failure fails the test. The answer is probed once per process. */
gboolean tp_test_backend_available(const char *name);

/* The name of backend i (borrowed), for loop tests over every backend. */
const char *tp_test_backend_name(int i);

/* Opens a backend with default parameters; fails the test if it cannot. */
TpBackend *tp_test_backend_open(const char *name);

/* A new empty temporary folder (owned path), and its removal with
 * everything in it. */
char *tp_test_make_temp_dir(void);
void tp_test_remove_dir(const char *dir);

/* A temporary folder removed with its contents when a g_autoptr(TpTestDir)
 * goes out of scope: g_autoptr(TpTestDir) dir = tp_test_make_temp_dir(); */
typedef char TpTestDir;
void tp_test_dir_free(TpTestDir *dir);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpTestDir, tp_test_dir_free)

/* Appends an op reading value in0 (and in1, for Add) to model, or fails
 * the test with the error. Returns the op's output value. */
int tp_test_add(TpModel *model, TpOpType op, const char *name, int in0, int in1,
                const TpOpAttrs *attrs);

/* Draws every parameter of model from seed: weights ±sqrt(3 / fan_in),
 * biases ±0.5, BatchNorm scale [0.5, 1.5), bias and running mean ±0.5,
 * running var [0.5, 2) — so a BatchNorm maps 0 to something other than 0. */
void tp_test_randomize_model(TpModel *model, guint32 seed);

/* n floats uniform in [lo, hi), from a generator seeded with seed. */
void tp_test_fill_uniform(float *x, gsize n, float lo, float hi, guint32 seed);

/* Fails the test at the first i where |got - want| > atol + rtol * |want|,
 * naming what, i and both values. */
void tp_test_assert_close(const float *got, const float *want, gsize n, double atol, double rtol,
                          const char *what);

#endif /* TP_TEST_H */
