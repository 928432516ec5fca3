/* src/export/onnx_export.c: coarse sdc ops -> standard ONNX ops, written with protobuf-c
 * (see onnx_export.h for the contract).
 *
 * Every message is allocated from one arena (a list of blocks freed together at the end). Value
 * names: graph inputs and the output keep their port names, weights their checkpoint names,
 * other values "t<id>", and the helper values inside one op's decomposition "t<id>_<k>". */
#include "export/onnx_export.h"

#include "model/model.h"
#include "onnx.pb-c.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ONNX_F32 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define ONNX_F16 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16
#define ONNX_I32 ONNX__TENSOR_PROTO__DATA_TYPE__INT32
#define ONNX_I64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64
#define EXTERNAL_MIN_BYTES 1024
#define EXTERNAL_ALIGN 4096

typedef struct exporter {
    const sdc_graph *g;
    void **blocks; /* the arena */
    size_t n_blocks, cap_blocks;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    char **names;        /* per value id, lazily */
    char **transposed;   /* per weight id: name of its [K, N] initializer, lazily */
    unsigned char *made; /* per weight id: plain initializer written */
    unsigned char *int32; /* per input id: an int32 graph input */
    int *canon;          /* per weight id: the first weight node with the same name and data */
    int fresh;           /* counter of helper value names */
    FILE *data;          /* external data file, or NULL */
    const char *data_location;
    int64_t data_off;
    int n_const;
    int fp16;            /* SDC_ONNX_FP16: float initializers written as float16 */
    int oom;
    sdc_error *err;
    sdc_status status;
} exporter;

static int ex_fail(exporter *ex, sdc_status s, const char *fmt, ...) {
    if (ex->status == SDC_OK) {
        va_list ap;
        va_start(ap, fmt);
        char msg[512];
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        sdc_fail(ex->err, s, "%s", msg);
        ex->status = s;
    }
    return -1;
}

/* ------------------------------------------------------------------ arena and lists */

static void *own(exporter *ex, void *p) {
    if (!p) {
        ex->oom = 1;
        return NULL;
    }
    if (ex->n_blocks == ex->cap_blocks) {
        size_t cap = ex->cap_blocks ? 2 * ex->cap_blocks : 256;
        void **nb = realloc(ex->blocks, cap * sizeof *nb);
        if (!nb) {
            free(p);
            ex->oom = 1;
            return NULL;
        }
        ex->blocks = nb;
        ex->cap_blocks = cap;
    }
    ex->blocks[ex->n_blocks++] = p;
    return p;
}

static void *alloc(exporter *ex, size_t n) { return own(ex, calloc(1, n ? n : 1)); }

static char *str(exporter *ex, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = alloc(ex, strlen(buf) + 1);
    if (s) strcpy(s, buf);
    return s;
}

static int push(exporter *ex, void ***arr, size_t *n, size_t *cap, void *item) {
    if (!item) return -1;
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 256;
        void **na = realloc(*arr, nc * sizeof *na);
        if (!na) {
            ex->oom = 1;
            return -1;
        }
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = item;
    return 0;
}

/* ------------------------------------------------------------------ initializers */

/* Adds an initializer; takes ownership of the malloc'd `bytes`. */
static const char *add_init(exporter *ex, const char *name, int dtype, int ndim, const int64_t *dims,
                            void *bytes, size_t nbytes) {
    if (ex->fp16 && dtype == ONNX_F32) { // float16 in place, saturating finite values at +-65504
        size_t n = nbytes / sizeof(float);
        const float *f = bytes;
        uint16_t *h = bytes;
        for (size_t i = 0; i < n; i++) {
            float v = f[i];
            h[i] = sdc_f32_to_f16(v > 65504.0f && v <= FLT_MAX ? 65504.0f : v < -65504.0f && v >= -FLT_MAX ? -65504.0f : v);
        }
        nbytes = n * sizeof *h;
        dtype = ONNX_F16;
    }
    Onnx__TensorProto *t = alloc(ex, sizeof *t);
    int64_t *d = alloc(ex, (ndim ? ndim : 1) * sizeof *d);
    if (!t || !d || !name) {
        free(bytes);
        return NULL;
    }
    onnx__tensor_proto__init(t);
    if (ndim) memcpy(d, dims, ndim * sizeof *d);
    t->n_dims = ndim;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = dtype;
    t->name = (char *)name;
    if (ex->data && nbytes >= EXTERNAL_MIN_BYTES) {
        int64_t pad = (EXTERNAL_ALIGN - ex->data_off % EXTERNAL_ALIGN) % EXTERNAL_ALIGN;
        static const char zeros[EXTERNAL_ALIGN];
        if ((pad && fwrite(zeros, 1, pad, ex->data) != (size_t)pad) ||
            fwrite(bytes, 1, nbytes, ex->data) != nbytes) {
            free(bytes);
            ex_fail(ex, SDC_E_IO, "%s: cannot write the external data (disk full?)", ex->data_location);
            return NULL;
        }
        free(bytes);
        ex->data_off += pad;
        Onnx__StringStringEntryProto **e = alloc(ex, 3 * sizeof *e);
        if (!e) return NULL;
        const char *keys[3] = {"location", "offset", "length"};
        for (int i = 0; i < 3; i++) {
            e[i] = alloc(ex, sizeof *e[i]);
            if (!e[i]) return NULL;
            onnx__string_string_entry_proto__init(e[i]);
            e[i]->key = (char *)keys[i];
        }
        e[0]->value = (char *)ex->data_location;
        e[1]->value = str(ex, "%lld", (long long)ex->data_off);
        e[2]->value = str(ex, "%zu", nbytes);
        t->n_external_data = 3;
        t->external_data = e;
        t->has_data_location = 1;
        t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        ex->data_off += (int64_t)nbytes;
    } else {
        if (!own(ex, bytes)) return NULL;
        t->has_raw_data = 1;
        t->raw_data.data = bytes;
        t->raw_data.len = nbytes;
    }
    if (push(ex, (void ***)&ex->inits, &ex->n_inits, &ex->cap_inits, t)) return NULL;
    return name;
}

