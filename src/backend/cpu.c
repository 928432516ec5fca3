/* src/backend/cpu.c: memory planning and the op dispatch of the CPU backend. */
#include "backend/cpu.h"

#include "core/rss.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/nn.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALIGN_FLOATS 16 /* 64-byte alignment of every buffer in the arena */

static int is_activation(const sdc_node *n) { return n->op != SDC_OP_WEIGHT; }

/* ---------------------------------------------------------------- planning */

typedef struct {
    size_t off, size;
    int value;
} block;

sdc_status sdc_cpu_plan_new(const sdc_graph *g, sdc_cpu_plan *p, sdc_error *err) {
    memset(p, 0, sizeof *p);
    p->g = g;
    int n = g->n_nodes;
    int *last_use = malloc((size_t)n * sizeof(int));
    p->offset = malloc((size_t)n * sizeof(size_t));
    block *live = malloc((size_t)n * sizeof(block));
    if (!last_use || !p->offset || !live) {
        free(last_use);
        free(live);
        sdc_cpu_plan_free(p);
        return sdc_fail(err, SDC_E_NOMEM, "cpu backend: out of memory planning %d nodes", n);
    }
    for (int i = 0; i < n; i++) {
        /* outputs are read after the run; inputs are filled once and may be reused by several
         * runs (the text conditioning stays in place for every sampling step) */
        last_use[i] = g->nodes[i].is_output || g->nodes[i].op == SDC_OP_INPUT ? n : i;
        p->offset[i] = SIZE_MAX;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) {
            int v = g->nodes[i].in[j];
            if (v >= 0 && last_use[v] < i) last_use[v] = i;
        }

    int n_live = 0;
    size_t peak = 0;
    /* Inputs are written before the run starts, so they are placed first and live from node 0. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            const sdc_node *nd = &g->nodes[i];
            if (!is_activation(nd) || (pass == 0) != (nd->op == SDC_OP_INPUT)) continue;
            size_t size = (size_t)sdc_node_numel(nd);
            size = (size + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
            if (size == 0) size = ALIGN_FLOATS;
            /* first fit among the gaps of the live blocks (kept sorted by offset) */
            size_t off = 0;
            int pos = 0;
            for (; pos < n_live; pos++) {
                if (live[pos].off >= off + size) break;
                size_t end = live[pos].off + live[pos].size;
                if (end > off) off = end;
            }
            memmove(live + pos + 1, live + pos, (size_t)(n_live - pos) * sizeof(block));
            live[pos] = (block){off, size, i};
            n_live++;
            p->offset[i] = off;
            if (off + size > peak) peak = off + size;
            if (pass == 1) {
                /* release the buffers whose last consumer is this node (never inputs of a run
                 * that later nodes might read: last_use covers those) */
                for (int k = 0; k < n_live;) {
                    int v = live[k].value;
                    if (last_use[v] <= i && v != i) {
                        memmove(live + k, live + k + 1, (size_t)(n_live - k - 1) * sizeof(block));
                        n_live--;
                    } else
                        k++;
                }
            }
        }
    free(live);
    free(last_use);
    p->arena_floats = peak;
    p->arena = aligned_alloc(64, (peak ? peak : ALIGN_FLOATS) * sizeof(float));
    if (!p->arena) {
        sdc_cpu_plan_free(p);
        return sdc_fail(err, SDC_E_NOMEM, "cpu backend: cannot allocate a %.1f MB activation arena",
                        (double)peak * 4.0 / 1e6);
    }
    return SDC_OK;
}

void sdc_cpu_plan_free(sdc_cpu_plan *p) {
    if (!p) return;
    free(p->offset);
    free(p->arena);
    free(p->scratch);
    memset(p, 0, sizeof *p);
}

float *sdc_cpu_value(const sdc_cpu_plan *p, int v) {
    if (v < 0 || v >= p->g->n_nodes) return NULL;
    const sdc_node *n = &p->g->nodes[v];
    if (n->op == SDC_OP_WEIGHT) return n->dtype == SDC_F32 ? (float *)n->data : NULL;
    return p->arena + p->offset[v];
}

