/* fuzz-idx.c — the idx dataset plugin. Input: one flags byte (bit 0: the
 * files are named .gz, so they are gunzipped), two bytes of the images
 * file's length (big-endian), the images file, then the labels file. */
#include "config.h"

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
    if (size < 3)
        return 0;
    const gboolean gz = data[0] & 1;
    gsize images_len = MIN((gsize)data[1] << 8 | data[2], size - 3);
    const char *images = gz ? "images.gz" : "images", *labels = gz ? "labels.gz" : "labels";
    g_autofree char *a = fuzz_write(images, data + 3, images_len);
    g_autofree char *b = fuzz_write(labels, data + 3 + images_len, size - 3 - images_len);
    g_autoptr(TpDataset) dataset =
        fuzz_open_dataset("idx", TP_SPLIT_TRAIN, "path", fuzz_dir(), "train-images", images,
                          "train-labels", labels, "max-bytes", "16777216", NULL);

    if (dataset != NULL)
        fuzz_read_all(dataset);
    return 0;
}