static const char *const_f32(exporter *ex, int ndim, const int64_t *dims, const float *v, int64_t n) {
    float *b = malloc(n * sizeof *b);
    if (!b) return ex->oom = 1, NULL;
    memcpy(b, v, n * sizeof *b);
    return add_init(ex, str(ex, "const_%d", ex->n_const++), ONNX_F32, ndim, dims, b, n * sizeof *b);
}

static const char *scalar_f32(exporter *ex, float v) { return const_f32(ex, 0, NULL, &v, 1); }

static const char *const_i64(exporter *ex, const int64_t *v, int n) {
    int64_t *b = malloc((n ? n : 1) * sizeof *b);
    if (!b) return ex->oom = 1, NULL;
    memcpy(b, v, n * sizeof *b);
    int64_t dims[1] = {n};
    return add_init(ex, str(ex, "const_%d", ex->n_const++), ONNX_I64, 1, dims, b, n * sizeof *b);
}

/* A weight node's data as float32, optionally transposed from [N, K] to [K, N]. */
static float *weight_f32(exporter *ex, const sdc_node *n, int transpose) {
    int64_t count = sdc_node_numel(n);
    float *out = malloc((count ? count : 1) * sizeof *out);
    if (!out) {
        ex->oom = 1;
        return NULL;
    }
    int64_t N = transpose ? n->shape[0] : 1, K = transpose ? count / n->shape[0] : count;
    for (int64_t i = 0; i < count; i++) {
        float v;
        if (n->dtype == SDC_F32) v = ((const float *)n->data)[i];
        else if (n->dtype == SDC_F16) v = sdc_f16_to_f32(((const uint16_t *)n->data)[i]);
        else if (n->dtype == SDC_BF16) v = sdc_bf16_to_f32(((const uint16_t *)n->data)[i]);
        else {
            free(out);
            ex_fail(ex, SDC_E_FORMAT, "weight %s: dtype %s cannot be exported", n->name,
                    sdc_dtype_table[n->dtype].name);
            return NULL;
        }
        if (transpose) out[(i % K) * N + i / K] = v;
        else out[i] = v;
    }
    return out;
}

/* The name of a weight's initializer, written on first use; `transpose`: the [K, N] copy of a
 * [N, K] linear weight (MatMul's right operand). */
static const char *weight_init(exporter *ex, int v, int transpose) {
    if (v >= 0 && ex->g->nodes[v].op == SDC_OP_WEIGHT) v = ex->canon[v];
    const sdc_node *n = &ex->g->nodes[v];
    if (n->op != SDC_OP_WEIGHT) {
        ex_fail(ex, SDC_E_FORMAT, "ONNX export: value %d (%s) is not a weight where one is expected", v,
                sdc_op_names[n->op]);
        return NULL;
    }
    if (transpose) {
        if (ex->transposed[v]) return ex->transposed[v];
        float *b = weight_f32(ex, n, 1);
        if (!b) return NULL;
        int64_t dims[2] = {sdc_node_numel(n) / n->shape[0], n->shape[0]};
        ex->transposed[v] = (char *)add_init(ex, str(ex, "%s.T", n->name), ONNX_F32, 2, dims, b,
                                             sdc_node_numel(n) * sizeof(float));
        return ex->transposed[v];
    }
    if (!ex->made[v]) {
        float *b = weight_f32(ex, n, 0);
        if (!b) return NULL;
        if (!add_init(ex, ex->names[v], ONNX_F32, n->ndim, n->shape, b, sdc_node_numel(n) * sizeof(float)))
            return NULL;
        ex->made[v] = 1;
    }
    return ex->names[v];
}

/* ------------------------------------------------------------------ nodes */

typedef struct attr {
    const char *name;
    int kind; /* 'i' int, 'f' float, 's' string, 'I' ints */
    int64_t i;
    float f;
    const char *s;
    const int64_t *ints;
    int n_ints;
} attr;

#define A_I(nm, v) ((attr){.name = (nm), .kind = 'i', .i = (v)})
#define A_F(nm, v) ((attr){.name = (nm), .kind = 'f', .f = (v)})
#define A_S(nm, v) ((attr){.name = (nm), .kind = 's', .s = (v)})
#define A_INTS(nm, p, n) ((attr){.name = (nm), .kind = 'I', .ints = (p), .n_ints = (n)})