/* ---------------------------------------------------------------- running */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static sdc_status run_node(sdc_cpu_plan *p, sdc_pool *pool, int i, sdc_error *err) {
    const sdc_graph *g = p->g;
    const sdc_node *n = &g->nodes[i];
    float *y = sdc_cpu_value(p, i);
    const sdc_node *in0 = n->n_in > 0 && n->in[0] >= 0 ? &g->nodes[n->in[0]] : NULL;
    const float *x = in0 ? sdc_cpu_value(p, n->in[0]) : NULL;
#define IN(k) (n->in[k] >= 0 ? sdc_cpu_value(p, n->in[k]) : NULL)
    switch (n->op) {
    case SDC_OP_INPUT:
    case SDC_OP_WEIGHT:
        return SDC_OK;
    case SDC_OP_LINEAR: {
        const sdc_node *w = &g->nodes[n->in[1]];
        int64_t K = w->shape[1], N = w->shape[0], M = sdc_node_numel(in0) / K;
        // y[M, N] = x[M, K] . W[N, K]^T + b[N]
        sdc_gemm_args a = {.M = (int)M, .N = (int)N, .K = (int)K, .A = {x, SDC_F32, K, 1},
                           .B = {w->data, w->dtype, 1, K}, .C = y, .ldc = N, .bias_col = IN(2)};
        sdc_gemm(pool, &a);
        return SDC_OK;
    }
    case SDC_OP_CONV2D: {
        const sdc_node *w = &g->nodes[n->in[1]];
        int64_t B = in0->shape[0], C = in0->shape[1], H = in0->shape[2], W = in0->shape[3];
        int64_t O = n->shape[1];
        /* one call for the whole batch: Winograd transforms each weight block once for all images */
        sdc_conv2d_args a = {.x = x, .C = (int)C, .H = (int)H, .W = (int)W, .batch = (int)B,
                             .w = w->data, .wdtype = w->dtype, .O = (int)O,
                             .kh = (int)w->shape[2], .kw = (int)w->shape[3], .bias = IN(2),
                             .stride = n->ip[0], .pad = n->ip[1], .y = y};
        if (sdc_conv2d(pool, &a) != 0)
            return sdc_fail(err, SDC_E_NOMEM, "conv2d %s: out of memory for scratch", w->name);
        return SDC_OK;
    }
    case SDC_OP_GROUP_NORM: {
        int64_t S = sdc_node_numel(in0) / (in0->shape[0] * in0->shape[1]);
        sdc_group_norm(pool, x, y, in0->shape[0], in0->shape[1], S, n->ip[0], n->fp[0], IN(1), IN(2),
                       n->ip[1]);
        return SDC_OK;
    }
    case SDC_OP_LAYER_NORM: {
        int64_t D = in0->shape[in0->ndim - 1];
        sdc_layer_norm(pool, x, y, sdc_node_numel(in0) / D, D, n->fp[0], IN(1), IN(2));
        return SDC_OK;
    }
    case SDC_OP_ATTENTION: {
        const sdc_node *k = &g->nodes[n->in[1]], *v = &g->nodes[n->in[2]];
        int heads = n->ip[0];
        int64_t d = in0->shape[2] / heads, dv = v->shape[2] / heads;
        size_t need = sdc_attention_scratch_floats(sdc_pool_size(pool), k->shape[1], heads, d, dv);
        if (need > p->scratch_floats) { /* the first run only: later runs reuse it */
            free(p->scratch);
            p->scratch_floats = 0;
            p->scratch = need < SIZE_MAX / sizeof(float) ? malloc(need * sizeof(float)) : NULL;
            if (!p->scratch)
                return sdc_fail(err, SDC_E_NOMEM, "attention: out of memory for %zu floats of scratch",
                                need);
            p->scratch_floats = need;
        }
        if (sdc_attention(pool, x, IN(1), IN(2), y, in0->shape[0], in0->shape[1], k->shape[1], heads,
                          d, dv, n->ip[1], p->scratch, p->scratch_floats) != 0)
            return sdc_fail(err, SDC_E_INVALID_ARG, "attention: invalid shapes (node %d)", i);
        return SDC_OK;
    }
    case SDC_OP_GEGLU: {
        int64_t F = n->shape[n->ndim - 1];
        sdc_geglu(pool, x, y, sdc_node_numel(n) / F, F);
        return SDC_OK;
    }
    case SDC_OP_SILU: sdc_silu(pool, x, y, sdc_node_numel(n)); return SDC_OK;
    case SDC_OP_QUICK_GELU: sdc_quick_gelu(pool, x, y, sdc_node_numel(n)); return SDC_OK;
    case SDC_OP_SCALE: sdc_scale(pool, x, y, sdc_node_numel(n), n->fp[0]); return SDC_OK;
    case SDC_OP_ADD:
        sdc_add(pool, x, IN(1), y, sdc_node_numel(n), sdc_node_numel(&g->nodes[n->in[1]]));
        return SDC_OK;
    case SDC_OP_ADD_CHANNEL:
        sdc_add_channel(pool, x, IN(1), y, n->shape[0], n->shape[1], n->shape[2] * n->shape[3]);
        return SDC_OK;
    case SDC_OP_CONCAT_C: {
        const sdc_node *b = &g->nodes[n->in[1]];
        sdc_concat_c(pool, x, IN(1), y, n->shape[0], in0->shape[1], b->shape[1],
                     n->shape[2] * n->shape[3]);
        return SDC_OK;
    }
    case SDC_OP_UPSAMPLE:
        sdc_upsample_nearest(pool, x, y, in0->shape[0], in0->shape[1], in0->shape[2], in0->shape[3],
                             n->shape[2], n->shape[3]);
        return SDC_OK;
    case SDC_OP_NCHW_TO_NLC:
        // [B, C, S] -> [B, S, C]
        sdc_transpose_cs(pool, x, y, in0->shape[0], in0->shape[1], in0->shape[2] * in0->shape[3]);
        return SDC_OK;
    case SDC_OP_NLC_TO_NCHW:
        // [B, S, C] -> [B, C, S]: the same transpose with the roles of C and S exchanged
        sdc_transpose_cs(pool, x, y, in0->shape[0], in0->shape[1], in0->shape[2]);
        return SDC_OK;
    case SDC_OP_EMBEDDING: {
        const sdc_node *t = &g->nodes[n->in[1]];
        int64_t V = t->shape[0], D = t->shape[1], count = sdc_node_numel(in0);
        size_t es = sdc_dtype_table[t->dtype].size;
        for (int64_t r = 0; r < count; r++) {
            float idf = x[r];
            if (!(idf >= 0.0f && idf < (float)V) || idf != (float)(int64_t)idf)
                return sdc_fail(err, SDC_E_INVALID_ARG, "embedding %s: token id %g outside 0..%lld",
                                t->name, (double)idf, (long long)(V - 1));
            sdc_convert_to_f32(y + r * D, (const char *)t->data + (size_t)idf * (size_t)D * es,
                               t->dtype, (size_t)D);
        }
        return SDC_OK;
    }
    case SDC_OP_TIMESTEP_EMBED:
        sdc_timestep_embedding(x, y, n->shape[0], n->shape[1]);
        return SDC_OK;
    case SDC_OP_COUNT: break;
    }
#undef IN
    return sdc_fail(err, SDC_E_BACKEND, "cpu backend: op %d not supported", (int)n->op);
}

