/* src/model/vaelight.c: loading VAEpreview.onnx into four layer chains, and running them
 * (see vaelight.h for the architecture and the contract). */
#define _GNU_SOURCE /* readlink */
#include "model/vaelight.h"

#include "io/png.h"
#include "onnx/onnx_io.h"
#include "ops/gemm.h"
#include "ops/nn_extra.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VL_BRANCHES 4
#define VL_MAX_LAYERS 32      /* per branch */
#define VL_MAX_CHANNELS 1024
#define VL_MAX_PARAMS (8 << 20)
#define VL_MAX_NODES 1024      /* nodes, initializers, inputs: bounds the quadratic lookups */

typedef struct vl_layer {
    int transposed;      /* 0: Conv 3x3 stride 1 pad 1; 1: ConvTranspose 2x2 stride 2 */
    int cin, cout;
    const float *w;      /* Conv [cout, cin, 3, 3]; ConvTranspose [cin, cout, 2, 2] */
    const float *b;      /* [cout] or NULL */
    int act;             /* 1: LeakyReLU follows */
    float alpha;
} vl_layer;

typedef struct vl_branch {
    int scale;           /* 1, 2, 4 or 8: 2^(number of transposed convs) */
    int n;
    vl_layer layers[VL_MAX_LAYERS];
} vl_branch;

struct sdc_vaelight {
    vl_branch br[VL_BRANCHES]; /* sorted by scale: br[k].scale == 1 << k */
    float *weights;            /* every layer's w and b, one allocation */
    int64_t n_params;
};

/* ------------------------------------------------------------------ loading */

/* Load-time context: the file, its graph, and a visited flag per node. */
typedef struct {
    const char *path;
    const Onnx__GraphProto *g;
    unsigned char *seen;
    sdc_error *err;
} vl_load;

static sdc_status refuse(vl_load *L, const Onnx__NodeProto *n, const char *why) {
    return sdc_fail(L->err, SDC_E_UNSUPPORTED,
                    "%s: not the vaelight preview decoder: node '%s' (%s): %s", L->path,
                    n->name && n->name[0] ? n->name : "?", n->op_type ? n->op_type : "?", why);
}

/* ints attribute equal to {v, v} (or absent when absent_ok: the ONNX default). */
static int ints_are(const Onnx__NodeProto *n, const char *name, int64_t v, int absent_ok) {
    const Onnx__AttributeProto *a = sdc_onnx_attr(n, name);
    if (!a) return absent_ok;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS || a->n_ints == 0) return 0;
    for (size_t i = 0; i < a->n_ints; i++)
        if (a->ints[i] != v) return 0;
    return 1;
}

static int is_graph_output(const Onnx__GraphProto *g, const char *v) {
    for (size_t i = 0; i < g->n_output; i++)
        if (g->output[i]->name && strcmp(g->output[i]->name, v) == 0) return 1;
    return 0;
}

/* The nodes that read value v (as any input); returns their count, the first in *first. */
static int consumers(const Onnx__GraphProto *g, const char *v, size_t *first) {
    int k = 0;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t j = 0; j < g->node[i]->n_input; j++)
            if (strcmp(g->node[i]->input[j], v) == 0) {
                if (k++ == 0) *first = i;
                break;
            }
    return k;
}

