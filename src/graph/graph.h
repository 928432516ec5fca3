/* src/graph/graph.h: a static graph of coarse tensor ops, built once per input size.
 *
 * The model builders (src/model/) describe each network once with these calls; the CPU backend
 * (src/backend/cpu.h) plans memory for it and runs it, and the ONNX writer decomposes the same
 * nodes into standard ONNX ops. Nothing about a backend lives here.
 *
 * Every node produces one value, named by its integer id. Leaves are inputs (float32, filled by
 * the caller before a run) and weights (views into the checkpoint mapping, any float dtype; small
 * per-channel vectors are converted to f32 once at build time and owned by the graph).
 * Activations are always float32, contiguous, C order, at most 4 dimensions.
 *
 * Errors are sticky: a builder call that fails (missing weight, shape mismatch) records the first
 * error in g->err and returns -1; every later call with a -1 input returns -1. The builder checks
 * sdc_graph_ok() once at the end. This keeps model code a readable list of layers.
 */
#ifndef SDC_GRAPH_GRAPH_H
#define SDC_GRAPH_GRAPH_H

#include "core/dtype.h"
#include "core/error.h"
#include "io/safetensors.h"
#include <stdint.h>

#define SDC_MAX_DIMS 4
#define SDC_MAX_INPUTS 4

typedef enum sdc_op {
    SDC_OP_INPUT = 0,      /* leaf: caller-filled f32 */
    SDC_OP_WEIGHT,         /* leaf: checkpoint tensor view (or graph-owned f32 copy) */
    SDC_OP_LINEAR,         /* x[..., K], w[N, K], b[N]? -> [..., N] */
    SDC_OP_CONV2D,         /* x[B, C, H, W], w[O, C, kh, kw], b[O]? -> [B, O, Ho, Wo]; ip: stride, pad */
    SDC_OP_GROUP_NORM,     /* x[B, C, ...], gamma[C], beta[C]; ip: groups, silu; fp: eps */
    SDC_OP_LAYER_NORM,     /* x[..., D], gamma[D], beta[D] over the last axis; fp: eps */
    SDC_OP_ATTENTION,      /* q[B, Nq, H*d], k[B, Nk, H*d], v[B, Nk, H*dv] -> [B, Nq, H*dv]; ip: heads, causal */
    SDC_OP_GEGLU,          /* x[..., 2F] -> [..., F] = x[..., :F] * gelu(x[..., F:]) (exact erf gelu) */
    SDC_OP_SILU,           /* x * sigmoid(x) */
    SDC_OP_QUICK_GELU,     /* x * sigmoid(1.702 x) */
    SDC_OP_ADD,            /* a + b; b's shape equals a's or a trailing suffix of it (broadcast) */
    SDC_OP_ADD_CHANNEL,    /* x[B, C, H, W] + v[B, C] broadcast over H, W */
    SDC_OP_SCALE,          /* x * fp[0] */
    SDC_OP_CONCAT_C,       /* a[B, Ca, H, W], b[B, Cb, H, W] -> [B, Ca+Cb, H, W] */
    SDC_OP_UPSAMPLE,       /* nearest, x[B, C, H, W] -> [B, C, Ho, Wo] (torch's floor(dst*in/out)) */
    SDC_OP_NCHW_TO_NLC,    /* [B, C, H, W] -> [B, H*W, C] */
    SDC_OP_NLC_TO_NCHW,    /* [B, H*W, C] -> [B, C, H, W]; ip: H, W */
    SDC_OP_EMBEDDING,      /* ids[B, T] (f32 holding integers), table[V, D] -> [B, T, D] */
    SDC_OP_TIMESTEP_EMBED, /* t[B] -> [B, dim]: [cos(t f_k), sin(t f_k)], f_k = 10000^(-k/half) */
    SDC_OP_COUNT
} sdc_op;

extern const char *const sdc_op_names[SDC_OP_COUNT];

typedef struct sdc_node {
    sdc_op op;
    int n_in;
    int in[SDC_MAX_INPUTS];   /* value ids; -1 for an absent optional input (e.g. no bias) */
    int ip[4];                /* integer parameters, per op (see sdc_op) */
    float fp[2];              /* float parameters, per op */
    int ndim;
    int64_t shape[SDC_MAX_DIMS];
    sdc_dtype dtype;          /* F32 except for weights kept in checkpoint dtype */
    const void *data;         /* weights: the tensor data; NULL for activations */
    int is_output;            /* kept alive to the end of a run, readable afterwards */
    char name[96];            /* weight name, or a debug label such as "unet.down_blocks.0" */
} sdc_node;

/* Weights replaced in memory (merged LoRAs, src/model/lora.h), looked up by full name before
 * the checkpoint file; NULL when nothing is merged. */
typedef struct sdc_weight_overlay sdc_weight_overlay;
const sdc_st_tensor *sdc_overlay_find(const sdc_weight_overlay *o, const char *full_name);

