/* tp-cli-input.h — what the commands read as model input and write as raw
 * tensors: image files (PNG, JPEG, ... through gdk-pixbuf, resized to the
 * model's input and normalized as it expects) and NumPy .npy files (format
 * 1.0 to 3.0, little-endian float32, C order). */
#ifndef TP_CLI_INPUT_H
#define TP_CLI_INPUT_H

#include <glib.h>

#include "tp-model.h"

/* The most dimensions a .npy file read or written here has. */
#define TP_CLI_NPY_MAX_DIMS 8

/* Reads a .npy file: returns its float32 values (owned; *out_n of them) and
 * writes its shape to out_dims[0..*out_ndim), or returns NULL with an error
 * naming path and what is wrong (another dtype, Fortran order, a header or
 * size that does not add up). */
float *tp_cli_read_npy(const char *path, int *out_ndim, int out_dims[TP_CLI_NPY_MAX_DIMS],
                       gsize *out_n, GError **error);

/* Writes data (the product of dims[0..ndim) floats) as a .npy file (format
 * 1.0, float32) at path, through a temporary file and a rename
 * (g_file_set_contents). */
gboolean tp_cli_write_npy(const char *path, const float *data, int ndim, const int *dims,
                          GError **error);

#ifdef TP_HAVE_GDK_PIXBUF
/* Reads the image file at path into out ([C, H, W] of the model's input, C
 * 1 or 3): decoded, turned as its EXIF orientation says, resized to H × W
 * (bilinear), grey as ITU-R 601 luma when C is 1, pixels in 0..1, then
 * normalized as the model's normalization says (none: as they are). */
gboolean tp_cli_read_image(TpModel *model, const char *path, float *out, GError **error);
#endif

#endif /* TP_CLI_INPUT_H */