/* Checks a Conv or ConvTranspose node and fills its layer (weights resolved later). */
static sdc_status check_conv(vl_load *L, const Onnx__NodeProto *n, int transposed, int cin,
                             vl_layer *ly, const Onnx__TensorProto **wt,
                             const Onnx__TensorProto **bt) {
    int k = transposed ? 2 : 3;
    if (n->n_input < 2 || n->n_input > 3) return refuse(L, n, "expected inputs X, W and an optional B");
    *wt = sdc_onnx_initializer(L->g, n->input[1]);
    *bt = n->n_input == 3 && n->input[2][0] ? sdc_onnx_initializer(L->g, n->input[2]) : NULL;
    if (!*wt || (n->n_input == 3 && n->input[2][0] && !*bt))
        return refuse(L, n, "weights must be initializers");
    const Onnx__TensorProto *w = *wt;
    if (w->n_dims != 4 || w->dims[2] != k || w->dims[3] != k)
        return refuse(L, n, transposed ? "expected a 2x2 kernel" : "expected a 3x3 kernel");
    int64_t wi = transposed ? w->dims[0] : w->dims[1], wo = transposed ? w->dims[1] : w->dims[0];
    if (wi != cin) return refuse(L, n, "input channels do not match the previous layer");
    if (wo < 1 || wo > VL_MAX_CHANNELS) return refuse(L, n, "unsupported number of output channels");
    if (*bt && ((*bt)->n_dims != 1 || (*bt)->dims[0] != wo))
        return refuse(L, n, "bias shape does not match the output channels");
    if (!ints_are(n, "kernel_shape", k, 1) || !ints_are(n, "dilations", 1, 1))
        return refuse(L, n, "unsupported kernel_shape or dilations");
    const Onnx__AttributeProto *grp = sdc_onnx_attr(n, "group");
    if (grp && (grp->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT || grp->i != 1))
        return refuse(L, n, "grouped convolution");
    const Onnx__AttributeProto *ap = sdc_onnx_attr(n, "auto_pad");
    const char *autopad = "NOTSET";
    char apbuf[16];
    if (ap) {
        if (ap->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING || ap->s.len >= sizeof apbuf)
            return refuse(L, n, "bad auto_pad");
        memcpy(apbuf, ap->s.data, ap->s.len);
        apbuf[ap->s.len] = 0;
        autopad = apbuf;
    }
    if (transposed) {
        if (!ints_are(n, "strides", 2, 0) || !ints_are(n, "pads", 0, 1) ||
            !ints_are(n, "output_padding", 0, 1) || sdc_onnx_attr(n, "output_shape") ||
            strcmp(autopad, "NOTSET") != 0)
            return refuse(L, n, "expected stride 2, no padding, no output_padding or output_shape");
    } else {
        int same = strcmp(autopad, "SAME_UPPER") == 0 || strcmp(autopad, "SAME_LOWER") == 0;
        int explicit_pad = strcmp(autopad, "NOTSET") == 0 && ints_are(n, "pads", 1, 0);
        if (!ints_are(n, "strides", 1, 1) || !(same || explicit_pad))
            return refuse(L, n, "expected stride 1 and same padding");
        if (same && sdc_onnx_attr(n, "pads")) return refuse(L, n, "both auto_pad and pads");
    }
    ly->transposed = transposed;
    ly->cin = cin;
    ly->cout = (int)wo;
    return SDC_OK;
}