/* Appends one ONNX node; returns its (first) output name. `out` NULL: a fresh helper name. */
static const char *emit(exporter *ex, const char *op, const char *out, int n_in, const char *const *in,
                        int n_attr, const attr *attrs) {
    if (ex->status != SDC_OK || ex->oom) return NULL;
    for (int i = 0; i < n_in; i++)
        if (!in[i]) return NULL;
    Onnx__NodeProto *nd = alloc(ex, sizeof *nd);
    char **ins = alloc(ex, (n_in ? n_in : 1) * sizeof *ins);
    char **outs = alloc(ex, sizeof *outs);
    Onnx__AttributeProto **as = alloc(ex, (n_attr ? n_attr : 1) * sizeof *as);
    if (!out) out = str(ex, "h%d", ex->fresh++);
    if (!nd || !ins || !outs || !as || !out) return NULL;
    onnx__node_proto__init(nd);
    for (int i = 0; i < n_in; i++) ins[i] = (char *)in[i];
    outs[0] = (char *)out;
    nd->n_input = n_in;
    nd->input = ins;
    nd->n_output = 1;
    nd->output = outs;
    nd->op_type = (char *)op;
    nd->name = str(ex, "%s_%zu", op, ex->n_nodes);
    for (int k = 0; k < n_attr; k++) {
        Onnx__AttributeProto *a = alloc(ex, sizeof *a);
        if (!a) return NULL;
        onnx__attribute_proto__init(a);
        a->name = (char *)attrs[k].name;
        a->has_type = 1;
        switch (attrs[k].kind) {
        case 'i': a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT; a->has_i = 1; a->i = attrs[k].i; break;
        case 'f': a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT; a->has_f = 1; a->f = attrs[k].f; break;
        case 's':
            a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
            a->has_s = 1;
            a->s.data = (uint8_t *)attrs[k].s;
            a->s.len = strlen(attrs[k].s);
            break;
        default: {
            int64_t *v = alloc(ex, attrs[k].n_ints * sizeof *v);
            if (!v) return NULL;
            memcpy(v, attrs[k].ints, attrs[k].n_ints * sizeof *v);
            a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
            a->n_ints = attrs[k].n_ints;
            a->ints = v;
        }
        }
        as[k] = a;
    }
    nd->n_attribute = n_attr;
    nd->attribute = as;
    if (push(ex, (void ***)&ex->nodes, &ex->n_nodes, &ex->cap_nodes, nd)) return NULL;
    return out;
}

static const char *op1(exporter *ex, const char *op, const char *out, const char *a) {
    return emit(ex, op, out, 1, &a, 0, NULL);
}
static const char *op2(exporter *ex, const char *op, const char *out, const char *a, const char *b) {
    const char *in[2] = {a, b};
    return emit(ex, op, out, 2, in, 0, NULL);
}
static const char *reshape(exporter *ex, const char *out, const char *x, int n, const int64_t *shape) {
    return op2(ex, "Reshape", out, x, const_i64(ex, shape, n));
}
static const char *transpose(exporter *ex, const char *out, const char *x, int n, const int64_t *perm) {
    attr a = A_INTS("perm", perm, n);
    return emit(ex, "Transpose", out, 1, &x, 1, &a);
}

/* ------------------------------------------------------------------ one coarse op */

static const char *in_name(exporter *ex, const sdc_node *n, int k) {
    int v = n->in[k];
    if (ex->g->nodes[v].op == SDC_OP_WEIGHT) return weight_init(ex, v, 0);
    return ex->names[v];
}

/* The per-channel vector of a weight, shaped [C, 1, ..., 1] to broadcast over `rank`-D x[B, C, ...]. */
static const char *channel_vec(exporter *ex, int v, int rank) {
    const sdc_node *n = &ex->g->nodes[v];
    float *b = weight_f32(ex, n, 0);
    if (!b) return NULL;
    int64_t dims[SDC_MAX_DIMS] = {sdc_node_numel(n), 1, 1, 1};
    return add_init(ex, str(ex, "%s.c%d", n->name, ex->n_const++), ONNX_F32, rank - 1, dims, b, sdc_node_numel(n) * sizeof(float));
}

