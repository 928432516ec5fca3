/* src/model/lora.c: the weight overlay and LoRA merging (see lora.h for the contract).
 *
 * Reference for every mapping rule: AUTOMATIC1111/stable-diffusion-webui, extensions-builtin/Lora
 * (networks.py: convert_diffusers_name_to_compvis, assign_network_names_to_compvis_modules,
 * load_network; network.py: multiplier, calc_scale; network_lora.py: the up/down shapes of linear
 * and conv modules) and modules/hashes.py (addnet_hash_safetensors).
 *
 * Layout of this file: the overlay (a hash table of merged weights), the index of the
 * checkpoint's weights by webui's underscore names, the name conversion, then the merge in two
 * passes: group and check everything, then compute and add (rows split over the thread pool);
 * the public sdc_model_apply_lora; last, the random-LoRA writer of `sdc mkmodel --lora`, which
 * runs the name mapping backwards (LDM -> diffusers names).
 */
#include "model/lora.h"

#include "core/sha256.h"
#include "core/threadpool.h"
#include "model/model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* A small string -> pointer hash table (open addressing, FNV-1a)                              */
/* ------------------------------------------------------------------------------------------ */

typedef struct strmap {
    const char **keys; /* borrowed from the values' owners */
    void **vals;
    size_t cap, n;     /* cap is a power of two, at most half full */
} strmap;

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void *strmap_get(const strmap *m, const char *key) {
    if (!m->cap) return NULL;
    for (size_t i = fnv1a(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) return NULL;
        if (!strcmp(m->keys[i], key)) return m->vals[i];
    }
}

/* Inserts or replaces; returns 0, or -1 when out of memory. */
static int strmap_put(strmap *m, const char *key, void *val) {
    if (2 * (m->n + 1) > m->cap) {
        strmap g = {0};
        g.cap = m->cap ? 2 * m->cap : 64;
        g.keys = calloc(g.cap, sizeof *g.keys);
        g.vals = calloc(g.cap, sizeof *g.vals);
        if (!g.keys || !g.vals) {
            free(g.keys);
            free(g.vals);
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) strmap_put(&g, m->keys[i], m->vals[i]); /* cannot grow again */
        free(m->keys);
        free(m->vals);
        *m = g;
    }
    size_t i = fnv1a(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key)) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
    return 0;
}

static void strmap_free(strmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------------------------------ */
/* The overlay                                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef struct ov_entry {
    char *name;
    sdc_st_tensor t; /* t.name = name, t.data = data */
    void *data;
} ov_entry;

struct sdc_weight_overlay {
    const sdc_weight_overlay *parent;
    strmap map; /* name -> ov_entry */
    ov_entry **entries;
    size_t n, cap;
    sdc_lora_applied *loras; /* merged into this level */
    size_t n_loras;
};

sdc_status sdc_overlay_new(const sdc_weight_overlay *parent, sdc_weight_overlay **out, sdc_error *err) {
    *out = calloc(1, sizeof **out);
    if (!*out) return sdc_fail(err, SDC_E_NOMEM, "out of memory for a weight overlay");
    (*out)->parent = parent;
    return SDC_OK;
}

void sdc_overlay_free(sdc_weight_overlay *o) {
    if (!o) return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->entries[i]->name);
        free(o->entries[i]->data);
        free(o->entries[i]);
    }
    for (size_t i = 0; i < o->n_loras; i++) free(o->loras[i].name);
    free(o->loras);
    free(o->entries);
    strmap_free(&o->map);
    free(o);
}

size_t sdc_overlay_count(const sdc_weight_overlay *o) { return o ? o->n : 0; }

const sdc_st_tensor *sdc_overlay_find(const sdc_weight_overlay *o, const char *full_name) {
    for (; o; o = o->parent) {
        const ov_entry *e = strmap_get(&o->map, full_name);
        if (e) return &e->t;
    }
    return NULL;
}

size_t sdc_overlay_lora_count(const sdc_weight_overlay *o) {
    size_t n = 0;
    for (; o; o = o->parent) n += o->n_loras;
    return n;
}

const sdc_lora_applied *sdc_overlay_lora_get(const sdc_weight_overlay *o, size_t i) {
    /* oldest first: the root's LoRAs, then each child's */
    size_t total = sdc_overlay_lora_count(o);
    if (i >= total) return NULL;
    size_t from_end = total - 1 - i;
    for (; o; o = o->parent) {
        if (from_end < o->n_loras) return &o->loras[o->n_loras - 1 - from_end];
        from_end -= o->n_loras;
    }
    return NULL;
}

/* The overlay's own copy of `src` (a weight of the checkpoint or of a parent overlay), created
 * on first use. */
static ov_entry *overlay_own(sdc_weight_overlay *o, const sdc_st_tensor *src, sdc_error *err) {
    ov_entry *e = strmap_get(&o->map, src->name);
    if (e) return e;
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 64;
        ov_entry **p = realloc(o->entries, cap * sizeof *p);
        if (!p) goto oom;
        o->entries = p;
        o->cap = cap;
    }
    e = calloc(1, sizeof *e);
    if (!e) goto oom;
    e->name = strdup(src->name);
    e->data = malloc(src->nbytes ? src->nbytes : 1); /* malloc alignment suits every dtype */
    if (!e->name || !e->data || strmap_put(&o->map, e->name, e)) {
        free(e->name);
        free(e->data);
        free(e);
        goto oom;
    }
    memcpy(e->data, src->data, src->nbytes);
    e->t = *src;
    e->t.name = e->name;
    e->t.data = e->data;
    o->entries[o->n++] = e;
    return e;
oom:
    sdc_fail(err, SDC_E_NOMEM, "out of memory copying weight '%s' (%zu bytes)", src->name, src->nbytes);
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* The checkpoint's LoRA-able weights by webui's module names                                  */
/* ------------------------------------------------------------------------------------------ */

