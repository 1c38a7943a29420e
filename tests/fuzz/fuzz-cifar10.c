/* fuzz-cifar10.c — the cifar10 dataset plugin on its test split. Input: two
 * bytes of the length of batches.meta.txt (big-endian), that file, then
 * test_batch.bin. */
#include "config.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
    if (size < 2)
        return 0;
    gsize meta_len = MIN((gsize)data[0] << 8 | data[1], size - 2);
    g_autofree char *meta = fuzz_write("cifar/batches.meta.txt", data + 2, meta_len);
    g_autofree char *batch = fuzz_write("cifar/test_batch.bin", data + 2 + meta_len,
                                        size - 2 - meta_len);
    g_autofree char *folder = g_build_filename(fuzz_dir(), "cifar", NULL);
    g_autoptr(TpDataset) dataset =
        fuzz_open_dataset("cifar10", TP_SPLIT_TEST, "path", folder, NULL);

    if (dataset != NULL)
        fuzz_read_all(dataset);
    return 0;
}