/* Follows the chain that starts at the input's consumer `start` to a graph output. */
static sdc_status walk_branch(vl_load *L, size_t start, vl_branch *br,
                              const Onnx__TensorProto *wts[][2]) {
    const Onnx__GraphProto *g = L->g;
    size_t idx = start;
    int ch = 4, n_up = 0;
    memset(br, 0, sizeof *br);
    for (;;) {
        const Onnx__NodeProto *n = g->node[idx];
        if (L->seen[idx]) return refuse(L, n, "reached twice (the chains must not merge)");
        L->seen[idx] = 1;
        if (n->n_output != 1) return refuse(L, n, "expected one output");
        const char *op = n->op_type ? n->op_type : "";
        if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
            return refuse(L, n, "custom operator domain");
        if (strcmp(op, "Conv") == 0 || strcmp(op, "ConvTranspose") == 0) {
            if (br->n == VL_MAX_LAYERS) return refuse(L, n, "too many layers in one chain");
            int t = op[4] == 'T';
            vl_layer *ly = &br->layers[br->n];
            SDC_TRY(check_conv(L, n, t, ch, ly, &wts[br->n][0], &wts[br->n][1]));
            br->n++;
            ch = ly->cout;
            n_up += t;
            if (n_up > 3) return refuse(L, n, "more than three ConvTranspose in one chain");
        } else if (strcmp(op, "LeakyRelu") == 0) {
            if (br->n == 0 || br->layers[br->n - 1].act)
                return refuse(L, n, "LeakyRelu must follow a Conv or ConvTranspose");
            if (n->n_input != 1) return refuse(L, n, "expected one input");
            const Onnx__AttributeProto *a = sdc_onnx_attr(n, "alpha");
            if (a && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
                return refuse(L, n, "bad alpha");
            br->layers[br->n - 1].act = 1;
            br->layers[br->n - 1].alpha = a ? a->f : 0.01f;
        } else {
            return refuse(L, n, "only Conv 3x3, ConvTranspose 2x2/2 and LeakyRelu are accepted");
        }
        const char *v = n->output[0];
        size_t next = 0;
        int nc = consumers(g, v, &next);
        if (nc == 0) {
            if (!is_graph_output(g, v)) return refuse(L, n, "its output is never used");
            break;
        }
        if (nc > 1 || is_graph_output(g, v))
            return refuse(L, n, "the chain forks (an output read twice)");
        const Onnx__NodeProto *nx = g->node[next];
        if (nx->n_input < 1 || strcmp(nx->input[0], v) != 0)
            return refuse(L, nx, "reads a layer output as a weight");
        idx = next;
    }
    if (ch != 3 || br->layers[br->n - 1].transposed)
        return refuse(L, g->node[idx], "a chain must end in a Conv with 3 output channels");
    br->scale = 1 << n_up;
    return SDC_OK;
}

/* The graph's one data input (inputs that are not initializers): float, [N, 4, H, W]. */
static sdc_status find_input(vl_load *L, const char **name) {
    const Onnx__GraphProto *g = L->g;
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < g->n_input; i++) {
        if (sdc_onnx_initializer(g, g->input[i]->name)) continue;
        if (in) return sdc_fail(L->err, SDC_E_UNSUPPORTED,
                                "%s: not the vaelight preview decoder: more than one input", L->path);
        in = g->input[i];
    }
    if (!in || !in->name)
        return sdc_fail(L->err, SDC_E_UNSUPPORTED, "%s: not the vaelight preview decoder: no input", L->path);
    const Onnx__TypeProto *t = in->type;
    if (t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && t->tensor_type) {
        const Onnx__TypeProto__Tensor *tt = t->tensor_type;
        const Onnx__TensorShapeProto *s = tt->shape;
        int bad_type = tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        int bad_rank = s && s->n_dim != 4;
        int bad_ch = s && s->n_dim == 4 &&
                     s->dim[1]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                     s->dim[1]->dim_value != 4;
        if (bad_type || bad_rank || bad_ch)
            return sdc_fail(L->err, SDC_E_UNSUPPORTED,
                            "%s: not the vaelight preview decoder: input '%s' is not a float [N, 4, H, W] latent",
                            L->path, in->name);
    } else if (t) {
        return sdc_fail(L->err, SDC_E_UNSUPPORTED,
                        "%s: not the vaelight preview decoder: input '%s' is not a tensor", L->path, in->name);
    }
    *name = in->name;
    return SDC_OK;
}