/* webui names each module of sd_model.model ("diffusion_model.input_blocks.1.1.proj_in") and
 * of cond_stage_model.wrapped ("transformer.text_model.encoder.layers.0.self_attn.q_proj") with
 * its dots as underscores. The checkpoint keys are these paths under "model." and
 * "cond_stage_model." plus ".weight"; only Linear (2-D) and Conv (4-D) weights take a LoRA. */
typedef struct module_index {
    strmap map;  /* underscore name -> const sdc_st_tensor * */
    char **names;
    size_t n;
} module_index;

static void index_free(module_index *ix) {
    for (size_t i = 0; i < ix->n; i++) free(ix->names[i]);
    free(ix->names);
    strmap_free(&ix->map);
}

static sdc_status index_build(const sdc_st_file *base, module_index *ix, sdc_error *err) {
    memset(ix, 0, sizeof *ix);
    size_t count = sdc_st_count(base);
    ix->names = calloc(count ? count : 1, sizeof *ix->names);
    if (!ix->names) return sdc_fail(err, SDC_E_NOMEM, "out of memory indexing the model");
    static const char *const strip[] = {"model.diffusion_model.", "cond_stage_model.transformer."};
    for (size_t i = 0; i < count; i++) {
        const sdc_st_tensor *t = sdc_st_get(base, i);
        size_t len = strlen(t->name);
        if ((t->ndim != 2 && t->ndim != 4) || len < 7 || strcmp(t->name + len - 7, ".weight")) continue;
        int which = -1;
        for (int k = 0; k < 2; k++)
            if (!strncmp(t->name, strip[k], strlen(strip[k]))) which = k;
        if (which < 0) continue;
        const char *rest = t->name + (which == 0 ? strlen("model.") : strlen("cond_stage_model."));
        char *u = strndup(rest, strlen(rest) - 7);
        if (!u) {
            index_free(ix);
            return sdc_fail(err, SDC_E_NOMEM, "out of memory indexing the model");
        }
        for (char *c = u; *c; c++)
            if (*c == '.') *c = '_';
        ix->names[ix->n++] = u;
        if (strmap_put(&ix->map, u, (void *)t)) {
            index_free(ix);
            return sdc_fail(err, SDC_E_NOMEM, "out of memory indexing the model");
        }
    }
    return SDC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Name conversion: webui's convert_diffusers_name_to_compvis for SD1.x                        */
/* ------------------------------------------------------------------------------------------ */

static int lit(const char **s, const char *l) {
    size_t n = strlen(l);
    if (strncmp(*s, l, n)) return 0;
    *s += n;
    return 1;
}

static int num(const char **s, int *v) {
    const char *p = *s;
    long x = 0;
    if (*p < '0' || *p > '9') return 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((x = x * 10 + (*p - '0')) > 100000) return 0;
    *v = (int)x;
    *s = p;
    return 1;
}

/* "attentions_" or "resnets_"; *attn tells which. */
static int block_kind(const char **s, int *attn) {
    if (lit(s, "attentions_")) return *attn = 1;
    if (lit(s, "resnets_")) return (*attn = 0) == 0;
    return 0;
}

/* webui's suffix_conversion: a resnet's diffusers part -> its LDM part (attentions keep theirs). */
static const char *resnet_suffix(int attn, const char *suffix) {
    static const char *const map[][2] = {
        {"conv1", "in_layers_2"}, {"conv2", "out_layers_3"},
        {"time_emb_proj", "emb_layers_1"}, {"conv_shortcut", "skip_connection"},
    };
    if (!attn)
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (!strcmp(suffix, map[i][0])) return map[i][1];
    return suffix;
}

/* Writes webui's compvis module name for a kohya key (the key itself when no rule applies). */
static void convert_name(const char *key, char *out, size_t cap) {
    const char *s;
    int i, j, attn;
    if (s = key, lit(&s, "lora_unet_conv_in")) {
        snprintf(out, cap, "diffusion_model_input_blocks_0_0%s", s);
    } else if (s = key, lit(&s, "lora_unet_conv_out")) {
        snprintf(out, cap, "diffusion_model_out_2%s", s);
    } else if (s = key, lit(&s, "lora_unet_time_embedding_linear_") && num(&s, &i)) {
        snprintf(out, cap, "diffusion_model_time_embed_%d%s", i * 2 - 2, s);
    } else if (s = key, lit(&s, "lora_unet_down_blocks_") && num(&s, &i) && lit(&s, "_") && block_kind(&s, &attn) &&
               num(&s, &j) && lit(&s, "_") && *s) {
        snprintf(out, cap, "diffusion_model_input_blocks_%d_%d_%s", 1 + i * 3 + j, attn, resnet_suffix(attn, s));
    } else if (s = key, lit(&s, "lora_unet_mid_block_") && block_kind(&s, &attn) && num(&s, &j) && lit(&s, "_") && *s) {
        snprintf(out, cap, "diffusion_model_middle_block_%d_%s", attn ? 1 : j * 2, resnet_suffix(attn, s));
    } else if (s = key, lit(&s, "lora_unet_up_blocks_") && num(&s, &i) && lit(&s, "_") && block_kind(&s, &attn) &&
               num(&s, &j) && lit(&s, "_") && *s) {
        snprintf(out, cap, "diffusion_model_output_blocks_%d_%d_%s", i * 3 + j, attn, resnet_suffix(attn, s));
    } else if (s = key, lit(&s, "lora_unet_down_blocks_") && num(&s, &i) && lit(&s, "_downsamplers_0_conv")) {
        snprintf(out, cap, "diffusion_model_input_blocks_%d_0_op", 3 + i * 3);
    } else if (s = key, lit(&s, "lora_unet_up_blocks_") && num(&s, &i) && lit(&s, "_upsamplers_0_conv")) {
        snprintf(out, cap, "diffusion_model_output_blocks_%d_%d_conv", 2 + i * 3, i > 0 ? 2 : 1);
    } else if (s = key, lit(&s, "lora_te_text_model_encoder_layers_") && num(&s, &i) && lit(&s, "_") && *s) {
        snprintf(out, cap, "transformer_text_model_encoder_layers_%d_%s", i, s);
    } else {
        snprintf(out, cap, "%s", key);
    }
}

/* Replaces every `from` in `key` by `to`. */
static void replace_all(const char *key, const char *from, const char *to, char *out, size_t cap) {
    size_t o = 0, fl = strlen(from), tl = strlen(to);
    for (const char *s = key; *s && o + 1 < cap;) {
        if (!strncmp(s, from, fl)) {
            size_t n = tl < cap - 1 - o ? tl : cap - 1 - o;
            memcpy(out + o, to, n);
            o += n;
            s += fl;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
}

/* webui's lookup: the converted name, then LDM-style kohya names. */
static const sdc_st_tensor *map_module(const module_index *ix, const char *key) {
    char name[512];
    convert_name(key, name, sizeof name);
    const sdc_st_tensor *t = strmap_get(&ix->map, name);
    if (t) return t;
    if (strstr(key, "lora_unet")) {
        replace_all(key, "lora_unet", "diffusion_model", name, sizeof name);
        return strmap_get(&ix->map, name);
    }
    if (strstr(key, "lora_te1_text_model")) {
        replace_all(key, "lora_te1_text_model", "transformer_text_model", name, sizeof name);
        return strmap_get(&ix->map, name);
    }
    return NULL;
}

int sdc_lora_map_name(const sdc_st_file *base, const char *kohya, char *out, size_t cap) {
    module_index ix;
    sdc_error e = {0};
    if (index_build(base, &ix, &e) != SDC_OK) return 0;
    const sdc_st_tensor *t = map_module(&ix, kohya);
    if (t) snprintf(out, cap, "%s", t->name);
    index_free(&ix);
    return t != NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* LoRA tensor names: module + part                                                            */
/* ------------------------------------------------------------------------------------------ */

typedef enum part_kind { PART_DOWN, PART_UP, PART_ALPHA, PART_OTHER } part_kind;

static const struct {
    const char *suffix;
    part_kind kind;
    int processor; /* diffusers attention-processor style: attn1.processor.to_q_lora.down.weight */
} part_suffixes[] = {
    {".lora_down.weight", PART_DOWN, 0},  {".lora_up.weight", PART_UP, 0},
    {".lora_A.weight", PART_DOWN, 0},     {".lora_B.weight", PART_UP, 0},
    {".lora.down.weight", PART_DOWN, 0},  {".lora.up.weight", PART_UP, 0},
    {".lora_linear_layer.down.weight", PART_DOWN, 0}, {".lora_linear_layer.up.weight", PART_UP, 0},
    {"_lora.down.weight", PART_DOWN, 1},  {"_lora.up.weight", PART_UP, 1},
    {".alpha", PART_ALPHA, 0},
};

/* dst = a + the first n bytes of b, cut to cap - 1 bytes (a longer name maps to nothing). */
static void join2(char *dst, size_t cap, const char *a, const char *b, size_t n) {
    size_t la = strlen(a);
    if (la >= cap) la = cap - 1;
    if (n > cap - 1 - la) n = cap - 1 - la;
    memcpy(dst, a, la);
    memcpy(dst + la, b, n);
    dst[la + n] = '\0';
}

/* Splits a LoRA tensor name into the kohya module name (written to `mod`) and its part. For
 * PART_OTHER, *other points at the part that is not understood. */
static part_kind split_name(const char *key, char *mod, size_t cap, const char **other) {
    size_t len = strlen(key);
    *other = NULL;
    for (size_t k = 0; k < sizeof part_suffixes / sizeof part_suffixes[0]; k++) {
        size_t sl = strlen(part_suffixes[k].suffix);
        if (len <= sl || strcmp(key + len - sl, part_suffixes[k].suffix)) continue;
        char path[512];
        snprintf(path, sizeof path, "%.*s", (int)(len - sl), key);
        if (!strncmp(path, "lora_", 5) && !strchr(path, '.')) { /* kohya: already a module name */
            join2(mod, cap, "", path, strlen(path));
            return part_suffixes[k].kind;
        }
        /* a diffusers/PEFT module path */
        const char *p = path, *prefix = "lora_unet_";
        lit(&p, "base_model.model.");
        if (lit(&p, "unet.")) prefix = "lora_unet_";
        else if (lit(&p, "text_encoder.")) prefix = "lora_te_";
        else if (!strncmp(p, "text_model.", 11)) prefix = "lora_te_";
        char m[512];
        if (part_suffixes[k].processor) {
            replace_all(p, ".processor.", ".", m, sizeof m); /* attn1.processor.to_q -> attn1.to_q */
            size_t ml = strlen(m);
            if (ml >= 7 && !strcmp(m + ml - 7, ".to_out") && ml + 2 < sizeof m) strcat(m, ".0");
        } else {
            snprintf(m, sizeof m, "%s", p);
        }
        for (char *c = m; *c; c++)
            if (*c == '.') *c = '_';
        join2(mod, cap, prefix, m, strlen(m));
        return part_suffixes[k].kind;
    }
    const char *dot = !strncmp(key, "lora_", 5) ? strchr(key, '.') : strrchr(key, '.');
    *other = dot ? dot + 1 : key;
    join2(mod, cap, "", key, dot ? (size_t)(dot - key) : len);
    return PART_OTHER;
}

/* ------------------------------------------------------------------------------------------ */
/* The merge                                                                                   */
/* ------------------------------------------------------------------------------------------ */

typedef struct lmod {
    char key[256];              /* kohya module name */
    const sdc_st_tensor *down, *up, *alpha;
    const sdc_st_tensor *w;     /* the checkpoint weight it maps to; NULL if none */
    int te;                     /* a text-encoder weight (te multiplier) */
} lmod;

typedef struct merge_state {
    const char *label;          /* the LoRA file, for messages */
    lmod *mods;
    size_t n_mods, cap_mods;
    char **skipped;
    size_t n_skipped, cap_skipped;
    int oom;
} merge_state;

static void skip(merge_state *ms, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void skip(merge_state *ms, const char *fmt, ...) {
    if (ms->oom) return;
    if (ms->n_skipped == ms->cap_skipped) {
        size_t cap = ms->cap_skipped ? 2 * ms->cap_skipped : 16;
        char **p = realloc(ms->skipped, cap * sizeof *p);
        if (!p) {
            ms->oom = 1;
            return;
        }
        ms->skipped = p;
        ms->cap_skipped = cap;
    }
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!(ms->skipped[ms->n_skipped] = strdup(line))) ms->oom = 1;
    else ms->n_skipped++;
}

static lmod *module_for(merge_state *ms, const char *key) {
    for (size_t i = 0; i < ms->n_mods; i++)
        if (!strcmp(ms->mods[i].key, key)) return &ms->mods[i];
    if (ms->n_mods == ms->cap_mods) {
        size_t cap = ms->cap_mods ? 2 * ms->cap_mods : 64;
        lmod *p = realloc(ms->mods, cap * sizeof *p);
        if (!p) {
            ms->oom = 1;
            return NULL;
        }
        ms->mods = p;
        ms->cap_mods = cap;
    }
    lmod *m = &ms->mods[ms->n_mods++];
    memset(m, 0, sizeof *m);
    snprintf(m->key, sizeof m->key, "%s", key);
    return m;
}

static int is_float(sdc_dtype d) { return d == SDC_F32 || d == SDC_F16 || d == SDC_BF16; }

static const char *shape_of(const sdc_st_tensor *t, char *buf, size_t cap) {
    int64_t s[SDC_MAX_DIMS] = {0};
    int nd = t->ndim < SDC_MAX_DIMS ? t->ndim : SDC_MAX_DIMS;
    for (int i = 0; i < nd; i++) s[i] = t->shape[i];
    return sdc_shape_str(nd, s, buf, cap);
}

/* Checks that up @ down has the shape of the weight: down [r, in(, kh, kw)] or [r, in*kh*kw],
 * up [out, r(, 1, 1)]. */
static sdc_status check_shapes(const merge_state *ms, const lmod *m, sdc_error *err) {
    const sdc_st_tensor *w = m->w, *d = m->down, *u = m->up;
    char a[96], b[96];
    if (!is_float(d->dtype) || !is_float(u->dtype) || (m->alpha && !is_float(m->alpha->dtype)))
        return sdc_fail(err, SDC_E_FORMAT, "%s: LoRA tensor '%s' has dtype %s, expected F32, F16 or BF16",
                        ms->label, !is_float(d->dtype) ? d->name : !is_float(u->dtype) ? u->name : m->alpha->name,
                        sdc_dtype_table[!is_float(d->dtype) ? d->dtype : !is_float(u->dtype) ? u->dtype : m->alpha->dtype].name);
    if (m->alpha && m->alpha->numel != 1)
        return sdc_fail(err, SDC_E_FORMAT, "%s: LoRA tensor '%s' has %lld values, an alpha has one", ms->label,
                        m->alpha->name, (long long)m->alpha->numel);
    if (!is_float(w->dtype))
        return sdc_fail(err, SDC_E_FORMAT, "model weight '%s' has dtype %s", w->name, sdc_dtype_table[w->dtype].name);
    int ok_d = (d->ndim == 2 || d->ndim == 4) && d->shape[0] >= 1;
    int64_t K = 1, Kw = 1;
    for (int i = 1; ok_d && i < d->ndim; i++) K *= d->shape[i];
    for (int i = 1; i < w->ndim; i++) Kw *= w->shape[i];
    ok_d = ok_d && K == Kw;
    if (ok_d && d->ndim == 4 && w->ndim == 4)
        ok_d = d->shape[1] == w->shape[1] && d->shape[2] == w->shape[2] && d->shape[3] == w->shape[3];
    if (ok_d && d->ndim == 4 && w->ndim == 2) ok_d = d->shape[2] == 1 && d->shape[3] == 1;
    if (!ok_d)
        return sdc_fail(err, SDC_E_UNSUPPORTED,
                        "%s: LoRA tensor '%s' %s does not fit the model's '%s' %s (a LoRA for another model family, such as SDXL?)",
                        ms->label, d->name, shape_of(d, a, sizeof a), w->name, shape_of(w, b, sizeof b));
    int ok_u = (u->ndim == 2 || (u->ndim == 4 && u->shape[2] == 1 && u->shape[3] == 1)) &&
               u->shape[0] == w->shape[0] && u->shape[1] == d->shape[0];
    if (!ok_u)
        return sdc_fail(err, SDC_E_UNSUPPORTED,
                        "%s: LoRA tensor '%s' %s does not fit the model's '%s' %s with rank %lld (a LoRA for another model family, such as SDXL?)",
                        ms->label, u->name, shape_of(u, a, sizeof a), w->name, shape_of(w, b, sizeof b),
                        (long long)d->shape[0]);
    return SDC_OK;
}

static float *to_f32(const sdc_st_tensor *t) {
    float *f = malloc(sdc_mul_size((size_t)t->numel, sizeof(float)) + 1);
    if (f) sdc_convert_to_f32(f, t->data, t->dtype, (size_t)t->numel);
    return f;
}

/* The rows [o0, o1) of W += f * up @ down, for one thread of the pool. */
typedef struct merge_job {
    const float *up, *down; /* [out, r], [r, K] */
    unsigned char *w;       /* [out, K] in dtype */
    sdc_dtype dtype;
    int64_t out, r, K;
    float f;
    float *scratch;         /* 2 K floats per thread */
} merge_job;

static void merge_rows(void *ctx, int ith, int nth) {
    const merge_job *j = ctx;
    float *acc = j->scratch + (size_t)ith * 2 * (size_t)j->K, *row = acc + j->K;
    size_t es = sdc_dtype_table[j->dtype].size;
    int64_t o0 = j->out * ith / nth, o1 = j->out * (ith + 1) / nth;
    for (int64_t o = o0; o < o1; o++) { // W[o, :] += f * sum_r up[o, r] * down[r, :]
        memset(acc, 0, (size_t)j->K * sizeof(float));
        for (int64_t k = 0; k < j->r; k++) {
            const float a = j->up[o * j->r + k], *dr = j->down + k * j->K;
            for (int64_t c = 0; c < j->K; c++) acc[c] += a * dr[c];
        }
        unsigned char *wrow = j->w + (size_t)(o * j->K) * es;
        sdc_convert_to_f32(row, wrow, j->dtype, (size_t)j->K);
        for (int64_t c = 0; c < j->K; c++) {
            float v = row[c] + j->f * acc[c];
            if (j->dtype == SDC_F32) memcpy(wrow + (size_t)c * 4, &v, 4);
            else {
                uint16_t h = j->dtype == SDC_F16 ? sdc_f32_to_f16(v) : sdc_f32_to_bf16(v);
                memcpy(wrow + (size_t)c * 2, &h, 2);
            }
        }
    }
}

/* W += mult * scale * up @ down, in W's dtype; the rows split over the pool (NULL: one thread).
 * Each element is computed by one thread in a fixed order: the result does not depend on the
 * thread count. */
static sdc_status merge_one(sdc_weight_overlay *ov, const lmod *m, float te_w, float unet_w, sdc_pool *pool,
                            sdc_error *err) {
    const sdc_st_tensor *cur = sdc_overlay_find(ov, m->w->name);
    if (!cur) cur = m->w;
    merge_job j = {.out = m->w->shape[0], .r = m->down->shape[0]};
    j.K = m->down->numel / j.r;
    float scale = 1.0f;
    if (m->alpha) {
        float a;
        sdc_convert_to_f32(&a, m->alpha->data, m->alpha->dtype, 1);
        scale = a / (float)j.r;
    }
    j.f = (m->te ? te_w : unet_w) * scale;
    int nth = sdc_pool_size(pool);
    float *up = to_f32(m->up), *down = to_f32(m->down);
    j.scratch = malloc(sdc_mul_size(sdc_mul_size((size_t)nth * 2, (size_t)j.K), sizeof(float)) + 1);
    ov_entry *e = up && down && j.scratch ? overlay_own(ov, cur, err) : NULL;
    if (e) {
        j.up = up;
        j.down = down;
        j.w = e->data;
        j.dtype = e->t.dtype;
        sdc_pool_run(pool, merge_rows, &j);
    }
    free(up);
    free(down);
    free(j.scratch);
    if (!e) return err && err->code ? err->code : sdc_fail(err, SDC_E_NOMEM, "out of memory merging '%s'", m->w->name);
    return SDC_OK;
}

void sdc_lora_hash(const sdc_st_file *lora, char hash[SDC_LORA_HASH_HEX]) {
    const char *meta = sdc_st_meta_find(lora, "sshs_model_hash");
    if (meta && meta[0]) {
        snprintf(hash, SDC_LORA_HASH_HEX, "%s", meta); /* webui: hash[0:12] */
        return;
    }
    const unsigned char *b = sdc_st_file_bytes(lora);
    size_t size = sdc_st_file_size(lora);
    uint64_t n = 0;
    for (int i = 7; i >= 0 && size >= 8; i--) n = n << 8 | b[i];
    size_t off = size >= 8 && n <= size - 8 ? (size_t)(8 + n) : size; /* the reader checked it */
    uint8_t digest[32];
    char hex[SDC_SHA256_HEX];
    sdc_sha256(b + off, size - off, digest);
    sdc_sha256_hex(digest, hex);
    snprintf(hash, SDC_LORA_HASH_HEX, "%.12s", hex);
}

static void free_state(merge_state *ms) {
    for (size_t i = 0; i < ms->n_skipped; i++) free(ms->skipped[i]);
    free(ms->skipped);
    free(ms->mods);
}

/* Pass 1: sorts every tensor into a module, maps modules to weights, lists what cannot apply. */
static sdc_status group(merge_state *ms, const module_index *ix, const sdc_st_file *lora, sdc_error *err) {
    size_t n = sdc_st_count(lora);
    for (size_t i = 0; i < n && !ms->oom; i++) {
        const sdc_st_tensor *t = sdc_st_get(lora, i);
        char key[256];
        const char *other;
        part_kind k = split_name(t->name, key, sizeof key, &other);
        if (k == PART_OTHER) {
            skip(ms, "%s (unsupported LoRA part '%s': LoHa, LoKr, DoRA, CP and other variants are not merged)",
                 t->name, other);
            continue;
        }
        lmod *m = module_for(ms, key);
        if (!m) break;
        const sdc_st_tensor **slot = k == PART_DOWN ? &m->down : k == PART_UP ? &m->up : &m->alpha;
        if (*slot) {
            skip(ms, "%s (a second %s for module %s)", t->name, k == PART_DOWN ? "down" : k == PART_UP ? "up" : "alpha", key);
            continue;
        }
        *slot = t;
    }
    for (size_t i = 0; i < ms->n_mods && !ms->oom; i++) {
        lmod *m = &ms->mods[i];
        const char *why = NULL;
        if (!m->down || !m->up) why = m->down ? "no lora_up for it" : "no lora_down for it";
        else if (!(m->w = map_module(ix, m->key))) why = "no such weight in this model";
        if (why) {
            const sdc_st_tensor *parts[3] = {m->down, m->up, m->alpha};
            for (int p = 0; p < 3; p++)
                if (parts[p]) skip(ms, "%s (%s)", parts[p]->name, why);
            m->w = NULL;
            continue;
        }
        m->te = !strncmp(m->w->name, "cond_stage_model.", 17);
    }
    /* two names of one module (diffusers-style and LDM-style): webui keys its modules by the
     * weight they change, so the later one replaces the earlier */
    for (size_t i = 0; i < ms->n_mods && !ms->oom; i++)
        for (size_t j = i + 1; ms->mods[i].w && j < ms->n_mods; j++)
            if (ms->mods[j].w == ms->mods[i].w) {
                const sdc_st_tensor *parts[3] = {ms->mods[i].down, ms->mods[i].up, ms->mods[i].alpha};
                for (int p = 0; p < 3; p++)
                    if (parts[p]) skip(ms, "%s (%s changes the same weight and replaces it)", parts[p]->name, ms->mods[j].key);
                ms->mods[i].w = NULL;
            }
    if (ms->oom) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory reading the LoRA", ms->label);
    return SDC_OK;
}

sdc_status sdc_lora_merge(sdc_weight_overlay *ov, const sdc_st_file *base, const sdc_st_file *lora,
                          const char *name, float te_weight, float unet_weight, sdc_pool *pool,
                          sdc_lora_report *rep, sdc_error *err) {
    if (rep) memset(rep, 0, sizeof *rep);
    merge_state ms = {.label = sdc_st_path(lora)};
    module_index ix;
    if (!(te_weight == te_weight && unet_weight == unet_weight) || te_weight > 1e6f || te_weight < -1e6f ||
        unet_weight > 1e6f || unet_weight < -1e6f)
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: LoRA weight %g/%g is not a finite number", ms.label,
                        (double)te_weight, (double)unet_weight);
    SDC_TRY(index_build(base, &ix, err));
    sdc_status s = group(&ms, &ix, lora, err);
    index_free(&ix);
    size_t n_tensors = sdc_st_count(lora), n_applied = 0, n_weights = 0;
    /* refusals: shapes first (they name the tensor), then SDXL's second text encoder */
    for (size_t i = 0; s == SDC_OK && i < ms.n_mods; i++)
        if (ms.mods[i].w) s = check_shapes(&ms, &ms.mods[i], err);
    for (size_t i = 0; s == SDC_OK && i < ms.n_mods; i++)
        if (!strncmp(ms.mods[i].key, "lora_te2_", 9))
            s = sdc_fail(err, SDC_E_UNSUPPORTED,
                         "%s: tensor group '%s' is for SDXL's second text encoder (lora_te2_*): an SDXL LoRA, not SD1.5",
                         ms.label, ms.mods[i].key);
    for (size_t i = 0; s == SDC_OK && i < ms.n_mods; i++)
        if (ms.mods[i].w) {
            n_weights++;
            n_applied += 2 + (ms.mods[i].alpha != NULL);
        }
    if (s == SDC_OK && n_applied == 0)
        s = sdc_fail(err, SDC_E_FORMAT, "%s: none of its %zu tensors matches a weight of this model%s%s", ms.label,
                     n_tensors, ms.n_skipped ? "; first: " : "", ms.n_skipped ? ms.skipped[0] : "");
    /* pass 2: the arithmetic */
    for (size_t i = 0; s == SDC_OK && i < ms.n_mods; i++)
        if (ms.mods[i].w) s = merge_one(ov, &ms.mods[i], te_weight, unet_weight, pool, err);
    if (s == SDC_OK) {
        sdc_lora_applied *p = realloc(ov->loras, (ov->n_loras + 1) * sizeof *p);
        if (p) ov->loras = p;
        if (!p || !(p[ov->n_loras].name = strdup(name ? name : ms.label)))
            s = sdc_fail(err, SDC_E_NOMEM, "out of memory");
        else
            sdc_lora_hash(lora, p[ov->n_loras++].hash);
    }
    if (s == SDC_OK && rep) {
        rep->n_tensors = (int)n_tensors;
        rep->n_applied = (int)n_applied;
        rep->n_weights = (int)n_weights;
        snprintf(rep->hash, sizeof rep->hash, "%s", ov->loras[ov->n_loras - 1].hash);
        rep->n_skipped = (int)ms.n_skipped;
        rep->skipped = ms.skipped;
        ms.skipped = NULL;
        ms.n_skipped = 0;
    }
    free_state(&ms);
    return s;
}

void sdc_lora_report_free(sdc_lora_report *rep) {
    if (!rep) return;
    for (int i = 0; i < rep->n_skipped; i++) free(rep->skipped[i]);
    free(rep->skipped);
    rep->skipped = NULL;
    rep->n_skipped = 0;
}

char *sdc_lora_report_text(const char *name, const sdc_lora_report *rep) {
    size_t cap = 256;
    for (int i = 0; i < rep->n_skipped; i++) cap += strlen(rep->skipped[i]) + 20;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t o = (size_t)snprintf(s, cap, "lora %s: applied %d/%d tensors to %d weights (hash %s)", name,
                                rep->n_applied, rep->n_tensors, rep->n_weights, rep->hash);
    if (o >= cap) o = cap - 1;
    for (int i = 0; i < rep->n_skipped && o < cap; i++)
        o += (size_t)snprintf(s + o, cap - o, "\n  not applied: %s", rep->skipped[i]);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* The public call                                                                             */
/* ------------------------------------------------------------------------------------------ */

sdc_status sdc_model_apply_lora(sdc_model *m, const char *path, const char *name, float te_weight,
                                float unet_weight, sdc_lora_report *rep, char *errbuf, size_t errlen) {
    sdc_error e = {0};
    sdc_st_file *lf = NULL;
    char label[256];
    if (rep) memset(rep, 0, sizeof *rep);
    if (!m || !path) {
        sdc_fail(&e, SDC_E_INVALID_ARG, "no model or no LoRA path given");
        goto done;
    }
    if (!name) { /* the file name without its directory and .safetensors */
        const char *b = strrchr(path, '/');
        snprintf(label, sizeof label, "%s", b ? b + 1 : path);
        size_t l = strlen(label);
        if (l > 12 && !strcmp(label + l - 12, ".safetensors")) label[l - 12] = '\0';
        name = label;
    }
    if (sdc_model_check_file(path, &e) != SDC_OK || sdc_st_open(path, &lf, &e) != SDC_OK) goto done;
    if (!m->overlay && sdc_overlay_new(NULL, &m->overlay, &e) != SDC_OK) goto done;
    sdc_pool *pool = sdc_pool_new(m->n_threads); /* NULL (one thread) when threads cannot start */
    sdc_lora_merge(m->overlay, m->st, lf, name, te_weight, unet_weight, pool, rep, &e);
    sdc_pool_free(pool);
done:
    sdc_st_close(lf);
    if (e.code != SDC_OK && errbuf && errlen) snprintf(errbuf, errlen, "%s", e.msg);
    return e.code;
}

/* ------------------------------------------------------------------------------------------ */
/* A random LoRA for tests                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* LDM resnet part -> diffusers (webui's suffix_conversion, reversed). */
static const char *resnet_part(const char *ldm) {
    static const char *const map[][2] = {
        {"in_layers.2", "conv1"}, {"out_layers.3", "conv2"}, {"emb_layers.1", "time_emb_proj"},
        {"skip_connection", "conv_shortcut"}, {"in_layers.0", "norm1"}, {"out_layers.0", "norm2"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(ldm, map[i][0])) return map[i][1];
    return NULL;
}

int sdc_lora_ldm_to_diffusers(const char *ldm, char *out, size_t cap) {
    const char *s = ldm, *part;
    int n, k;
    if (!strcmp(ldm, "input_blocks.0.0")) return snprintf(out, cap, "conv_in"), 1;
    if (!strcmp(ldm, "out.2")) return snprintf(out, cap, "conv_out"), 1;
    if (lit(&s, "time_embed.") && num(&s, &n) && !*s && (n == 0 || n == 2))
        return snprintf(out, cap, "time_embedding.linear_%d", n / 2 + 1), 1;
    if (s = ldm, lit(&s, "input_blocks.") && num(&s, &n) && n >= 1 && lit(&s, ".") && num(&s, &k) && lit(&s, ".")) {
        if (n % 3 == 0 && k == 0 && !strcmp(s, "op")) return snprintf(out, cap, "down_blocks.%d.downsamplers.0.conv", n / 3 - 1), 1;
        if (n % 3 == 0) return 0;
        if (k == 1) return snprintf(out, cap, "down_blocks.%d.attentions.%d.%s", (n - 1) / 3, (n - 1) % 3, s), 1;
        if (k == 0 && (part = resnet_part(s)))
            return snprintf(out, cap, "down_blocks.%d.resnets.%d.%s", (n - 1) / 3, (n - 1) % 3, part), 1;
        return 0;
    }
    if (s = ldm, lit(&s, "middle_block.") && num(&s, &k) && lit(&s, ".")) {
        if (k == 1) return snprintf(out, cap, "mid_block.attentions.0.%s", s), 1;
        if ((k == 0 || k == 2) && (part = resnet_part(s))) return snprintf(out, cap, "mid_block.resnets.%d.%s", k / 2, part), 1;
        return 0;
    }
    if (s = ldm, lit(&s, "output_blocks.") && num(&s, &n) && lit(&s, ".") && num(&s, &k) && lit(&s, ".")) {
        if (n % 3 == 2 && ((k == 1 && !strcmp(s, "conv")) || k == 2))
            return !strcmp(s, "conv") ? (snprintf(out, cap, "up_blocks.%d.upsamplers.0.conv", n / 3), 1) : 0;
        if (k == 1) return snprintf(out, cap, "up_blocks.%d.attentions.%d.%s", n / 3, n % 3, s), 1;
        if (k == 0 && (part = resnet_part(s))) return snprintf(out, cap, "up_blocks.%d.resnets.%d.%s", n / 3, n % 3, part), 1;
    }
    return 0;
}

/* Whether kohya's defaults train this weight (LoCon: the convolutions too). */
static int is_target(const char *ldm, int ndim, int locon, int te) {
    static const char *const te_parts[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                           "self_attn.out_proj", "mlp.fc1", "mlp.fc2"};
    static const char *const unet_parts[] = {"attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
                                             "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0",
                                             "ff.net.0.proj", "ff.net.2", "proj_in", "proj_out"};
    const char *const *parts = te ? te_parts : unet_parts;
    size_t np = te ? 6 : 12, len = strlen(ldm);
    for (size_t i = 0; i < np; i++) {
        size_t pl = strlen(parts[i]);
        if (len > pl && ldm[len - pl - 1] == '.' && !strcmp(ldm + len - pl, parts[i])) return 1;
    }
    if (te || !locon || ndim != 4) return 0;
    char tmp[256];
    return sdc_lora_ldm_to_diffusers(ldm, tmp, sizeof tmp) && !strstr(tmp, "conv_in") && !strstr(tmp, "conv_out");
}

typedef struct make_entry {
    char name[3][320]; /* down, up, alpha */
    int64_t out, in, kh, kw;
} make_entry;

static uint64_t make_rng(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float make_uniform(uint64_t *s) { return (float)((make_rng(s) >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f; }

/* Adds the LoRA of one checkpoint weight (full name, shape) when it is a target. */
static int make_add(const sdc_lora_make_params *p, const char *full, int ndim, const int64_t *shape, make_entry **v,
                    size_t *n, size_t *cap) {
    static const char *const U = "model.diffusion_model.", *const T = "cond_stage_model.transformer.text_model.";
    size_t len = strlen(full);
    if ((ndim != 2 && ndim != 4) || len < 8 || strcmp(full + len - 7, ".weight")) return 0;
    int te = !strncmp(full, T, strlen(T));
    if (!te && strncmp(full, U, strlen(U))) return 0;
    char ldm[200], path[256];
    snprintf(ldm, sizeof ldm, "%.*s", (int)(len - 7 - strlen(te ? T : U)), full + strlen(te ? T : U));
    if (!is_target(ldm, ndim, p->locon, te)) return 0;
    if (te) snprintf(path, sizeof path, "text_model.%s", ldm);
    else if (!sdc_lora_ldm_to_diffusers(ldm, path, sizeof path)) return 0;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        make_entry *q = realloc(*v, c * sizeof *q);
        if (!q) return -1;
        *v = q;
        *cap = c;
    }
    make_entry *e = &(*v)[(*n)++];
    e->out = shape[0];
    e->in = shape[1];
    e->kh = ndim == 4 ? shape[2] : 1;
    e->kw = ndim == 4 ? shape[3] : 1;
    if (p->peft) {
        const char *root = te ? "text_encoder." : "unet.";
        snprintf(e->name[0], sizeof e->name[0], "%s%s.lora_A.weight", root, path);
        snprintf(e->name[1], sizeof e->name[1], "%s%s.lora_B.weight", root, path);
        e->name[2][0] = '\0';
    } else {
        char k[300];
        snprintf(k, sizeof k, "%s%s", te ? "lora_te_" : "lora_unet_", path);
        for (char *c = k; *c; c++)
            if (*c == '.') *c = '_';
        snprintf(e->name[0], sizeof e->name[0], "%s.lora_down.weight", k);
        snprintf(e->name[1], sizeof e->name[1], "%s.lora_up.weight", k);
        snprintf(e->name[2], sizeof e->name[2], "%s.alpha", k);
    }
    return 0;
}

static sdc_status write_values(sdc_st_writer *w, sdc_dtype dt, int64_t n, float scale, uint64_t *rng, sdc_error *err) {
    unsigned char buf[4096];
    size_t es = dt == SDC_F32 ? 4 : 2, per = sizeof buf / es;
    for (int64_t i = 0; i < n;) {
        size_t m = (size_t)(n - i) < per ? (size_t)(n - i) : per;
        for (size_t j = 0; j < m; j++) {
            float v = scale * make_uniform(rng);
            if (dt == SDC_F32) memcpy(buf + 4 * j, &v, 4);
            else {
                uint16_t h = dt == SDC_F16 ? sdc_f32_to_f16(v) : sdc_f32_to_bf16(v);
                memcpy(buf + 2 * j, &h, 2);
            }
        }
        SDC_TRY(sdc_st_writer_write(w, buf, m * es, err));
        i += (int64_t)m;
    }
    return SDC_OK;
}

sdc_status sdc_lora_make(const sdc_lora_make_params *p, const sdc_st_file *model, const sdc_sd15_config *config,
                         sdc_error *err) {
    if (!p || !p->path || p->rank < 1 || p->rank > 256 || (!model && !config) ||
        (p->dtype != SDC_F32 && p->dtype != SDC_F16 && p->dtype != SDC_BF16))
        return sdc_fail(err, SDC_E_INVALID_ARG, "random LoRA: needs an output path, a rank in 1..256, a model or a "
                                                "layout, and dtype f32, f16 or bf16");
    make_entry *v = NULL;
    size_t n = 0, cap = 0;
    int oom = 0;
    sdc_sd15_layout lay = {0};
    if (model) {
        for (size_t i = 0; i < sdc_st_count(model) && !oom; i++) {
            const sdc_st_tensor *t = sdc_st_get(model, i);
            oom = make_add(p, t->name, t->ndim, t->shape, &v, &n, &cap) != 0;
        }
    } else {
        SDC_TRY(sdc_sd15_layout_build(config, &lay, err));
        for (size_t i = 0; i < lay.n && !oom; i++)
            oom = make_add(p, lay.t[i].name, lay.t[i].ndim, lay.t[i].shape, &v, &n, &cap) != 0;
        sdc_sd15_layout_free(&lay);
    }
    sdc_st_writer *w = NULL;
    sdc_status s = oom ? sdc_fail(err, SDC_E_NOMEM, "out of memory listing the LoRA's modules")
                 : !n  ? sdc_fail(err, SDC_E_FORMAT, "random LoRA: the model has no weight a LoRA targets")
                       : sdc_st_writer_new(p->path, &w, err);
    if (s == SDC_OK) s = sdc_st_writer_meta(w, "sdc.note", "random LoRA for tests (sdc mkmodel --lora)", err);
    int64_t r = p->rank;
    for (size_t i = 0; s == SDC_OK && i < n; i++) {
        make_entry *e = &v[i];
        int conv = e->kh > 1 || e->kw > 1; /* LoCon: down is a kh x kw conv, up a 1x1 */
        int64_t ds[4] = {r, e->in, e->kh, e->kw}, us[4] = {e->out, r, 1, 1}, as[1] = {0};
        s = sdc_st_writer_declare(w, e->name[0], p->dtype, conv ? 4 : 2, ds, err);
        if (s == SDC_OK) s = sdc_st_writer_declare(w, e->name[1], p->dtype, conv ? 4 : 2, us, err);
        if (s == SDC_OK && e->name[2][0]) s = sdc_st_writer_declare(w, e->name[2], SDC_F32, 0, as, err);
    }
    if (s == SDC_OK) s = sdc_st_writer_begin_data(w, err);
    uint64_t rng = p->seed ^ 0x4c6f5241ull; /* "LoRA" */
    for (size_t i = 0; s == SDC_OK && i < n; i++) {
        make_entry *e = &v[i];
        int64_t fan_in = e->in * e->kh * e->kw;
        s = write_values(w, p->dtype, r * fan_in, 1.0f / sqrtf((float)fan_in), &rng, err);
        if (s == SDC_OK) s = write_values(w, p->dtype, e->out * r, 0.5f, &rng, err);
        float alpha = (float)r / 2;
        if (s == SDC_OK && e->name[2][0]) s = sdc_st_writer_write(w, &alpha, 4, err);
    }
    if (s == SDC_OK) s = sdc_st_writer_finish(w, err);
    sdc_st_writer_free(w);
    free(v);
    return s;
}
