/* fuzz-keyfile.c — a pipeline keyfile parsed and checked by tp_pipeline_new,
 * or, when it has a [sweep] group, by tp_sweep_check (the sweep's keys and
 * every run's); nothing runs. [pipeline] plugin-path is dropped first: it
 * would load whatever shared objects the input names. */
#include "config.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
    g_autoptr(GKeyFile) keyfile = g_key_file_new();

    fuzz_backend(); /* warnings fatal */
    if (!g_key_file_load_from_data(keyfile, (const char *)data, size, G_KEY_FILE_NONE, NULL))
        return 0;
    g_key_file_remove_key(keyfile, "pipeline", "plugin-path", NULL);
    if (g_key_file_has_group(keyfile, "sweep")) {
        tp_sweep_check(keyfile, "fuzz.ini", NULL);
        return 0;
    }
    g_autoptr(TpPipeline) pipeline = tp_pipeline_new(keyfile, "fuzz.ini", NULL);
    return 0;
}
