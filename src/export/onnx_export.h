/* src/export/onnx_export.h: writes an sdc_graph as a standard ONNX model.
 *
 * The graph the CPU backend runs is the graph that gets exported: each coarse op becomes a short
 * sequence of standard ONNX ops (IR version 8, opset 17, static shapes, float32), e.g. LINEAR ->
 * MatMul (+Add) against a transposed weight, GROUP_NORM -> Reshape/InstanceNormalization/Reshape/
 * Mul/Add (GroupNormalization needs opset 18), GEGLU -> Split/Erf-based GELU, UPSAMPLE -> Resize.
 * Only the ancestors of the output are written. Weights become float32 initializers (F16/BF16
 * converted); with external data every initializer of 1 KiB or more goes to PATH.data (the ONNX
 * external_data fields location/offset/length, location relative to the model's folder).
 *
 * Files are written as PATH.tmp (and PATH.data.tmp) and renamed into place at the end; on any
 * error the temporaries are removed and nothing is left at PATH.
 */
#ifndef SDC_EXPORT_ONNX_EXPORT_H
#define SDC_EXPORT_ONNX_EXPORT_H

#include "graph/graph.h"

/* One graph input or output: a value id and its ONNX name. An int32 input (token ids) may feed
 * only EMBEDDING ops, whose Gather takes it directly; everything else is float32. */
typedef struct sdc_onnx_port {
    int value;
    const char *name;
    int int32;
} sdc_onnx_port;

enum {
    SDC_ONNX_EXTERNAL_AUTO = 0,   /* external data when the initializers pass SDC_ONNX_INLINE_MAX */
    SDC_ONNX_EXTERNAL_ALWAYS = 1, /* always (tests, or to keep the .onnx file small) */
};
/* Protobuf messages are limited to 2 GiB; this leaves room for the graph itself. */
#define SDC_ONNX_INLINE_MAX ((int64_t)1900 * 1024 * 1024)

/* Writes `g` (with n_in inputs and one output) to `path`. external: SDC_ONNX_EXTERNAL_*.
 * *used_external (may be NULL) tells whether PATH.data was written. */
sdc_status sdc_onnx_export(const sdc_graph *g, const sdc_onnx_port *inputs, int n_in,
                           sdc_onnx_port output, const char *path, int external, int *used_external,
                           sdc_error *err);

#endif