static sdc_status build(vl_load *L, sdc_vaelight *d) {
    const Onnx__GraphProto *g = L->g;
    if (g->n_node > VL_MAX_NODES || g->n_initializer > VL_MAX_NODES || g->n_input > VL_MAX_NODES)
        return sdc_fail(L->err, SDC_E_UNSUPPORTED,
                        "%s: not the vaelight preview decoder: %zu nodes, %zu initializers", L->path,
                        g->n_node, g->n_initializer);
    const char *input = NULL;
    SDC_TRY(find_input(L, &input));
    if (g->n_output != VL_BRANCHES)
        return sdc_fail(L->err, SDC_E_UNSUPPORTED,
                        "%s: not the vaelight preview decoder: %zu outputs, expected 4", L->path,
                        g->n_output);
    /* The input's consumers start the chains. */
    size_t starts[VL_BRANCHES];
    int n_starts = 0;
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t j = 0; j < g->node[i]->n_input; j++)
            if (strcmp(g->node[i]->input[j], input) == 0) {
                if (j != 0) return refuse(L, g->node[i], "reads the latent as a weight");
                if (n_starts == VL_BRANCHES)
                    return sdc_fail(L->err, SDC_E_UNSUPPORTED,
                                    "%s: not the vaelight preview decoder: more than 4 chains start at the input",
                                    L->path);
                starts[n_starts++] = i;
            }
    if (n_starts != VL_BRANCHES)
        return sdc_fail(L->err, SDC_E_UNSUPPORTED,
                        "%s: not the vaelight preview decoder: %d chains start at the input, expected 4",
                        L->path, n_starts);
    vl_branch tmp[VL_BRANCHES];
    const Onnx__TensorProto *wts[VL_BRANCHES][VL_MAX_LAYERS][2];
    for (int b = 0; b < VL_BRANCHES; b++) SDC_TRY(walk_branch(L, starts[b], &tmp[b], wts[b]));
    for (size_t i = 0; i < g->n_node; i++)
        if (!L->seen[i]) return refuse(L, g->node[i], "not on a chain from the input to an output");
    /* One chain per scale 1, 2, 4, 8. */
    int where[VL_BRANCHES] = {-1, -1, -1, -1};
    for (int b = 0; b < VL_BRANCHES; b++) {
        int k = __builtin_ctz((unsigned)tmp[b].scale);
        if (where[k] >= 0)
            return sdc_fail(L->err, SDC_E_UNSUPPORTED,
                            "%s: not the vaelight preview decoder: two chains at scale %d", L->path,
                            tmp[b].scale);
        where[k] = b;
    }
    /* Parameters: count, then copy into one buffer. */
    int64_t total = 0;
    for (int b = 0; b < VL_BRANCHES; b++)
        for (int l = 0; l < tmp[b].n; l++) {
            const vl_layer *ly = &tmp[b].layers[l];
            int k = ly->transposed ? 2 : 3;
            total += (int64_t)ly->cout * ly->cin * k * k + (wts[b][l][1] ? ly->cout : 0);
        }
    if (total > VL_MAX_PARAMS)
        return sdc_fail(L->err, SDC_E_LIMIT, "%s: %lld parameters, more than a preview decoder has",
                        L->path, (long long)total);
    d->weights = malloc((size_t)(total ? total : 1) * sizeof(float));
    if (!d->weights) return sdc_fail(L->err, SDC_E_NOMEM, "%s: out of memory", L->path);
    d->n_params = total;
    float *p = d->weights;
    for (int k = 0; k < VL_BRANCHES; k++) {
        int b = where[k];
        d->br[k] = tmp[b];
        for (int l = 0; l < tmp[b].n; l++) {
            vl_layer *ly = &d->br[k].layers[l];
            int kk = ly->transposed ? 2 : 3;
            int64_t nw = (int64_t)ly->cout * ly->cin * kk * kk;
            SDC_TRY(sdc_onnx_tensor_f32(wts[b][l][0], L->path, p, nw, L->err));
            ly->w = p;
            p += nw;
            if (wts[b][l][1]) {
                SDC_TRY(sdc_onnx_tensor_f32(wts[b][l][1], L->path, p, ly->cout, L->err));
                ly->b = p;
                p += ly->cout;
            }
        }
    }
    return SDC_OK;
}

sdc_status sdc_vaelight_load(const char *path, sdc_vaelight **out, sdc_error *err) {
    *out = NULL;
    Onnx__ModelProto *m = NULL;
    SDC_TRY(sdc_onnx_read(path, SDC_VAELIGHT_MAX_FILE_BYTES, &m, err));
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const char *dom = m->opset_import[i]->domain;
        if (dom && dom[0] && strcmp(dom, "ai.onnx") != 0) {
            sdc_fail(err, SDC_E_UNSUPPORTED,
                     "%s: not the vaelight preview decoder: uses operator set '%s'", path, dom);
            sdc_onnx_free(m);
            return SDC_E_UNSUPPORTED;
        }
    }
    sdc_vaelight *d = calloc(1, sizeof *d);
    unsigned char *seen = calloc(m->graph->n_node ? m->graph->n_node : 1, 1);
    sdc_status st;
    if (!d || !seen) {
        st = sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", path);
    } else {
        vl_load L = {path, m->graph, seen, err};
        st = build(&L, d);
    }
    free(seen);
    sdc_onnx_free(m);
    if (st != SDC_OK) {
        sdc_vaelight_free(d);
        return st;
    }
    *out = d;
    return SDC_OK;
}

void sdc_vaelight_free(sdc_vaelight *d) {
    if (!d) return;
    free(d->weights);
    free(d);
}

