/* src/export/onnx_export.h: writes an sdc_graph as a standard ONNX model.
 *
 * The graph the CPU backend runs is the graph that gets exported: each coarse op becomes a short
 * sequence of standard ONNX ops (IR version 8, opset 17, static shapes, float32), e.g. LINEAR ->
 * MatMul (+Add) against a transposed weight, GROUP_NORM -> Reshape/InstanceNormalization/Reshape/
 * Mul/Add (GroupNormalization needs opset 18), GEGLU -> Split/Erf-based GELU, UPSAMPLE -> Resize.
 * With SDC_ONNX_FP16 the same graph is written in float16 (below). Only the ancestors of the
 * output are written. Weights become float32 initializers (F16/BF16
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

/* Export flags */
enum {
    SDC_ONNX_EXTERNAL_AUTO = 0,   /* external data when the initializers pass SDC_ONNX_INLINE_MAX */
    SDC_ONNX_EXTERNAL_ALWAYS = 1, /* always (tests, or to keep the .onnx file small) */
    SDC_ONNX_FP16 = 2,            /* float16 graph: every float initializer, graph input and output
                                     (not int32 ids) and so every activation is float16; values
                                     are rounded to nearest even, finite ones saturate at +-65504
                                     (the causal mask's -FLT_MAX becomes -65504). No Cast to or from
                                     float16 is written (the vendor compiler refuses them). */
};
/* Protobuf messages are limited to 2 GiB; this leaves room for the graph itself. */
#define SDC_ONNX_INLINE_MAX ((int64_t)1900 * 1024 * 1024)

/* Writes `g` (with n_in inputs and one output) to `path`. flags: SDC_ONNX_EXTERNAL_* | SDC_ONNX_FP16.
 * *used_external (may be NULL) tells whether PATH.data was written. */
sdc_status sdc_onnx_export(const sdc_graph *g, const sdc_onnx_port *inputs, int n_in,
                           sdc_onnx_port output, const char *path, int flags, int *used_external,
                           sdc_error *err);

/* ---- the three networks of a checkpoint, under the deploy contract's names ---- */

struct sdc_model;

typedef enum sdc_export_part {
    SDC_EXPORT_TEXT = 0, /* input_ids [1, 77] int32 -> last_hidden_state [1, 77, D] */
    SDC_EXPORT_UNET,     /* sample [1, 4, h, w], encoder_hidden_states [1, 77, D] and
                            /down_blocks.0/resnets.0/act_1/Mul_output_0 [1, time_dim] (the post-SiLU
                            time embedding; with timestep_input a float32 timestep [1] instead)
                            -> out_sample [1, 4, h, w] */
    SDC_EXPORT_VAE,      /* latent [1, 4, h, w] (already divided by 0.18215) -> sample [1, 3, H, W] */
} sdc_export_part;

typedef struct sdc_export_opts {
    int width, height;  /* image size: multiples of 8 in 8..2048 */
    int timestep_input; /* UNet: a timestep input instead of the time embedding */
    int external;       /* SDC_ONNX_EXTERNAL_* */
    int fp16;           /* a float16 graph (SDC_ONNX_FP16); refused with timestep_input, whose
                           sinusoidal embedding of t up to 999 float16 cannot carry */
} sdc_export_opts;

/* Builds the part's graph (clip skip 1 for the text encoder) at the given size and exports it to
 * `path` as sdc_onnx_export does. */
sdc_status sdc_export_onnx(const struct sdc_model *m, sdc_export_part part, const sdc_export_opts *o,
                           const char *path, int *used_external, sdc_error *err);

/* The folder holding tests/ort/run_export.js, which `sdc export --check` runs with node (its
 * onnxruntime-node is found from there, in the source tree's node_modules): $SDC_ORT_SCRIPTS when
 * set, else the source tree's tests/ort as configured at build time. Writes it into buf and
 * returns buf, or NULL when run_export.js is not there. */
const char *sdc_export_ort_scripts(char *buf, size_t cap);

#endif
