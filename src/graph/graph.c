/* src/graph/graph.c: graph construction with shape inference and sticky errors. */
#include "graph/graph.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sdc_op_names[SDC_OP_COUNT] = {
    [SDC_OP_INPUT] = "input",         [SDC_OP_WEIGHT] = "weight",
    [SDC_OP_LINEAR] = "linear",       [SDC_OP_CONV2D] = "conv2d",
    [SDC_OP_GROUP_NORM] = "group_norm", [SDC_OP_LAYER_NORM] = "layer_norm",
    [SDC_OP_ATTENTION] = "attention", [SDC_OP_GEGLU] = "geglu",
    [SDC_OP_SILU] = "silu",           [SDC_OP_QUICK_GELU] = "quick_gelu",
    [SDC_OP_ADD] = "add",             [SDC_OP_ADD_CHANNEL] = "add_channel",
    [SDC_OP_SCALE] = "scale",         [SDC_OP_CONCAT_C] = "concat",
    [SDC_OP_UPSAMPLE] = "upsample",   [SDC_OP_NCHW_TO_NLC] = "nchw_to_nlc",
    [SDC_OP_NLC_TO_NCHW] = "nlc_to_nchw", [SDC_OP_EMBEDDING] = "embedding",
    [SDC_OP_TIMESTEP_EMBED] = "timestep_embed",
};
_Static_assert(SDC_OP_COUNT == 19, "update sdc_op_names");

const char *sdc_shape_str(int ndim, const int64_t *shape, char *buf, size_t len) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}

void sdc_graph_init(sdc_graph *g, const sdc_st_file *weights, const char *prefix) {
    memset(g, 0, sizeof *g);
    g->weights = weights;
    g->prefix = prefix ? prefix : "";
}

void sdc_graph_free(sdc_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_owned; i++) free(g->owned[i]);
    free(g->owned);
    free(g->nodes);
    memset(g, 0, sizeof *g);
}

static int fail(sdc_graph *g, sdc_status code, const char *fmt, ...) {
    if (g->err.code != SDC_OK) return -1; /* keep the first error */
    va_list ap;
    va_start(ap, fmt);
    g->err.code = code;
    vsnprintf(g->err.msg, sizeof g->err.msg, fmt, ap);
    va_end(ap);
    return -1;
}