typedef struct sdc_graph {
    sdc_node *nodes;
    int n_nodes, cap_nodes;
    const sdc_st_file *weights; /* where named weights are looked up */
    const sdc_weight_overlay *overlay; /* consulted first (NULL: none); set after sdc_graph_init */
    const char *prefix;         /* prepended to weight names, e.g. "model.diffusion_model." */
    void **owned;               /* graph-owned buffers (f32 copies of small weights) */
    int n_owned, cap_owned;
    sdc_error err;              /* first error, sticky */
} sdc_graph;

void sdc_graph_init(sdc_graph *g, const sdc_st_file *weights, const char *prefix);
void sdc_graph_free(sdc_graph *g);
/* Records an error from model code (sticky, like the builders' own); returns -1. */
int sdc_g_fail(sdc_graph *g, sdc_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static inline int sdc_graph_ok(const sdc_graph *g) { return g->err.code == SDC_OK; }

/* Leaves */
int sdc_g_input(sdc_graph *g, const char *name, int ndim, const int64_t *shape);
/* A named weight (prefix + name), kept in its checkpoint dtype. Fails if absent or if its rank
 * or element count disagrees with `ndim`/`shape` when those are given (ndim 0 = any shape). */
int sdc_g_weight(sdc_graph *g, const char *name, int ndim, const int64_t *shape);
/* Same, converted to f32 once and owned by the graph (for biases and norm parameters). */
int sdc_g_weight_f32(sdc_graph *g, const char *name, int ndim, const int64_t *shape);
/* 1 if prefix+name exists in the weights. */
int sdc_g_has(const sdc_graph *g, const char *name);
/* Shape of a named weight (returns its ndim, 0 if absent). */
int sdc_g_weight_shape(const sdc_graph *g, const char *name, int64_t shape[SDC_MAX_DIMS]);

/* Ops (all return the new value id, or -1 after an error) */
int sdc_g_linear(sdc_graph *g, int x, int w, int b);
int sdc_g_conv2d(sdc_graph *g, int x, int w, int b, int stride, int pad);
int sdc_g_group_norm(sdc_graph *g, int x, int gamma, int beta, int groups, float eps, int silu);
int sdc_g_layer_norm(sdc_graph *g, int x, int gamma, int beta, float eps);
int sdc_g_attention(sdc_graph *g, int q, int k, int v, int heads, int causal);
int sdc_g_geglu(sdc_graph *g, int x);
int sdc_g_silu(sdc_graph *g, int x);
int sdc_g_quick_gelu(sdc_graph *g, int x);
int sdc_g_add(sdc_graph *g, int a, int b);
int sdc_g_add_channel(sdc_graph *g, int x, int v);
int sdc_g_scale(sdc_graph *g, int x, float s);
int sdc_g_concat_c(sdc_graph *g, int a, int b);
int sdc_g_upsample(sdc_graph *g, int x, int64_t out_h, int64_t out_w);
int sdc_g_nchw_to_nlc(sdc_graph *g, int x);
int sdc_g_nlc_to_nchw(sdc_graph *g, int x, int64_t h, int64_t w);
int sdc_g_embedding(sdc_graph *g, int ids, int table);
int sdc_g_timestep_embed(sdc_graph *g, int t, int dim);

/* Marks a value as an output (kept alive, readable after a run) and labels it. */
void sdc_g_output(sdc_graph *g, int v, const char *label);
/* Sets a debug label on a value (shown by observers, used to find intermediates). */
void sdc_g_label(sdc_graph *g, int v, const char *fmt, ...);
/* Finds the last value with this label; -1 if none. */
int sdc_g_find(const sdc_graph *g, const char *label);

static inline int64_t sdc_node_numel(const sdc_node *n) {
    int64_t k = 1;
    for (int i = 0; i < n->ndim; i++) k *= n->shape[i];
    return k;
}

/* Formats a shape as "[2, 4, 8, 8]" into buf. */
const char *sdc_shape_str(int ndim, const int64_t *shape, char *buf, size_t len);

/* ---- FLOP counting (the convention of the benchmark: work as the plain algorithm does it) ----
 * A multiply-add is 2 FLOPs. conv2d: 2*B*O*Ho*Wo*C*kh*kw (direct convolution, whatever the
 * kernel really does: a Winograd conv's FLOP/s can exceed the machine's peak); linear: 2*M*N*K;
 * attention: the two matmuls, 2*B*heads*Nq*Nk*(d + dv), the causal mask not subtracted. Bias
 * adds, softmax, norms and elementwise ops are memory-bound and count 0: they show up as time
 * in the "other" kind. */
typedef enum sdc_op_kind {
    SDC_KIND_CONV = 0,
    SDC_KIND_LINEAR,
    SDC_KIND_ATTENTION,
    SDC_KIND_OTHER, /* norms, activations, adds, layout, embeddings */
    SDC_KIND_COUNT
} sdc_op_kind;

extern const char *const sdc_op_kind_names[SDC_KIND_COUNT]; /* "conv", "linear", "attention", "other" */
sdc_op_kind sdc_op_kind_of(sdc_op op);
/* FLOPs of one node (0 for leaves and memory-bound ops). */
double sdc_node_flops(const sdc_graph *g, int node);
/* FLOPs of one run of the whole graph; by_kind (may be NULL) receives the split per kind. */
double sdc_graph_flops(const sdc_graph *g, double by_kind[SDC_KIND_COUNT]);

#endif
