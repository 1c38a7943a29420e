/* fuzz.h — what the fuzz harnesses share. Each harness defines
 * LLVMFuzzerTestOneInput(); libFuzzer calls it (./configure --enable-fuzzing,
 * make fuzz), and so does replay.c's main() over the harness's corpus in
 * make check, without libFuzzer. A harness never crashes, leaks or aborts on
 * any input: every refusal is a GError, dropped. */
#ifndef TP_FUZZ_H
#define TP_FUZZ_H

#include <glib.h>

#include "tp.h"

int LLVMFuzzerTestOneInput(const guint8 *data, size_t size);

/* The cpu backend, opened once for the process; warnings are fatal. */
TpBackend *fuzz_backend(void);

/* A folder of the process's own, made once (removed by the replay driver;
 * libFuzzer leaves it in $TMPDIR). */
const char *fuzz_dir(void);

/* Writes size bytes to fuzz_dir()/name (subfolders made); returns the path
 * (owned). */
char *fuzz_write(const char *name, const guint8 *data, gsize size);

/* The dataset plugin `name` opened on split with the keys given as
 * key, value, ..., NULL; NULL when it refuses (the error dropped). */
TpDataset *fuzz_open_dataset(const char *name, TpSplit split, const char *first_key, ...)
    G_GNUC_NULL_TERMINATED;

/* The floats of one sample of model's input. */
gsize fuzz_sample_numel(TpModel *model);

/* Reads the first 64 samples of dataset (the values are checked to be finite). */
void fuzz_read_all(TpDataset *dataset);

#endif /* TP_FUZZ_H */