int64_t sdc_vaelight_params(const sdc_vaelight *d) { return d->n_params; }

int sdc_vaelight_layers(const sdc_vaelight *d) {
    int n = 0;
    for (int k = 0; k < VL_BRANCHES; k++) n += d->br[k].n;
    return n;
}

/* ------------------------------------------------------------------ running */

/* Floats of the largest layer output for an h x w latent (0 on overflow). */
static size_t max_activation(const sdc_vaelight *d, int h, int w) {
    size_t best = 0;
    for (int k = 0; k < VL_BRANCHES; k++) {
        size_t s = 1;
        for (int l = 0; l < d->br[k].n; l++) {
            const vl_layer *ly = &d->br[k].layers[l];
            if (ly->transposed) s *= 2;
            size_t n = sdc_mul_size(sdc_mul_size((size_t)ly->cout, (size_t)h * s), (size_t)w * s);
            if (n == 0) return 0;
            if (n > best) best = n;
        }
    }
    return best;
}

size_t sdc_vaelight_workspace_bytes(const sdc_vaelight *d, int h, int w) {
    if (h < 1 || w < 1 || h > SDC_VAELIGHT_MAX_LATENT || w > SDC_VAELIGHT_MAX_LATENT) return 0;
    return sdc_mul_size(max_activation(d, h, w), 2 * sizeof(float));
}

sdc_status sdc_vaelight_decode_branches(const sdc_vaelight *d, const float *latent_scaled, int h,
                                        int w, float *image, float *branch[4], sdc_pool *pool,
                                        sdc_error *err) {
    if (h < 1 || w < 1 || h > SDC_VAELIGHT_MAX_LATENT || w > SDC_VAELIGHT_MAX_LATENT)
        return sdc_fail(err, SDC_E_INVALID_ARG, "vaelight: latent size %dx%d (1..%d each)", h, w,
                        SDC_VAELIGHT_MAX_LATENT);
    size_t per = max_activation(d, h, w);
    float *buf[2] = {NULL, NULL};
    if (per) {
        buf[0] = malloc(per * sizeof(float));
        buf[1] = malloc(per * sizeof(float));
    }
    if (!buf[0] || !buf[1]) {
        free(buf[0]);
        free(buf[1]);
        return sdc_fail(err, SDC_E_NOMEM, "vaelight: out of memory for 2 x %zu MiB of activations",
                        (per * sizeof(float)) >> 20);
    }
    int64_t Ho = 8 * (int64_t)h, Wo = 8 * (int64_t)w;
    sdc_status st = SDC_OK;
    for (int k = 0; k < VL_BRANCHES && st == SDC_OK; k++) {
        const vl_branch *br = &d->br[k];
        const float *cur = latent_scaled; /* [C, H, W] */
        int C = 4, H = h, W = w, which = 0;
        for (int l = 0; l < br->n; l++) {
            const vl_layer *ly = &br->layers[l];
            float *y = buf[which];
            if (ly->transposed) {
                if (sdc_conv_transpose_k2s2(pool, cur, C, H, W, ly->w, ly->cout, ly->b, y)) {
                    st = sdc_fail(err, SDC_E_NOMEM, "vaelight: out of memory (transposed conv scratch)");
                    break;
                }
                H *= 2;
                W *= 2;
            } else {
                sdc_conv2d_args a = {.x = cur, .C = C, .H = H, .W = W, .w = ly->w,
                                     .wdtype = SDC_F32, .O = ly->cout, .kh = 3, .kw = 3,
                                     .bias = ly->b, .stride = 1, .pad = 1, .y = y};
                if (sdc_conv2d(pool, &a)) {
                    st = sdc_fail(err, SDC_E_NOMEM, "vaelight: out of memory (conv scratch)");
                    break;
                }
            }
            C = ly->cout;
            if (ly->act) sdc_leaky_relu(pool, y, y, (int64_t)C * H * W, ly->alpha);
            cur = y;
            which ^= 1;
        }
        if (st != SDC_OK) break;
        /* cur: [3, scale*h, scale*w] */
        if (branch && branch[k]) memcpy(branch[k], cur, (size_t)3 * H * W * sizeof(float));
        if (!image) continue;
        if (H == Ho && W == Wo) {
            int64_t n = 3 * Ho * Wo;
            if (k == 0) memcpy(image, cur, (size_t)n * sizeof(float));
            else for (int64_t i = 0; i < n; i++) image[i] += cur[i];
        } else {
            sdc_resize_bilinear(pool, cur, image, 3, H, W, Ho, Wo, k > 0);
        }
    }
    if (st == SDC_OK && image) sdc_clip(pool, image, image, 3 * Ho * Wo, -1.0f, 1.0f);
    free(buf[0]);
    free(buf[1]);
    return st;
}

