/* fuzz-imagefolder.c — the imagefolder dataset plugin, decoding through
 * gdk-pixbuf. Input: one byte choosing the name (bit 0: .jpg, else .png) and
 * the channels (bit 1: 3, else 1), then the image, written as the one image
 * of class a and of class b. */
#include "config.h"

#include <glib/gstdio.h>

#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *ext = data[0] & 1 ? "jpg" : "png";
    g_autofree char *a_name = g_strdup_printf("images/a/x.%s", ext);
    g_autofree char *b_name = g_strdup_printf("images/b/x.%s", ext);
    g_autofree char *a = fuzz_write(a_name, data + 1, size - 1);
    g_autofree char *b = fuzz_write(b_name, data + 1, size - 1);
    g_autofree char *folder = g_build_filename(fuzz_dir(), "images", NULL);
    g_autoptr(TpDataset) dataset =
        fuzz_open_dataset("imagefolder", TP_SPLIT_TRAIN, "path", folder, "channels",
                          data[0] & 2 ? "3" : "1", "height", "8", "width", "8", NULL);

    if (dataset != NULL)
        fuzz_read_all(dataset);
    g_unlink(a); /* the other extension must not linger for the next input */
    g_unlink(b);
    return 0;
}