int sdc_g_fail(sdc_graph *g, sdc_status code, const char *fmt, ...) {
    if (g->err.code != SDC_OK) return -1;
    va_list ap;
    va_start(ap, fmt);
    g->err.code = code;
    vsnprintf(g->err.msg, sizeof g->err.msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* Makes room for one more node without moving the array during the next push(). */
static int reserve(sdc_graph *g) {
    if (g->n_nodes < g->cap_nodes) return 0;
    int cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
    sdc_node *n = realloc(g->nodes, (size_t)cap * sizeof *n);
    if (!n) return fail(g, SDC_E_NOMEM, "graph: out of memory at %d nodes", g->n_nodes);
    g->nodes = n;
    g->cap_nodes = cap;
    return 0;
}

/* Appends a node with the given op and inputs; the caller fills shape and parameters. */
static sdc_node *push(sdc_graph *g, sdc_op op, int n_in, const int *in) {
    if (g->err.code != SDC_OK) return NULL;
    for (int i = 0; i < n_in; i++)
        if (in[i] < -1 || in[i] >= g->n_nodes) {
            fail(g, SDC_E_INVALID_ARG, "graph: %s: bad input id %d", sdc_op_names[op], in[i]);
            return NULL;
        }
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 256;
        sdc_node *n = realloc(g->nodes, (size_t)cap * sizeof *n);
        if (!n) {
            fail(g, SDC_E_NOMEM, "graph: out of memory at %d nodes", g->n_nodes);
            return NULL;
        }
        g->nodes = n;
        g->cap_nodes = cap;
    }
    sdc_node *n = &g->nodes[g->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->n_in = n_in;
    for (int i = 0; i < SDC_MAX_INPUTS; i++) n->in[i] = i < n_in ? in[i] : -1;
    n->dtype = SDC_F32;
    return n;
}

static inline int id_of(const sdc_graph *g, const sdc_node *n) { return (int)(n - g->nodes); }
static inline const sdc_node *N(const sdc_graph *g, int v) { return &g->nodes[v]; }

static void set_shape(sdc_node *n, int ndim, const int64_t *shape) {
    n->ndim = ndim;
    for (int i = 0; i < ndim; i++) n->shape[i] = shape[i];
}

static int own(sdc_graph *g, void *p) {
    if (g->n_owned == g->cap_owned) {
        int cap = g->cap_owned ? g->cap_owned * 2 : 64;
        void **o = realloc(g->owned, (size_t)cap * sizeof *o);
        if (!o) return -1;
        g->owned = o;
        g->cap_owned = cap;
    }
    g->owned[g->n_owned++] = p;
    return 0;
}

/* ---------------------------------------------------------------- leaves */

int sdc_g_input(sdc_graph *g, const char *name, int ndim, const int64_t *shape) {
    sdc_node *n = push(g, SDC_OP_INPUT, 0, NULL);
    if (!n) return -1;
    set_shape(n, ndim, shape);
    snprintf(n->name, sizeof n->name, "%s", name);
    return id_of(g, n);
}

static const sdc_st_tensor *lookup(const sdc_graph *g, const char *name) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", g->prefix, name);
    const sdc_st_tensor *t = g->overlay ? sdc_overlay_find(g->overlay, full) : NULL;
    if (t) return t;
    return g->weights ? sdc_st_find(g->weights, full) : NULL;
}

int sdc_g_has(const sdc_graph *g, const char *name) { return lookup(g, name) != NULL; }

int sdc_g_weight_shape(const sdc_graph *g, const char *name, int64_t shape[SDC_MAX_DIMS]) {
    const sdc_st_tensor *t = lookup(g, name);
    if (!t || t->ndim > SDC_MAX_DIMS) return 0;
    for (int i = 0; i < t->ndim; i++) shape[i] = t->shape[i];
    return t->ndim;
}

static int weight_common(sdc_graph *g, const char *name, int ndim, const int64_t *shape, int to_f32) {
    if (g->err.code != SDC_OK) return -1;
    const sdc_st_tensor *t = lookup(g, name);
    if (!t) return fail(g, SDC_E_FORMAT, "%s: missing tensor '%s%s'",
                        g->weights ? sdc_st_path(g->weights) : "model", g->prefix, name);
    if (!sdc_dtype_table[t->dtype].is_float || t->dtype == SDC_F64)
        return fail(g, SDC_E_FORMAT, "%s: tensor '%s%s' has dtype %s, expected F32, F16 or BF16",
                    sdc_st_path(g->weights), g->prefix, name, sdc_dtype_table[t->dtype].name);
    if (t->ndim > SDC_MAX_DIMS)
        return fail(g, SDC_E_FORMAT, "%s: tensor '%s%s' has %d dimensions",
                    sdc_st_path(g->weights), g->prefix, name, t->ndim);
    if (ndim > 0) {
        int ok = t->ndim == ndim;
        for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
        if (!ok) {
            char a[64], b[64];
            return fail(g, SDC_E_FORMAT, "%s: tensor '%s%s' has shape %s, expected %s",
                        sdc_st_path(g->weights), g->prefix, name,
                        sdc_shape_str(t->ndim, t->shape, a, sizeof a),
                        sdc_shape_str(ndim, shape, b, sizeof b));
        }
    }
    sdc_node *n = push(g, SDC_OP_WEIGHT, 0, NULL);
    if (!n) return -1;
    set_shape(n, t->ndim, t->shape);
    snprintf(n->name, sizeof n->name, "%s", name);
    n->dtype = t->dtype;
    n->data = t->data;
    size_t es = sdc_dtype_table[t->dtype].size;
    if (!to_f32 && ((uintptr_t)t->data % es) != 0) {
        /* safetensors does not align tensor data; kernels read elements directly, so a
         * misaligned tensor gets an aligned copy (never the case for files written by torch) */
        void *copy = malloc(t->nbytes + 1);
        if (!copy || own(g, copy)) {
            free(copy);
            return fail(g, SDC_E_NOMEM, "graph: out of memory copying '%s'", name);
        }
        memcpy(copy, t->data, t->nbytes);
        n->data = copy;
    }
    if (to_f32 && (t->dtype != SDC_F32 || ((uintptr_t)t->data % 4) != 0)) {
        float *f = malloc((size_t)t->numel * sizeof(float) + 1);
        if (!f || own(g, f)) {
            free(f);
            return fail(g, SDC_E_NOMEM, "graph: out of memory converting '%s'", name);
        }
        sdc_convert_to_f32(f, t->data, t->dtype, (size_t)t->numel); /* byte-wise: alignment-safe */
        n->data = f;
        n->dtype = SDC_F32;
    }
    return id_of(g, n);
}

int sdc_g_weight(sdc_graph *g, const char *name, int ndim, const int64_t *shape) {
    return weight_common(g, name, ndim, shape, 0);
}

int sdc_g_weight_f32(sdc_graph *g, const char *name, int ndim, const int64_t *shape) {
    return weight_common(g, name, ndim, shape, 1);
}

/* ---------------------------------------------------------------- ops */

#define NEED(cond, ...)                                                                            \
    do {                                                                                           \
        if (!(cond)) return fail(g, SDC_E_FORMAT, __VA_ARGS__);                                    \
    } while (0)
#define VALID(v) ((v) >= 0 && (v) < g->n_nodes)
/* Validates the inputs and reserves room for one more node, so that node pointers taken after
 * this (const sdc_node *X = N(g, x)) stay valid across the push() that follows. */
#define CHECK_INPUTS(...)                                                                          \
    do {                                                                                           \
        int ins_[] = {__VA_ARGS__};                                                                \
        for (size_t i_ = 0; i_ < sizeof ins_ / sizeof ins_[0]; i_++)                               \
            if (!VALID(ins_[i_])) return -1;                                                       \
        if (g->err.code != SDC_OK || reserve(g) != 0) return -1;                                   \
    } while (0)

int sdc_g_linear(sdc_graph *g, int x, int w, int b) {
    CHECK_INPUTS(x, w);
    if (b != -1 && !VALID(b)) return -1;
    const sdc_node *X = N(g, x), *W = N(g, w);
    NEED(W->ndim == 2 || (W->ndim == 4 && W->shape[2] == 1 && W->shape[3] == 1),
         "linear '%s': weight must be [N, K] (or a 1x1 conv)", W->name);
    int64_t n_out = W->shape[0], k = W->shape[1];
    NEED(X->shape[X->ndim - 1] == k, "linear '%s': input has %lld features, weight expects %lld",
         W->name, (long long)X->shape[X->ndim - 1], (long long)k);
    if (b >= 0) NEED(sdc_node_numel(N(g, b)) == n_out, "linear '%s': bias size mismatch", W->name);
    int in[3] = {x, w, b};
    sdc_node *n = push(g, SDC_OP_LINEAR, 3, in);
    if (!n) return -1;
    set_shape(n, X->ndim, X->shape);
    n->shape[n->ndim - 1] = n_out;
    return id_of(g, n);
}

int sdc_g_conv2d(sdc_graph *g, int x, int w, int b, int stride, int pad) {
    CHECK_INPUTS(x, w);
    if (b != -1 && !VALID(b)) return -1;
    const sdc_node *X = N(g, x), *W = N(g, w);
    NEED(X->ndim == 4 && W->ndim == 4, "conv2d '%s': expects [B, C, H, W] and [O, C, kh, kw]", W->name);
    NEED(X->shape[1] == W->shape[1], "conv2d '%s': input has %lld channels, weight expects %lld",
         W->name, (long long)X->shape[1], (long long)W->shape[1]);
    int64_t ho = (X->shape[2] + 2 * pad - W->shape[2]) / stride + 1;
    int64_t wo = (X->shape[3] + 2 * pad - W->shape[3]) / stride + 1;
    NEED(ho > 0 && wo > 0, "conv2d '%s': input too small", W->name);
    if (b >= 0) NEED(sdc_node_numel(N(g, b)) == W->shape[0], "conv2d '%s': bias size mismatch", W->name);
    int in[3] = {x, w, b};
    sdc_node *n = push(g, SDC_OP_CONV2D, 3, in);
    if (!n) return -1;
    int64_t s[4] = {X->shape[0], W->shape[0], ho, wo};
    set_shape(n, 4, s);
    n->ip[0] = stride;
    n->ip[1] = pad;
    return id_of(g, n);
}

int sdc_g_group_norm(sdc_graph *g, int x, int gamma, int beta, int groups, float eps, int silu) {
    CHECK_INPUTS(x, gamma, beta);
    const sdc_node *X = N(g, x);
    NEED(X->ndim >= 2 && groups > 0 && X->shape[1] % groups == 0,
         "group_norm '%s': %lld channels do not split into %d groups", N(g, gamma)->name,
         (long long)X->shape[1], groups);
    NEED(sdc_node_numel(N(g, gamma)) == X->shape[1] && sdc_node_numel(N(g, beta)) == X->shape[1],
         "group_norm '%s': parameter size mismatch", N(g, gamma)->name);
    NEED(N(g, gamma)->dtype == SDC_F32 && N(g, beta)->dtype == SDC_F32,
         "group_norm: parameters must be f32 (use sdc_g_weight_f32)");
    int in[3] = {x, gamma, beta};
    sdc_node *n = push(g, SDC_OP_GROUP_NORM, 3, in);
    if (!n) return -1;
    set_shape(n, X->ndim, X->shape);
    n->ip[0] = groups;
    n->ip[1] = silu;
    n->fp[0] = eps;
    return id_of(g, n);
}

int sdc_g_layer_norm(sdc_graph *g, int x, int gamma, int beta, float eps) {
    CHECK_INPUTS(x, gamma, beta);
    const sdc_node *X = N(g, x);
    int64_t d = X->shape[X->ndim - 1];
    NEED(sdc_node_numel(N(g, gamma)) == d && sdc_node_numel(N(g, beta)) == d,
         "layer_norm '%s': parameter size mismatch", N(g, gamma)->name);
    NEED(N(g, gamma)->dtype == SDC_F32 && N(g, beta)->dtype == SDC_F32,
         "layer_norm: parameters must be f32 (use sdc_g_weight_f32)");
    int in[3] = {x, gamma, beta};
    sdc_node *n = push(g, SDC_OP_LAYER_NORM, 3, in);
    if (!n) return -1;
    set_shape(n, X->ndim, X->shape);
    n->fp[0] = eps;
    return id_of(g, n);
}

int sdc_g_attention(sdc_graph *g, int q, int k, int v, int heads, int causal) {
    CHECK_INPUTS(q, k, v);
    const sdc_node *Q = N(g, q), *K = N(g, k), *V = N(g, v);
    NEED(Q->ndim == 3 && K->ndim == 3 && V->ndim == 3, "attention: q, k, v must be [B, N, C]");
    NEED(Q->shape[0] == K->shape[0] && K->shape[0] == V->shape[0] && K->shape[1] == V->shape[1],
         "attention: batch or key count mismatch");
    NEED(heads > 0 && Q->shape[2] == K->shape[2] && Q->shape[2] % heads == 0 && V->shape[2] % heads == 0,
         "attention: %lld channels do not split into %d heads", (long long)Q->shape[2], heads);
    NEED(!causal || Q->shape[1] == K->shape[1], "attention: causal mask needs Nq == Nk");
    int in[3] = {q, k, v};
    sdc_node *n = push(g, SDC_OP_ATTENTION, 3, in);
    if (!n) return -1;
    int64_t s[3] = {Q->shape[0], Q->shape[1], V->shape[2]};
    set_shape(n, 3, s);
    n->ip[0] = heads;
    n->ip[1] = causal;
    return id_of(g, n);
}

static int unary(sdc_graph *g, sdc_op op, int x) {
    CHECK_INPUTS(x);
    int in[1] = {x};
    sdc_node *n = push(g, op, 1, in);
    if (!n) return -1;
    set_shape(n, N(g, x)->ndim, N(g, x)->shape);
    return id_of(g, n);
}

int sdc_g_silu(sdc_graph *g, int x) { return unary(g, SDC_OP_SILU, x); }
int sdc_g_quick_gelu(sdc_graph *g, int x) { return unary(g, SDC_OP_QUICK_GELU, x); }

int sdc_g_geglu(sdc_graph *g, int x) {
    CHECK_INPUTS(x);
    NEED(N(g, x)->shape[N(g, x)->ndim - 1] % 2 == 0, "geglu: odd feature count");
    int v = unary(g, SDC_OP_GEGLU, x);
    if (v >= 0) g->nodes[v].shape[g->nodes[v].ndim - 1] /= 2;
    return v;
}

int sdc_g_scale(sdc_graph *g, int x, float s) {
    int v = unary(g, SDC_OP_SCALE, x);
    if (v >= 0) g->nodes[v].fp[0] = s;
    return v;
}

int sdc_g_add(sdc_graph *g, int a, int b) {
    CHECK_INPUTS(a, b);
    const sdc_node *A = N(g, a), *B = N(g, b);
    int ok = B->ndim <= A->ndim;
    for (int i = 0; ok && i < B->ndim; i++) ok = B->shape[B->ndim - 1 - i] == A->shape[A->ndim - 1 - i];
    if (!ok) {
        char s1[64], s2[64];
        return fail(g, SDC_E_INVALID_ARG, "add: shapes %s and %s do not match",
                    sdc_shape_str(A->ndim, A->shape, s1, sizeof s1),
                    sdc_shape_str(B->ndim, B->shape, s2, sizeof s2));
    }
    NEED(B->dtype == SDC_F32, "add: second operand must be f32");
    int in[2] = {a, b};
    sdc_node *n = push(g, SDC_OP_ADD, 2, in);
    if (!n) return -1;
    set_shape(n, A->ndim, A->shape);
    return id_of(g, n);
}

int sdc_g_add_channel(sdc_graph *g, int x, int v) {
    CHECK_INPUTS(x, v);
    const sdc_node *X = N(g, x), *V = N(g, v);
    NEED(X->ndim == 4 && V->ndim == 2 && V->shape[0] == X->shape[0] && V->shape[1] == X->shape[1],
         "add_channel: expects [B, C, H, W] and [B, C]");
    int in[2] = {x, v};
    sdc_node *n = push(g, SDC_OP_ADD_CHANNEL, 2, in);
    if (!n) return -1;
    set_shape(n, 4, X->shape);
    return id_of(g, n);
}

int sdc_g_concat_c(sdc_graph *g, int a, int b) {
    CHECK_INPUTS(a, b);
    const sdc_node *A = N(g, a), *B = N(g, b);
    NEED(A->ndim == 4 && B->ndim == 4 && A->shape[0] == B->shape[0] && A->shape[2] == B->shape[2] &&
             A->shape[3] == B->shape[3],
         "concat: [%lld, %lld] and [%lld, %lld] spatial sizes differ", (long long)A->shape[2],
         (long long)A->shape[3], (long long)B->shape[2], (long long)B->shape[3]);
    int in[2] = {a, b};
    sdc_node *n = push(g, SDC_OP_CONCAT_C, 2, in);
    if (!n) return -1;
    set_shape(n, 4, A->shape);
    n->shape[1] = A->shape[1] + B->shape[1];
    return id_of(g, n);
}

int sdc_g_upsample(sdc_graph *g, int x, int64_t out_h, int64_t out_w) {
    CHECK_INPUTS(x);
    NEED(N(g, x)->ndim == 4 && out_h > 0 && out_w > 0, "upsample: expects [B, C, H, W]");
    int v = unary(g, SDC_OP_UPSAMPLE, x);
    if (v >= 0) {
        g->nodes[v].shape[2] = out_h;
        g->nodes[v].shape[3] = out_w;
    }
    return v;
}

int sdc_g_nchw_to_nlc(sdc_graph *g, int x) {
    CHECK_INPUTS(x);
    const sdc_node *X = N(g, x);
    NEED(X->ndim == 4, "nchw_to_nlc: expects [B, C, H, W]");
    int64_t s[3] = {X->shape[0], X->shape[2] * X->shape[3], X->shape[1]};
    int in[1] = {x};
    sdc_node *n = push(g, SDC_OP_NCHW_TO_NLC, 1, in);
    if (!n) return -1;
    set_shape(n, 3, s);
    return id_of(g, n);
}

int sdc_g_nlc_to_nchw(sdc_graph *g, int x, int64_t h, int64_t w) {
    CHECK_INPUTS(x);
    const sdc_node *X = N(g, x);
    NEED(X->ndim == 3 && X->shape[1] == h * w, "nlc_to_nchw: expects [B, H*W, C]");
    int64_t s[4] = {X->shape[0], X->shape[2], h, w};
    int in[1] = {x};
    sdc_node *n = push(g, SDC_OP_NLC_TO_NCHW, 1, in);
    if (!n) return -1;
    set_shape(n, 4, s);
    n->ip[0] = (int)h;
    n->ip[1] = (int)w;
    return id_of(g, n);
}

int sdc_g_embedding(sdc_graph *g, int ids, int table) {
    CHECK_INPUTS(ids, table);
    const sdc_node *I = N(g, ids), *T = N(g, table);
    NEED(I->ndim == 2 && T->ndim == 2, "embedding: expects ids [B, T] and table [V, D]");
    int64_t s[3] = {I->shape[0], I->shape[1], T->shape[1]};
    int in[2] = {ids, table};
    sdc_node *n = push(g, SDC_OP_EMBEDDING, 2, in);
    if (!n) return -1;
    set_shape(n, 3, s);
    return id_of(g, n);
}

int sdc_g_timestep_embed(sdc_graph *g, int t, int dim) {
    CHECK_INPUTS(t);
    NEED(N(g, t)->ndim == 1 && dim > 0 && dim % 2 == 0, "timestep_embed: expects t [B] and an even dim");
    int in[1] = {t};
    sdc_node *n = push(g, SDC_OP_TIMESTEP_EMBED, 1, in);
    if (!n) return -1;
    int64_t s[2] = {N(g, t)->shape[0], dim};
    set_shape(n, 2, s);
    return id_of(g, n);
}

void sdc_g_label(sdc_graph *g, int v, const char *fmt, ...) {
    if (!VALID(v)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->nodes[v].name, sizeof g->nodes[v].name, fmt, ap);
    va_end(ap);
}

void sdc_g_output(sdc_graph *g, int v, const char *label) {
    if (!VALID(v)) return;
    g->nodes[v].is_output = 1;
    if (label) snprintf(g->nodes[v].name, sizeof g->nodes[v].name, "%s", label);
}

int sdc_g_find(const sdc_graph *g, const char *label) {
    for (int i = g->n_nodes - 1; i >= 0; i--)
        if (!strcmp(g->nodes[i].name, label)) return i;
    return -1;
}

/* ---------------------------------------------------------------- FLOP counting */

const char *const sdc_op_kind_names[SDC_KIND_COUNT] = {
    [SDC_KIND_CONV] = "conv", [SDC_KIND_LINEAR] = "linear",
    [SDC_KIND_ATTENTION] = "attention", [SDC_KIND_OTHER] = "other",
};

sdc_op_kind sdc_op_kind_of(sdc_op op) {
    switch (op) {
    case SDC_OP_CONV2D: return SDC_KIND_CONV;
    case SDC_OP_LINEAR: return SDC_KIND_LINEAR;
    case SDC_OP_ATTENTION: return SDC_KIND_ATTENTION;
    default: return SDC_KIND_OTHER;
    }
}

double sdc_node_flops(const sdc_graph *g, int node) {
    if (node < 0 || node >= g->n_nodes) return 0.0;
    const sdc_node *n = &g->nodes[node];
    switch (n->op) {
    case SDC_OP_CONV2D: {
        const sdc_node *w = N(g, n->in[1]); // y [B, O, Ho, Wo], w [O, C, kh, kw]
        return 2.0 * (double)sdc_node_numel(n) * (double)(w->shape[1] * w->shape[2] * w->shape[3]);
    }
    case SDC_OP_LINEAR: {
        const sdc_node *w = N(g, n->in[1]); // y [..., N], w [N, K]
        return 2.0 * (double)sdc_node_numel(n) * (double)w->shape[1];
    }
    case SDC_OP_ATTENTION: {
        // q [B, Nq, H*d], k [B, Nk, H*d], v [B, Nk, H*dv]: Q.K^T is B*Nq*Nk*(H*d) MACs, P.V B*Nq*Nk*(H*dv)
        const sdc_node *q = N(g, n->in[0]), *k = N(g, n->in[1]), *v = N(g, n->in[2]);
        return 2.0 * (double)q->shape[0] * (double)q->shape[1] * (double)k->shape[1] *
               (double)(q->shape[2] + v->shape[2]);
    }
    default: return 0.0;
    }
}

double sdc_graph_flops(const sdc_graph *g, double by_kind[SDC_KIND_COUNT]) {
    double total = 0.0;
    if (by_kind)
        for (int k = 0; k < SDC_KIND_COUNT; k++) by_kind[k] = 0.0;
    for (int i = 0; i < g->n_nodes; i++) {
        double f = sdc_node_flops(g, i);
        total += f;
        if (by_kind) by_kind[sdc_op_kind_of(g->nodes[i].op)] += f;
    }
    return total;
}