sdc_status sdc_vaelight_decode(const sdc_vaelight *d, const float *latent_scaled, int h, int w,
                               float *image, sdc_pool *pool, sdc_error *err) {
    return sdc_vaelight_decode_branches(d, latent_scaled, h, w, image, NULL, pool, err);
}

sdc_status sdc_vaelight_write_png(const sdc_vaelight *d, const float *latent, int h, int w,
                                  int scaled, const char *path, sdc_pool *pool, sdc_error *err) {
    if (h < 1 || w < 1 || h > SDC_VAELIGHT_MAX_LATENT || w > SDC_VAELIGHT_MAX_LATENT)
        return sdc_fail(err, SDC_E_INVALID_ARG, "vaelight: latent size %dx%d (1..%d each)", h, w,
                        SDC_VAELIGHT_MAX_LATENT);
    size_t nz = (size_t)4 * h * w, ni = (size_t)3 * 64 * h * w;
    float *z = scaled ? NULL : malloc(nz * sizeof(float));
    float *img = malloc(ni * sizeof(float));
    uint8_t *rgb = malloc(ni);
    sdc_status st;
    if ((!scaled && !z) || !img || !rgb) {
        st = sdc_fail(err, SDC_E_NOMEM, "vaelight: out of memory for a %dx%d preview", 8 * w, 8 * h);
    } else {
        if (z)
            for (size_t i = 0; i < nz; i++) z[i] = latent[i] / 0.18215f;
        st = sdc_vaelight_decode(d, z ? z : latent, h, w, img, pool, err);
        if (st == SDC_OK) {
            sdc_image_to_u8(img, 8 * h, 8 * w, rgb);
            st = sdc_png_write(path, rgb, 8 * w, 8 * h, NULL, err);
        }
    }
    free(z);
    free(img);
    free(rgb);
    return st;
}

/* ------------------------------------------------------------------ finding the file */

static int is_file(const char *p) { return access(p, R_OK) == 0; }

sdc_status sdc_vaelight_find(const char *path, char *out, size_t outlen, sdc_error *err) {
    const char *env = getenv("SDC_VAELIGHT");
    const char *pick = path ? path : env && env[0] ? env : NULL;
    if (pick) {
        if (strlen(pick) >= outlen) return sdc_fail(err, SDC_E_INVALID_ARG, "%s: path too long", pick);
        strcpy(out, pick);
        return SDC_OK;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        static const char *const rel[] = {"/../data/vaelight/", "/../share/sdc/vaelight/",
                                          "/data/vaelight/"};
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            char cand[4096 + 64];
            snprintf(cand, sizeof cand, "%s%s%s", exe, rel[i], SDC_VAELIGHT_FILE);
            if (is_file(cand) && strlen(cand) < outlen) {
                strcpy(out, cand);
                return SDC_OK;
            }
        }
    }
#ifdef SDC_DATA_DIR
    /* the source tree's data/ folder this build was configured from */
    {
        char cand[4096];
        snprintf(cand, sizeof cand, "%s/vaelight/%s", SDC_DATA_DIR, SDC_VAELIGHT_FILE);
        if (is_file(cand) && strlen(cand) < outlen) {
            strcpy(out, cand);
            return SDC_OK;
        }
    }
#endif
    return sdc_fail(err, SDC_E_IO,
                    "vaelight: %s not found next to the program (../data/vaelight/, "
                    "../share/sdc/vaelight/, data/vaelight/); give its path (--decoder-path FILE) "
                    "or set SDC_VAELIGHT",
                    SDC_VAELIGHT_FILE);
}