static void export_node(exporter *ex, int id) {
    const sdc_node *n = &ex->g->nodes[id];
    const sdc_node *x = n->n_in > 0 && n->in[0] >= 0 ? &ex->g->nodes[n->in[0]] : NULL;
    const char *out = ex->names[id];
    switch (n->op) {
    case SDC_OP_LINEAR: { // x[..., K] @ w^T[K, N] (+ b[N])
        const char *w = weight_init(ex, n->in[1], 1);
        if (n->in[2] < 0) {
            op2(ex, "MatMul", out, in_name(ex, n, 0), w);
        } else {
            op2(ex, "Add", out, op2(ex, "MatMul", NULL, in_name(ex, n, 0), w), in_name(ex, n, 2));
        }
        break;
    }
    case SDC_OP_CONV2D: {
        const sdc_node *w = &ex->g->nodes[n->in[1]];
        int64_t k[2] = {w->shape[2], w->shape[3]}, s[2] = {n->ip[0], n->ip[0]},
                p[4] = {n->ip[1], n->ip[1], n->ip[1], n->ip[1]};
        attr a[3] = {A_INTS("kernel_shape", k, 2), A_INTS("strides", s, 2), A_INTS("pads", p, 4)};
        const char *in[3] = {in_name(ex, n, 0), in_name(ex, n, 1), n->in[2] >= 0 ? in_name(ex, n, 2) : ""};
        emit(ex, "Conv", out, n->in[2] >= 0 ? 3 : 2, in, 3, a);
        break;
    }
    case SDC_OP_GROUP_NORM: { // [B, C, ...] -> [B, G, rest] -> InstanceNorm -> back, * gamma + beta
        int G = n->ip[0];
        float ones[1024], zeros[1024] = {0};
        if (G < 1 || G > 1024) {
            ex_fail(ex, SDC_E_FORMAT, "ONNX export: group norm with %d groups", G);
            return;
        }
        for (int i = 0; i < G; i++) ones[i] = 1.0f;
        int64_t gdim[1] = {G}, s3[3] = {x->shape[0], G, -1};
        attr eps = A_F("epsilon", n->fp[0]);
        const char *in[3] = {reshape(ex, NULL, in_name(ex, n, 0), 3, s3), const_f32(ex, 1, gdim, ones, G),
                             const_f32(ex, 1, gdim, zeros, G)};
        const char *y = emit(ex, "InstanceNormalization", NULL, 3, in, 1, &eps);
        y = reshape(ex, NULL, y, x->ndim, x->shape);
        y = op2(ex, "Mul", NULL, y, channel_vec(ex, n->in[1], x->ndim));
        y = op2(ex, "Add", n->ip[1] ? NULL : out, y, channel_vec(ex, n->in[2], x->ndim));
        if (n->ip[1]) op2(ex, "Mul", out, y, op1(ex, "Sigmoid", NULL, y));
        break;
    }
    case SDC_OP_LAYER_NORM: {
        attr a[2] = {A_I("axis", -1), A_F("epsilon", n->fp[0])};
        const char *in[3] = {in_name(ex, n, 0), in_name(ex, n, 1), in_name(ex, n, 2)};
        emit(ex, "LayerNormalization", out, 3, in, 2, a);
        break;
    }
    case SDC_OP_ATTENTION: {
        const sdc_node *q = x, *k = &ex->g->nodes[n->in[1]], *v = &ex->g->nodes[n->in[2]];
        int64_t H = n->ip[0], B = q->shape[0], Nq = q->shape[1], Nk = k->shape[1];
        int64_t d = q->shape[2] / H, dv = v->shape[2] / H;
        int64_t sq[4] = {B, Nq, H, d}, sk[4] = {B, Nk, H, d}, sv[4] = {B, Nk, H, dv}, so[3] = {B, Nq, H * dv};
        int64_t p0213[4] = {0, 2, 1, 3}, p0231[4] = {0, 2, 3, 1};
        const char *qq = transpose(ex, NULL, reshape(ex, NULL, in_name(ex, n, 0), 4, sq), 4, p0213); // [B, H, Nq, d]
        const char *kk = transpose(ex, NULL, reshape(ex, NULL, in_name(ex, n, 1), 4, sk), 4, p0231); // [B, H, d, Nk]
        const char *vv = transpose(ex, NULL, reshape(ex, NULL, in_name(ex, n, 2), 4, sv), 4, p0213); // [B, H, Nk, dv]
        const char *s = op2(ex, "Mul", NULL, op2(ex, "MatMul", NULL, qq, kk), scalar_f32(ex, 1.0f / sqrtf((float)d)));
        if (n->ip[1]) { // causal: -FLT_MAX above the diagonal (as Hugging Face's CLIP export)
            float *m = calloc(Nq * Nk, sizeof *m);
            if (!m) {
                ex->oom = 1;
                return;
            }
            for (int64_t i = 0; i < Nq; i++)
                for (int64_t j = i + 1; j < Nk; j++) m[i * Nk + j] = -FLT_MAX;
            int64_t md[2] = {Nq, Nk};
            s = op2(ex, "Add", NULL, s, add_init(ex, str(ex, "causal_mask_%d", ex->n_const++), ONNX_F32, 2, md, m,
                                                  Nq * Nk * sizeof *m));
        }
        attr ax = A_I("axis", -1);
        const char *p = emit(ex, "Softmax", NULL, 1, &s, 1, &ax);
        const char *o = transpose(ex, NULL, op2(ex, "MatMul", NULL, p, vv), 4, p0213); // [B, Nq, H, dv]
        reshape(ex, out, o, 3, so);
        break;
    }
    case SDC_OP_GEGLU: { // a * 0.5 * g * (1 + erf(g / sqrt(2)))
        int64_t F = x->shape[x->ndim - 1] / 2, sp[2] = {F, F};
        Onnx__NodeProto *nd;
        const char *in[2] = {in_name(ex, n, 0), const_i64(ex, sp, 2)};
        attr ax = A_I("axis", -1);
        const char *a = emit(ex, "Split", NULL, 2, in, 1, &ax);
        if (!a) return;
        nd = ex->nodes[ex->n_nodes - 1]; // add the second output (the gate)
        char **outs = alloc(ex, 2 * sizeof *outs);
        const char *gate = str(ex, "%s_gate", a);
        if (!outs || !gate) return;
        outs[0] = (char *)a;
        outs[1] = (char *)gate;
        nd->n_output = 2;
        nd->output = outs;
        const char *e = op1(ex, "Erf", NULL, op2(ex, "Mul", NULL, gate, scalar_f32(ex, (float)M_SQRT1_2)));
        const char *gl = op2(ex, "Mul", NULL, op2(ex, "Mul", NULL, gate, scalar_f32(ex, 0.5f)),
                             op2(ex, "Add", NULL, e, scalar_f32(ex, 1.0f)));
        op2(ex, "Mul", out, a, gl);
        break;
    }
    case SDC_OP_SILU: {
        const char *a = in_name(ex, n, 0);
        op2(ex, "Mul", out, a, op1(ex, "Sigmoid", NULL, a));
        break;
    }
    case SDC_OP_QUICK_GELU: {
        const char *a = in_name(ex, n, 0);
        op2(ex, "Mul", out, a, op1(ex, "Sigmoid", NULL, op2(ex, "Mul", NULL, a, scalar_f32(ex, 1.702f))));
        break;
    }
    case SDC_OP_ADD: op2(ex, "Add", out, in_name(ex, n, 0), in_name(ex, n, 1)); break;
    case SDC_OP_ADD_CHANNEL: { // v[B, C] -> [B, C, 1, 1]
        const sdc_node *v = &ex->g->nodes[n->in[1]];
        int64_t s[4] = {v->shape[0], v->shape[1], 1, 1};
        op2(ex, "Add", out, in_name(ex, n, 0), reshape(ex, NULL, in_name(ex, n, 1), 4, s));
        break;
    }
    case SDC_OP_SCALE: op2(ex, "Mul", out, in_name(ex, n, 0), scalar_f32(ex, n->fp[0])); break;
    case SDC_OP_CONCAT_C: {
        const char *in[2] = {in_name(ex, n, 0), in_name(ex, n, 1)};
        attr ax = A_I("axis", 1);
        emit(ex, "Concat", out, 2, in, 1, &ax);
        break;
    }
    case SDC_OP_UPSAMPLE: {
        /* torch's nearest picks src = floor(dst * in / out). For integer factors half_pixel +
         * round_prefer_ceil (the only nearest mode the vendor compiler takes) gives exactly that:
         * (dst + 0.5) / s - 0.5 = k + (r + 0.5) / s - 0.5 lies strictly within k +- 0.5. Other
         * ratios (a latent side not divisible by 8: 8 -> 15 rows) become two Gathers of constant
         * source indices, computed as the CPU kernel computes them (src/ops/nn.c). */
        if (n->shape[2] % x->shape[2] == 0 && n->shape[3] % x->shape[3] == 0) {
            attr a[3] = {A_S("mode", "nearest"), A_S("coordinate_transformation_mode", "half_pixel"),
                         A_S("nearest_mode", "round_prefer_ceil")};
            const char *in[4] = {in_name(ex, n, 0), "", "", const_i64(ex, n->shape, 4)};
            emit(ex, "Resize", out, 4, in, 3, a);
            break;
        }
        const char *y = in_name(ex, n, 0);
        for (int axis = 2; axis <= 3; axis++) {
            int64_t in_len = x->shape[axis], out_len = n->shape[axis], idx[4096];
            if (out_len > 4096) {
                ex_fail(ex, SDC_E_LIMIT, "ONNX export: upsampling to %lld rows", (long long)out_len);
                return;
            }
            float sc = (float)in_len / (float)out_len;
            for (int64_t i = 0; i < out_len; i++) {
                idx[i] = (int64_t)floorf((float)i * sc);
                if (idx[i] > in_len - 1) idx[i] = in_len - 1;
            }
            const char *in[2] = {y, const_i64(ex, idx, (int)out_len)};
            attr ax = A_I("axis", axis);
            y = emit(ex, "Gather", axis == 3 ? out : NULL, 2, in, 1, &ax);
        }
        break;
    }
    case SDC_OP_NCHW_TO_NLC: {
        int64_t s[3] = {x->shape[0], x->shape[1], x->shape[2] * x->shape[3]}, p[3] = {0, 2, 1};
        transpose(ex, out, reshape(ex, NULL, in_name(ex, n, 0), 3, s), 3, p);
        break;
    }
    case SDC_OP_NLC_TO_NCHW: {
        int64_t p[3] = {0, 2, 1};
        reshape(ex, out, transpose(ex, NULL, in_name(ex, n, 0), 3, p), 4, n->shape);
        break;
    }
    case SDC_OP_EMBEDDING: {
        const char *ids = in_name(ex, n, 0);
        if (!ex->int32[n->in[0]]) { // ids held as floats: Cast to int64
            attr to = A_I("to", ONNX_I64);
            ids = emit(ex, "Cast", NULL, 1, &ids, 1, &to);
        }
        const char *in[2] = {in_name(ex, n, 1), ids};
        attr ax = A_I("axis", 0);
        emit(ex, "Gather", out, 2, in, 1, &ax);
        break;
    }
    case SDC_OP_TIMESTEP_EMBED: { // t[B] -> [B, 1] * f[1, half] -> [cos, sin]
        int64_t half = n->shape[1] / 2, s[2] = {x->shape[0], 1}, fd[2] = {1, half};
        float *f = malloc(half * sizeof *f);
        if (!f) {
            ex->oom = 1;
            return;
        }
        for (int64_t k = 0; k < half; k++) f[k] = expf(-logf(10000.0f) * (float)k / (float)half); // as nn.c
        const char *fr = add_init(ex, str(ex, "timestep_freqs_%d", ex->n_const++), ONNX_F32, 2, fd, f, half * sizeof *f);
        const char *arg = op2(ex, "Mul", NULL, reshape(ex, NULL, in_name(ex, n, 0), 2, s), fr);
        const char *in[2] = {op1(ex, "Cos", NULL, arg), op1(ex, "Sin", NULL, arg)};
        attr ax = A_I("axis", 1);
        emit(ex, "Concat", out, 2, in, 1, &ax);
        break;
    }
    default: ex_fail(ex, SDC_E_FORMAT, "ONNX export: op %s cannot be exported", sdc_op_names[n->op]);
    }
}

