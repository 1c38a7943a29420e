/* fuzz-onnx-export.c — the export oracle: whatever ONNX import accepts,
 * export writes a model that imports again and computes the same outputs,
 * bit for bit, on the same input. A difference aborts. */
#include "config.h"

#include <string.h>

#include "fuzz.h"

/* Models whose sample is larger are only exported and imported again. */
#define FUZZ_MAX_SAMPLE (1 << 16)

/* The output of model on x (one sample), or NULL when the forward fails. */
static float *
output_of(TpModel *model, const float *x, gsize *out_n)
{
    g_autoptr(GError) error = NULL;
    TpTensor *y;

    if (!tp_model_forward(model, x, 1, TP_MODE_INFER, &error))
        return NULL;
    y = tp_model_get_value(model, tp_model_get_output(model));
    *out_n = y->numel;
    return tp_tensor_dup_host(y, NULL);
}

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
    g_autoptr(TpModel) model =
        tp_onnx_load_data(fuzz_backend(), data, size, "fuzz.onnx", NULL, NULL);
    g_autofree char *path = g_build_filename(fuzz_dir(), "export.onnx", NULL);
    g_autoptr(GError) error = NULL;
    gsize n, n1 = 0, n2 = 0;

    if (model == NULL)
        return 0;
    if (!tp_onnx_save(model, path, &error))
        g_error("export of an imported model failed: %s", error->message);
    g_autoptr(TpModel) back = tp_onnx_load(fuzz_backend(), path, &error);
    if (back == NULL)
        g_error("the export does not import again: %s", error->message);
    if (tp_model_get_n_nodes(back) != tp_model_get_n_nodes(model))
        g_error("the export has %u nodes, the model %u", tp_model_get_n_nodes(back),
                tp_model_get_n_nodes(model));
    n = fuzz_sample_numel(model);
    if (n > FUZZ_MAX_SAMPLE)
        return 0;
    g_autofree float *x = g_new(float, n);
    for (gsize i = 0; i < n; i++)
        x[i] = (float)((i * 37 % 101) / 50.0 - 1.0);
    g_autofree float *y1 = output_of(model, x, &n1);
    g_autofree float *y2 = output_of(back, x, &n2);
    if ((y1 == NULL) != (y2 == NULL) || n1 != n2 ||
        (y1 != NULL && memcmp(y1, y2, n1 * sizeof(float)) != 0))
        g_error("the export computes other outputs than the model it came from");
    return 0;
}
