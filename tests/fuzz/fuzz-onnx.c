/* fuzz-onnx.c — ONNX import from bytes (tp_onnx_load_data); a model that
 * loads runs one forward pass on a sample, when one sample is small. */
#include "config.h"

#include "fuzz.h"

/* Inputs of up to this many floats per sample are run. */
#define FUZZ_MAX_SAMPLE (1 << 16)

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
    g_autoptr(TpModel) model =
        tp_onnx_load_data(fuzz_backend(), data, size, "fuzz.onnx", NULL, NULL);

    if (model != NULL) {
        gsize n = fuzz_sample_numel(model);
        if (n <= FUZZ_MAX_SAMPLE) {
            g_autofree float *x = g_new0(float, n);
            tp_model_forward(model, x, 1, TP_MODE_INFER, NULL);
        }
    }
    return 0;
}