/* ------------------------------------------------------------------ the model */

static Onnx__ValueInfoProto *value_info(exporter *ex, const char *name, int dtype, int ndim, const int64_t *shape) {
    Onnx__ValueInfoProto *vi = alloc(ex, sizeof *vi);
    Onnx__TypeProto *tp = alloc(ex, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = alloc(ex, sizeof *tt);
    Onnx__TensorShapeProto *sp = alloc(ex, sizeof *sp);
    Onnx__TensorShapeProto__Dimension **dims = alloc(ex, (ndim ? ndim : 1) * sizeof *dims);
    if (!vi || !tp || !tt || !sp || !dims) return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sp);
    for (int i = 0; i < ndim; i++) {
        dims[i] = alloc(ex, sizeof *dims[i]);
        if (!dims[i]) return NULL;
        onnx__tensor_shape_proto__dimension__init(dims[i]);
        dims[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        dims[i]->dim_value = shape[i];
    }
    sp->n_dim = ndim;
    sp->dim = dims;
    tt->has_elem_type = 1;
    tt->elem_type = dtype;
    tt->shape = sp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = (char *)name;
    vi->type = tp;
    return vi;
}

static int64_t weights_bytes(const sdc_graph *g, const unsigned char *live) {
    int64_t total = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (live[i] && g->nodes[i].op == SDC_OP_WEIGHT) total += sdc_node_numel(&g->nodes[i]) * 4;
    return total;
}

static sdc_status write_file(exporter *ex, const char *path, const uint8_t *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return sdc_fail(ex->err, SDC_E_IO, "%s: cannot create the file", path);
    int bad = fwrite(buf, 1, len, f) != len;
    bad |= fclose(f) != 0;
    if (bad) return sdc_fail(ex->err, SDC_E_IO, "%s: cannot write (disk full?)", path);
    return SDC_OK;
}

sdc_status sdc_onnx_export(const sdc_graph *g, const sdc_onnx_port *inputs, int n_in,
                           sdc_onnx_port output, const char *path, int flags, int *used_external,
                           sdc_error *err) {
    exporter ex = {.g = g, .err = err, .status = SDC_OK, .fp16 = (flags & SDC_ONNX_FP16) != 0};
    const int ft = ex.fp16 ? ONNX_F16 : ONNX_F32;
    int N = g->n_nodes;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16), *data_path = malloc(plen + 16), *data_tmp = malloc(plen + 16);
    unsigned char *live = calloc(N ? N : 1, 1);
    ex.names = calloc(N ? N : 1, sizeof *ex.names);
    ex.transposed = calloc(N ? N : 1, sizeof *ex.transposed);
    ex.made = calloc(N ? N : 1, 1);
    ex.int32 = calloc(N ? N : 1, 1);
    ex.canon = calloc(N ? N : 1, sizeof *ex.canon);
    uint8_t *buf = NULL;
    int data_written = 0;
    if (used_external) *used_external = 0;
    if (!tmp || !data_path || !data_tmp || !live || !ex.names || !ex.transposed || !ex.made || !ex.int32 || !ex.canon) {
        ex.oom = 1;
        goto done;
    }
    sprintf(tmp, "%s.tmp", path);
    sprintf(data_path, "%s.data", path);
    sprintf(data_tmp, "%s.data.tmp", path);
    if (output.value < 0 || output.value >= N) {
        ex_fail(&ex, SDC_E_INVALID_ARG, "ONNX export %s: bad output value %d", path, output.value);
        goto done;
    }
    /* the ancestors of the output (ids are in topological order) */
    live[output.value] = 1;
    for (int i = output.value; i >= 0; i--)
        if (live[i])
            for (int k = 0; k < g->nodes[i].n_in; k++)
                if (g->nodes[i].in[k] >= 0) live[g->nodes[i].in[k]] = 1;
    for (int i = 0; i < N; i++) {
        const sdc_node *n = &g->nodes[i];
        ex.canon[i] = i;
        if (n->op == SDC_OP_WEIGHT) { // one initializer per distinct tensor; names stay unique
            int dup = 0;
            for (int j = 0; j < i && !dup; j++)
                if (g->nodes[j].op == SDC_OP_WEIGHT && strcmp(g->nodes[j].name, n->name) == 0) {
                    dup = 1;
                    if (g->nodes[j].data == n->data && g->nodes[j].dtype == n->dtype) ex.canon[i] = ex.canon[j];
                }
            ex.names[i] = dup && ex.canon[i] == i ? str(&ex, "%s.%d", n->name, i)
                                                  : str(&ex, "%s", n->name[0] ? n->name : "w");
        }
        else ex.names[i] = str(&ex, "t%d", i);
        if (live[i] && n->op == SDC_OP_INPUT) {
            int found = 0;
            for (int k = 0; k < n_in; k++) found |= inputs[k].value == i;
            if (!found) {
                ex_fail(&ex, SDC_E_INVALID_ARG, "ONNX export %s: graph input %s is not among the model inputs",
                        path, n->name);
                goto done;
            }
        }
    }
    for (int k = 0; k < n_in; k++) {
        if (inputs[k].value < 0 || inputs[k].value >= N || g->nodes[inputs[k].value].op != SDC_OP_INPUT) {
            ex_fail(&ex, SDC_E_INVALID_ARG, "ONNX export %s: input %s is not a graph input", path, inputs[k].name);
            goto done;
        }
        ex.names[inputs[k].value] = (char *)inputs[k].name;
        ex.int32[inputs[k].value] = (unsigned char)(inputs[k].int32 != 0);
    }
    ex.names[output.value] = (char *)output.name;
    for (int i = 0; i < N; i++) // int32 inputs feed only EMBEDDING
        for (int k = 0; live[i] && k < g->nodes[i].n_in; k++) {
            int v = g->nodes[i].in[k];
            if (v >= 0 && g->nodes[v].op == SDC_OP_INPUT && ex.int32[v] && !(g->nodes[i].op == SDC_OP_EMBEDDING && k == 0)) {
                ex_fail(&ex, SDC_E_INVALID_ARG, "ONNX export %s: int32 input %s feeds a %s op", path, ex.names[v],
                        sdc_op_names[g->nodes[i].op]);
                goto done;
            }
        }
    int ext = (flags & SDC_ONNX_EXTERNAL_ALWAYS) || weights_bytes(g, live) / (ex.fp16 ? 2 : 1) > SDC_ONNX_INLINE_MAX;
    if (ext) {
        const char *slash = strrchr(data_path, '/');
        ex.data_location = slash ? slash + 1 : data_path;
        ex.data = fopen(data_tmp, "wb");
        if (!ex.data) {
            ex_fail(&ex, SDC_E_IO, "%s: cannot create the file", data_tmp);
            goto done;
        }
        data_written = 1;
    }
    for (int i = 0; i < N && ex.status == SDC_OK && !ex.oom; i++) {
        sdc_op op = g->nodes[i].op;
        if (live[i] && op != SDC_OP_INPUT && op != SDC_OP_WEIGHT) export_node(&ex, i);
    }
    if (ex.status != SDC_OK || ex.oom) goto done;
    if (g->nodes[output.value].op == SDC_OP_INPUT || g->nodes[output.value].op == SDC_OP_WEIGHT) {
        ex_fail(&ex, SDC_E_INVALID_ARG, "ONNX export %s: the output is a leaf", path);
        goto done;
    }

    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsets[1] = {&opset};
    Onnx__ValueInfoProto **gin = alloc(&ex, (n_in ? n_in : 1) * sizeof *gin), *gout[1];
    if (!gin) goto done;
    for (int k = 0; k < n_in; k++) {
        const sdc_node *n = &g->nodes[inputs[k].value];
        gin[k] = value_info(&ex, inputs[k].name, inputs[k].int32 ? ONNX_I32 : ft, n->ndim, n->shape);
    }
    gout[0] = value_info(&ex, output.name, ft, g->nodes[output.value].ndim, g->nodes[output.value].shape);
    if (ex.oom) goto done;
    graph.name = "sdc";
    graph.n_node = ex.n_nodes;
    graph.node = ex.nodes;
    graph.n_initializer = ex.n_inits;
    graph.initializer = ex.inits;
    graph.n_input = n_in;
    graph.input = gin;
    graph.n_output = 1;
    graph.output = gout;
    opset.domain = "";
    opset.has_version = 1;
    opset.version = 17;
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    model.producer_name = "sdc";
    model.graph = &graph;
    size_t len = onnx__model_proto__get_packed_size(&model);
    if (len > (size_t)INT32_MAX) {
        ex_fail(&ex, SDC_E_INVALID_ARG, "%s: the model is %zu bytes, over protobuf's 2 GiB: use external data", path, len);
        goto done;
    }
    buf = malloc(len ? len : 1);
    if (!buf) {
        ex.oom = 1;
        goto done;
    }
    onnx__model_proto__pack(&model, buf);
    if (ex.data) {
        int bad = fclose(ex.data) != 0;
        ex.data = NULL;
        if (bad) {
            ex_fail(&ex, SDC_E_IO, "%s: cannot write (disk full?)", data_tmp);
            goto done;
        }
    }
    if ((ex.status = write_file(&ex, tmp, buf, len)) != SDC_OK) goto done;
    if ((data_written && rename(data_tmp, data_path) != 0) || rename(tmp, path) != 0) {
        ex_fail(&ex, SDC_E_IO, "%s: cannot rename the finished file into place", path);
        goto done;
    }
    if (!data_written) unlink(data_path); // a stale side file from an earlier export
    if (used_external) *used_external = data_written;

done:
    if (ex.oom && ex.status == SDC_OK) ex_fail(&ex, SDC_E_NOMEM, "ONNX export %s: out of memory", path);
    if (ex.data) fclose(ex.data);
    if (ex.status != SDC_OK && tmp) {
        unlink(tmp);
        if (data_written) unlink(data_tmp);
    }
    for (size_t i = 0; i < ex.n_blocks; i++) free(ex.blocks[i]);
    free(ex.blocks);
    free(ex.nodes);
    free(ex.inits);
    free(ex.names);
    free(ex.transposed);
    free(ex.made);
    free(ex.int32);
    free(ex.canon);
    free(live);
    free(buf);
    free(tmp);
    free(data_path);
    free(data_tmp);
    return ex.status;
}

