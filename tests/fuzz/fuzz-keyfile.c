/* fuzz-keyfile.c — a pipeline keyfile, [sweep] included, parsed and checked
 * by tp_pipeline_new (no run). [pipeline] plugin-path is dropped first: it
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
    g_autoptr(TpPipeline) pipeline = tp_pipeline_new(keyfile, "fuzz.ini", NULL);
    return 0;
}