/* Drops the mapped weights this node read (see release_lo in cpu.h). */
static void release_weights(const sdc_cpu_plan *p, const sdc_node *n) {
    for (int j = 0; j < n->n_in; j++) {
        if (n->in[j] < 0) continue;
        const sdc_node *w = &p->g->nodes[n->in[j]];
        const char *d = w->data;
        if (w->op != SDC_OP_WEIGHT || !d || d < p->release_lo || d >= p->release_hi) continue;
        size_t bytes = (size_t)sdc_node_numel(w) * sdc_dtype_table[w->dtype].size;
        if (bytes <= (size_t)(p->release_hi - d)) sdc_pages_release(d, bytes);
    }
}

sdc_status sdc_cpu_run(sdc_cpu_plan *p, sdc_pool *pool, sdc_error *err) {
    for (int i = 0; i < p->g->n_nodes; i++) {
        const sdc_node *n = &p->g->nodes[i];
        if (!is_activation(n) || n->op == SDC_OP_INPUT) continue;
        double t0 = p->observer ? now_seconds() : 0.0;
        SDC_TRY(run_node(p, pool, i, err));
        if (p->observer) p->observer(p->observer_user, p->g, i, sdc_cpu_value(p, i), now_seconds() - t0);
        if (p->release_hi) release_weights(p, n);
    }
    return SDC_OK;
}