/* ------------------------------------------------------------------ the three networks */

#define TEMB_NAME "/down_blocks.0/resnets.0/act_1/Mul_output_0"

sdc_status sdc_export_onnx(const sdc_model *m, sdc_export_part part, const sdc_export_opts *o, const char *path,
                           int *used_external, sdc_error *err) {
    static const char *what[3] = {"text encoder", "UNet", "VAE decoder"};
    if (used_external) *used_external = 0;
    if ((int)part < 0 || part > SDC_EXPORT_VAE) return sdc_fail(err, SDC_E_INVALID_ARG, "ONNX export: unknown part %d", (int)part);
    if (o->width < 8 || o->height < 8 || o->width > 2048 || o->height > 2048 || o->width % 8 || o->height % 8)
        return sdc_fail(err, SDC_E_INVALID_ARG, "size %dx%d: width and height must be multiples of 8 in 8..2048",
                        o->width, o->height);
    if (o->fp16 && o->timestep_input && part == SDC_EXPORT_UNET)
        return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: a float16 UNet takes the time embedding, not a timestep "
                        "(float16 cannot carry the sinusoidal embedding of t up to 999)", path);
    int present = part == SDC_EXPORT_TEXT ? m->has_clip : part == SDC_EXPORT_UNET ? m->has_unet : m->has_vae;
    if (!present) return sdc_fail(err, SDC_E_FORMAT, "%s: the checkpoint lacks the %s", m->path, what[part]);
    sdc_graph g;
    sdc_onnx_port in[3], out;
    int n_in = 0, h = o->height / 8, w = o->width / 8;
    sdc_model_graph_init(&g, m, part == SDC_EXPORT_TEXT ? SDC_CLIP_PREFIX : part == SDC_EXPORT_UNET ? SDC_UNET_PREFIX : SDC_VAE_PREFIX);
    if (part == SDC_EXPORT_TEXT) {
        int64_t s[2] = {1, SDC_CLIP_CTX};
        in[n_in++] = (sdc_onnx_port){sdc_g_input(&g, "input_ids", 2, s), "input_ids", 1};
        out = (sdc_onnx_port){sdc_clip_build(&g, &m->clip, in[0].value, 1), "last_hidden_state", 0};
    } else if (part == SDC_EXPORT_UNET) {
        int64_t xs[4] = {1, m->unet.in_ch, h, w}, ts[1] = {1}, es[2] = {1, m->unet.time_dim},
                cs[3] = {1, SDC_CLIP_CTX, m->unet.ctx_dim};
        in[n_in++] = (sdc_onnx_port){sdc_g_input(&g, "sample", 4, xs), "sample", 0};
        in[n_in++] = (sdc_onnx_port){sdc_g_input(&g, "encoder_hidden_states", 3, cs), "encoder_hidden_states", 0};
        if (o->timestep_input) in[n_in++] = (sdc_onnx_port){sdc_g_input(&g, "timestep", 1, ts), "timestep", 0};
        else in[n_in++] = (sdc_onnx_port){sdc_g_input(&g, "temb", 2, es), TEMB_NAME, 0};
        int v = sdc_unet_build(&g, &m->unet, in[0].value, o->timestep_input ? in[2].value : -1, in[1].value,
                               o->timestep_input ? -1 : in[2].value);
        out = (sdc_onnx_port){v, "out_sample", 0};
    } else {
        int64_t zs[4] = {1, m->vae.z_ch, h, w};
        in[n_in++] = (sdc_onnx_port){sdc_g_input(&g, "latent", 4, zs), "latent", 0};
        out = (sdc_onnx_port){sdc_vae_decoder_build(&g, &m->vae, in[0].value), "sample", 0};
    }
    sdc_status s;
    if (!sdc_graph_ok(&g) || out.value < 0)
        s = sdc_fail(err, g.err.code != SDC_OK ? g.err.code : SDC_E_FORMAT, "%s: %s", path,
                     g.err.msg[0] ? g.err.msg : "cannot build the graph");
    else
        s = sdc_onnx_export(&g, in, n_in, out, path, o->external | (o->fp16 ? SDC_ONNX_FP16 : 0), used_external, err);
    sdc_graph_free(&g);
    return s;
}

const char *sdc_export_ort_scripts(char *buf, size_t cap) {
    const char *env = getenv("SDC_ORT_SCRIPTS");
#ifdef SDC_DATA_DIR
    const char *dir = env && *env ? env : SDC_DATA_DIR "/../tests/ort";
#else
    const char *dir = env && *env ? env : "tests/ort";
#endif
    char probe[4200];
    if (snprintf(probe, sizeof probe, "%s/run_export.js", dir) >= (int)sizeof probe || access(probe, R_OK) != 0) return NULL;
    if (snprintf(buf, cap, "%s", dir) >= (int)cap) return NULL;
    return buf;
}
