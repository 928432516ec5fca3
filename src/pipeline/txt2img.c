/* src/pipeline/txt2img.c: prompt -> picture. Orchestration only; the math lives in the stages.
 *
 *   1. text encoder: [cond, uncond] in one batch-2 run (or the caller's conditioning)
 *   2. schedule + seeded noise (A1111 or diffusers semantics)
 *   3. sampler loop: one batch-2 UNet run per step on a graph built and planned once
 *   4. VAE decoder on latent / 0.18215, then 8-bit RGB and the A1111 infotext
 * Each stage's network is freed before the next is built, so peak memory is the largest one. */
#include "sdc.h"

#include "core/error.h"
#include "core/sha256.h"
#include "core/threadpool.h"
#include "io/png.h"
#include "model/lora.h"
#include "model/vaelight.h"
#include "pipeline/infotext.h"
#include "pipeline/lowmem.h"
#include "pipeline/runner.h"
#include "prompt/conditioning.h"
#include "prompt/extra_networks.h"
#include "sampling/sampler.h"
#include "sampling/schedule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define SDC_VERSION_STRING "sdc 0.1"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

sdc_txt2img_params sdc_txt2img_params_default(void) {
    sdc_txt2img_params p;
    memset(&p, 0, sizeof p);
    p.prompt = "";
    p.width = p.height = 512;
    p.steps = 20;
    p.cfg = 7.0f;
    p.clip_skip = 1;
    p.sampler = "dpm++2m";
    p.scheduler_compat = "a1111";
    p.rng = "gpu";
    return p;
}

void sdc_image_free(sdc_image *img) {
    if (!img) return;
    free(img->rgb);
    free(img->latent);
    free(img->parameters);
    free(img->lora_report);
    memset(img, 0, sizeof *img);
}

/* ---------------------------------------------------------------- argument checks */

typedef struct resolved {
    sdc_sampler_kind sampler;
    sdc_schedule schedule;
    sdc_compat compat;
    sdc_rng_kind rng;
    int h, w; /* latent size */
} resolved;

static sdc_status resolve(const sdc_model *m, const sdc_txt2img_params *p, resolved *r, sdc_error *e) {
    if (p->width < 8 || p->width > 2048 || p->width % 8 || p->height < 8 || p->height > 2048 || p->height % 8)
        return sdc_fail(e, SDC_E_INVALID_ARG, "size %dx%d: width and height must be multiples of 8 in 8..2048",
                        p->width, p->height);
    if (p->steps < 1 || p->steps > 1000)
        return sdc_fail(e, SDC_E_INVALID_ARG, "steps %d is outside 1..1000", p->steps);
    if (!(p->cfg >= 0.0f && p->cfg <= 100.0f))
        return sdc_fail(e, SDC_E_INVALID_ARG, "cfg scale %g is outside 0..100", (double)p->cfg);
    if (p->clip_skip < 1 || (m->has_clip && p->clip_skip > m->clip.layers))
        return sdc_fail(e, SDC_E_INVALID_ARG, "clip skip %d is outside 1..%d", p->clip_skip,
                        m->has_clip ? m->clip.layers : 12);
    const char *s = p->sampler ? p->sampler : "dpm++2m";
    int k = !strcasecmp(s, "dpm++2m") || !strcasecmp(s, "dpmpp2m") ? SDC_SAMPLER_DPMPP_2M : sdc_sampler_from_name(s);
    if (k < 0)
        return sdc_fail(e, SDC_E_INVALID_ARG, "unknown sampler '%s' (dpm++2m, euler, euler_a, ddim)", s);
    r->sampler = (sdc_sampler_kind)k;
    const char *c = p->scheduler_compat ? p->scheduler_compat : "a1111";
    if (!strcasecmp(c, "a1111") || !strcasecmp(c, "k-diffusion")) r->compat = SDC_COMPAT_A1111;
    else if (!strcasecmp(c, "diffusers")) r->compat = SDC_COMPAT_DIFFUSERS;
    else return sdc_fail(e, SDC_E_INVALID_ARG, "unknown scheduler compat '%s' (a1111, diffusers)", c);
    if (r->compat == SDC_COMPAT_DIFFUSERS && r->sampler != SDC_SAMPLER_DPMPP_2M)
        return sdc_fail(e, SDC_E_UNSUPPORTED,
                        "--scheduler-compat diffusers implements DPM++ 2M (DPMSolverMultistepScheduler) only, not %s",
                        sdc_sampler_name(r->sampler));
    if (r->compat != SDC_COMPAT_DIFFUSERS && p->final_sigma_min)
        return sdc_fail(e, SDC_E_INVALID_ARG, "final sigma_min is a diffusers setting (--scheduler-compat diffusers)");
    if (!p->schedule || !strcasecmp(p->schedule, "automatic"))
        r->schedule = sdc_sampler_default_schedule(r->sampler);
    else {
        int sk = sdc_schedule_from_name(p->schedule);
        if (sk < 0)
            return sdc_fail(e, SDC_E_INVALID_ARG, "unknown schedule '%s' (normal, karras, exponential, ...)",
                            p->schedule);
        r->schedule = (sdc_schedule)sk;
    }
    const char *g = p->rng ? p->rng : "gpu";
    int rk = sdc_rng_kind_from_name(g);
    if (rk < 0) return sdc_fail(e, SDC_E_INVALID_ARG, "unknown rng '%s' (cpu, gpu)", g);
    r->rng = (sdc_rng_kind)rk;
    r->h = p->height / 8;
    r->w = p->width / 8;
    if (!m->has_unet || (!m->has_vae && !p->final_vaelight))
        return sdc_fail(e, SDC_E_FORMAT, "%s: txt2img needs the UNet and the VAE decoder", m->path);
    if (p->preview_every < 0 || p->preview_every > 1000)
        return sdc_fail(e, SDC_E_INVALID_ARG, "preview every %d steps is outside 1..1000", p->preview_every);
    if ((p->cond != NULL) != (p->uncond != NULL))
        return sdc_fail(e, SDC_E_INVALID_ARG, "give both cond and uncond conditioning, or neither");
    if (p->cond && (p->cond_len < 77 || p->cond_len % 77 || p->uncond_len < 77 || p->uncond_len % 77 ||
                    p->cond_len > 77 * SDC_MAX_CONTEXT_CHUNKS || p->uncond_len > 77 * SDC_MAX_CONTEXT_CHUNKS))
        return sdc_fail(e, SDC_E_INVALID_ARG, "conditioning lengths %d and %d must be multiples of 77 up to 77 x %d",
                        p->cond_len, p->uncond_len, SDC_MAX_CONTEXT_CHUNKS);
    if (!p->cond && !m->has_clip)
        return sdc_fail(e, SDC_E_FORMAT, "%s: no text encoder; pass the conditioning instead", m->path);
    return SDC_OK;
}

/* ---------------------------------------------------------------- the UNet as sdc_eps_fn */

/* One runner when cond and uncond have the same length (one batch-2 call, rows [cond, uncond]);
 * two batch-1 runners otherwise (as webui does for prompts of different lengths). */
typedef struct unet_model {
    sdc_runner run[2];
    int n_runs;
    size_t peak_arena;
    sdc_pool *pool;
    /* A1111 conditioning that may change with the step (prompt editing, alternation):
     * written into the runners' context inputs before each call; NULL for fixed conditioning */
    const sdc_a1111_cond *pos, *neg;
    float *pos_ctx, *neg_ctx; /* where in the runner inputs the cond rows and the uncond row live */
    double kind_seconds[SDC_KIND_COUNT]; /* params.profile: UNet time per op kind, all steps */
    /* params.unet_observer: the time MLP alone, to hand each row its time embedding */
    const sdc_txt2img_params *p;
    sdc_runner temb;
    int h, w;
} unet_model;

/* The backend observer of params.profile: sums each op's time into its kind. */
static void profile_op(void *user, const sdc_graph *g, int node, const float *out, double seconds) {
    (void)out;
    ((unet_model *)user)->kind_seconds[sdc_op_kind_of(g->nodes[node].op)] += seconds;
}

/* params.unet_observer: each row's inputs as the deployed batch-1 UNet takes them. */
static sdc_status observe_rows(unet_model *u, const float *x_in, float t, int step, int rows, sdc_error *err) {
    sdc_runner_input(&u->temb, 0)[0] = t;
    SDC_TRY(sdc_runner_run(&u->temb, u->pool, err));
    sdc_unet_call c = {.step = step, .steps = u->p->steps, .rows = rows, .t = t, .h = u->h, .w = u->w,
                       .sample = x_in, .temb = sdc_runner_output(&u->temb)};
    for (int r = 0; r < u->n_runs; r++) {
        sdc_runner *R = &u->run[r];
        const sdc_node *ctx = &R->g.nodes[R->in[2]]; // [B, T, D]
        c.context_len = (int)ctx->shape[1];
        for (int b = 0; b < (int)ctx->shape[0]; b++, c.row++) {
            c.context = sdc_runner_input(R, 2) + (size_t)b * (size_t)ctx->shape[1] * (size_t)ctx->shape[2];
            if (u->p->unet_observer(u->p->unet_observer_user, &c))
                return sdc_fail(err, SDC_E_CANCELLED, "txt2img: stopped by the UNet observer at step %d", step + 1);
        }
    }
    return SDC_OK;
}

static sdc_status unet_eps(void *user, const float *x_in, size_t n, float t, int step, float *eps,
                           int rows, sdc_error *err) {
    unet_model *u = user;
    if (u->pos) {
        sdc_a1111_cond_rows(u->pos, step, u->pos_ctx);
        sdc_a1111_cond_rows(u->neg, step, u->neg_ctx);
    }
    if (u->p && u->p->unet_observer) SDC_TRY(observe_rows(u, x_in, t, step, rows, err));
    int row = 0;
    for (int r = 0; r < u->n_runs; r++) {
        sdc_runner *R = &u->run[r];
        int B = (int)R->g.nodes[R->in[0]].shape[0];
        for (int b = 0; b < B; b++) {
            memcpy(sdc_runner_input(R, 0) + (size_t)b * n, x_in, n * sizeof(float));
            sdc_runner_input(R, 1)[b] = t;
        }
        SDC_TRY(sdc_runner_run(R, u->pool, err));
        memcpy(eps + (size_t)row * n, sdc_runner_output(R), (size_t)B * n * sizeof(float));
        row += B;
    }
    if (row != rows) return sdc_fail(err, SDC_E_INVALID_ARG, "txt2img: %d guidance rows, the UNet ran %d", rows, row);
    return SDC_OK;
}

typedef struct step_progress {
    const sdc_txt2img_params *p;
    double t_last;
    const sdc_vaelight *preview; /* NULL: no previews */
    int preview_is_dir, h, w;
    sdc_pool *pool;
    sdc_timings *timings;
} step_progress;

/* Writes the preview of this step's denoised latent (the x0 prediction A1111 shows). */
static sdc_status write_preview(step_progress *sp, const sdc_step_info *info) {
    const sdc_txt2img_params *p = sp->p;
    int every = p->preview_every > 0 ? p->preview_every : 1;
    if ((info->step + 1) % every != 0 && info->step + 1 != info->steps) return SDC_OK;
    char path[4096];
    if (sp->preview_is_dir) snprintf(path, sizeof path, "%s/step_%03d.png", p->preview, info->step + 1);
    else snprintf(path, sizeof path, "%s", p->preview);
    sdc_error e = {0};
    double t0 = now_s();
    sdc_status s = sdc_vaelight_write_png(sp->preview, info->denoised, sp->h, sp->w, 0, path, sp->pool, &e);
    sp->timings->preview += now_s() - t0;
    sp->timings->n_previews++;
    return s;
}

static sdc_status on_step(void *user, const sdc_step_info *info) {
    step_progress *sp = user;
    if (sp->preview) SDC_TRY(write_preview(sp, info));
    double t = now_s(), dt = t - sp->t_last;
    sp->t_last = t;
    if (sp->p->progress && sp->p->progress(sp->p->progress_user, info->step + 1, info->steps, dt))
        return SDC_E_CANCELLED;
    return SDC_OK;
}

/* ---------------------------------------------------------------- stages */

/* ctx_out: [cond (77*kc*D)] then [uncond (77*ku*D)] */
static sdc_status encode_prompts(const sdc_model *m, const sdc_txt2img_params *p, sdc_pool *pool,
                                 float *ctx, sdc_error *e) {
    char eb[512];
    sdc_tokenizer *tok = NULL;
    sdc_runner r = {0};
    int32_t ids[2 * SDC_CLIP_CTX];
    if (sdc_tokenizer_new(&tok, eb, sizeof eb) != SDC_OK) return sdc_fail(e, SDC_E_FORMAT, "%s", eb);
    sdc_status s = SDC_OK;
    if (sdc_tokenize(tok, p->prompt ? p->prompt : "", ids, eb, sizeof eb) != SDC_OK ||
        sdc_tokenize(tok, p->negative ? p->negative : "", ids + SDC_CLIP_CTX, eb, sizeof eb) != SDC_OK) {
        s = sdc_fail(e, SDC_E_INVALID_ARG, "%s", eb);
        goto done;
    }
    if ((s = sdc_runner_clip(&r, m, 2, p->clip_skip, 0, e)) != SDC_OK) goto done;
    for (int i = 0; i < 2 * SDC_CLIP_CTX; i++) sdc_runner_input(&r, 0)[i] = (float)ids[i];
    if ((s = sdc_runner_run(&r, pool, e)) != SDC_OK) goto done;
    memcpy(ctx, sdc_runner_output(&r), (size_t)2 * SDC_CLIP_CTX * (size_t)m->clip.width * sizeof(float));
done:
    sdc_runner_free(&r);
    sdc_tokenizer_free(tok);
    return s;
}

/* ---------------------------------------------------------------- LoRAs of the prompt */

/* webui's extra networks: the <lora:NAME:TE:UNET> tags of the prompt (webui parses the positive
 * prompt only) are removed from the text (xn->prompt) and each lora_dir/NAME.safetensors is
 * merged into *ov, a child of the model's overlay, seen through *view; *m then points at the
 * view. The caller's model is left as it was. *report gets one report text per LoRA. */
static sdc_status prompt_loras(const sdc_model **m, sdc_model *view, const sdc_txt2img_params *p, sdc_pool *pool,
                               sdc_extra_networks *xn, sdc_weight_overlay **ov, char **report, sdc_error *e) {
    SDC_TRY(sdc_extra_networks_parse(p->prompt, xn, e));
    for (size_t i = 0; i < xn->n; i++) {
        const sdc_extra_network *t = &xn->v[i];
        if (strcmp(t->type, "lora"))
            return sdc_fail(e, SDC_E_UNSUPPORTED, "<%s:%s...>: extra network '%s' is not supported (only <lora:NAME:WEIGHT>)",
                            t->type, t->items[0], t->type);
        if (!p->lora_dir || !p->lora_dir[0])
            return sdc_fail(e, SDC_E_INVALID_ARG, "the prompt names <lora:%s> but no LoRA directory is given (--lora-dir)",
                            t->items[0]);
    }
    if (!xn->n) return SDC_OK;
    SDC_TRY(sdc_overlay_new((*m)->overlay, ov, e));
    for (size_t i = 0; i < xn->n; i++) {
        sdc_lora_tag t;
        SDC_TRY(sdc_extra_network_lora(&xn->v[i], &t, e));
        if (strchr(t.name, '/') || t.name[0] == '.')
            return sdc_fail(e, SDC_E_INVALID_ARG, "<lora:%s>: a LoRA name is a file name in the LoRA directory", t.name);
        char path[4096];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s.safetensors", p->lora_dir, t.name) >= (int)sizeof path)
            return sdc_fail(e, SDC_E_INVALID_ARG, "<lora:%s>: path too long", t.name);
        if (stat(path, &st) != 0)
            return sdc_fail(e, SDC_E_INVALID_ARG, "<lora:%s>: no LoRA named '%s' in %s (looked for %s; only .safetensors LoRAs are read)",
                            t.name, t.name, p->lora_dir, path);
        sdc_st_file *lf = NULL;
        sdc_lora_report rep;
        SDC_TRY(sdc_model_check_file(path, e));
        SDC_TRY(sdc_st_open(path, &lf, e));
        sdc_status s = sdc_lora_merge(*ov, (*m)->st, lf, t.name, t.te, t.unet, pool, &rep, e);
        sdc_st_close(lf);
        if (s != SDC_OK) return s;
        char *line = sdc_lora_report_text(t.name, &rep);
        sdc_lora_report_free(&rep);
        size_t have = *report ? strlen(*report) : 0;
        char *all = line ? realloc(*report, have + strlen(line) + 2) : NULL;
        if (!all) {
            free(line);
            return sdc_fail(e, SDC_E_NOMEM, "out of memory");
        }
        snprintf(all + have, strlen(line) + 2, "%s%s", have ? "\n" : "", line);
        *report = all;
        free(line);
    }
    *view = **m;
    view->overlay = *ov;
    *m = view;
    return SDC_OK;
}

/* webui's "Lora hashes": "name: hash, ..." over the LoRAs merged into the model (command line
 * and prompt, in order), a name's ':' and ',' removed; a repeated name keeps its first place and
 * its last hash (a Python dict). NULL when none (or out of memory). */
static char *lora_hashes(const sdc_model *m) {
    size_t n = sdc_overlay_lora_count(m->overlay), cap = 1;
    if (!n) return NULL;
    for (size_t i = 0; i < n; i++) cap += strlen(sdc_overlay_lora_get(m->overlay, i)->name) + SDC_LORA_HASH_HEX + 4;
    char *out = malloc(cap), *names = malloc(cap);
    const char **hash = calloc(n, sizeof *hash);
    char **name = calloc(n, sizeof *name);
    size_t k = 0, o = 0, no = 0;
    if (!out || !names || !hash || !name) goto done;
    for (size_t i = 0; i < n; i++) {
        const sdc_lora_applied *a = sdc_overlay_lora_get(m->overlay, i);
        char *clean = names + no;
        for (const char *c = a->name; *c; c++)
            if (*c != ':' && *c != ',') names[no++] = *c;
        names[no++] = '\0';
        size_t j = 0;
        while (j < k && strcmp(name[j], clean)) j++;
        if (j == k) name[k++] = clean;
        hash[j] = a->hash;
    }
    out[0] = '\0';
    for (size_t j = 0; j < k; j++) o += (size_t)snprintf(out + o, cap - o, "%s%s: %s", j ? ", " : "", name[j], hash[j]);
done:
    free(names);
    free(hash);
    free(name);
    if (k == 0) {
        free(out);
        return NULL;
    }
    return out;
}

static char *make_infotext(const sdc_model *m, const sdc_txt2img_params *p, const resolved *r,
                           const char *hash, const char *ti_hashes) {
    const char *base = strrchr(m->path, '/');
    base = base ? base + 1 : m->path;
    char name[256];
    snprintf(name, sizeof name, "%s", base);
    char *dot = strrchr(name, '.');
    if (dot && dot != name) *dot = '\0';
    sdc_infotext_field extra[4];
    size_t n_extra = 0;
    char ensd[24];
    /* webui writes ENSD only for samplers that draw noise after the first (the ancestral ones) */
    if (p->ensd != 0 && r->sampler == SDC_SAMPLER_EULER_A) {
        snprintf(ensd, sizeof ensd, "%llu", (unsigned long long)p->ensd);
        extra[n_extra++] = (sdc_infotext_field){"ENSD", ensd};
    }
    if (r->compat == SDC_COMPAT_DIFFUSERS)
        extra[n_extra++] = (sdc_infotext_field){"Scheduler compat", p->final_sigma_min ? "diffusers (final sigma_min)" : "diffusers"};
    char *lh = lora_hashes(m); /* the Lora extra network's field, set when it activates */
    if (lh) extra[n_extra++] = (sdc_infotext_field){"Lora hashes", lh};
    /* webui adds its text encoder's "TI hashes" after the extra networks' fields (setup_conds) */
    if (ti_hashes) extra[n_extra++] = (sdc_infotext_field){"TI hashes", ti_hashes};
    sdc_infotext_params ip = {
        .prompt = p->prompt,
        .negative = p->negative,
        .steps = p->steps,
        .sampler_name = sdc_sampler_name(r->sampler),
        .schedule_name = r->sampler == SDC_SAMPLER_DDIM ? NULL : sdc_schedule_label(r->schedule),
        .cfg = p->cfg,
        .seed = (int64_t)p->seed,
        .width = p->width,
        .height = p->height,
        .model_hash = hash,
        .model_name = name,
        .clip_skip = p->clip_skip,
        .rng = r->rng == SDC_RNG_TORCH_CPU ? "CPU" : NULL,
        .extra = extra,
        .n_extra = n_extra,
        .version = SDC_VERSION_STRING,
    };
    char *text = sdc_infotext(&ip);
    free(lh);
    return text;
}

/* ---------------------------------------------------------------- txt2img */

sdc_status sdc_txt2img(const sdc_model *m, const sdc_txt2img_params *p, sdc_image *out,
                       char *errbuf, size_t errlen) {
    sdc_error e = {0};
    resolved r = {0};
    memset(out, 0, sizeof *out);
    double t0 = now_s();
    unet_model u = {0};
    sdc_runner vae = {0};
    sdc_vaelight *vl = NULL;
    sdc_tokenizer *tok = NULL;
    sdc_a1111_cond *pos = NULL, *neg = NULL;
    sdc_embeddings *embs = NULL;
    char *ti_hashes = NULL; /* webui's "TI hashes" infotext value */
    sdc_pool *pool = NULL;
    float *ctx = NULL, *x = NULL, *work = NULL;
    sdc_sched *sched = NULL;
    sdc_noise_table *nt = NULL;
    sdc_extra_networks xn = {0}; /* the prompt's <lora:...> tags and the prompt without them */
    sdc_weight_overlay *lora_ov = NULL;
    sdc_model lora_view;
    if (resolve(m, p, &r, &e) != SDC_OK) goto done;
    const int D = m->unet.ctx_dim;
    const size_t n = (size_t)m->unet.in_ch * (size_t)r.h * (size_t)r.w;

    pool = sdc_pool_new(p->n_threads > 0 ? p->n_threads : m->n_threads);
    if (!pool) {
        sdc_fail(&e, SDC_E_BACKEND, "cannot start worker threads");
        goto done;
    }
    /* the prompt's <lora:...> tags, merged for this generation: m is a view with them from here */
    if (!p->cond && !p->raw_prompt &&
        prompt_loras(&m, &lora_view, p, pool, &xn, &lora_ov, &out->lora_report, &e) != SDC_OK)
        goto done;

    /* 0. the model hash for the PNG metadata (A1111's AutoV2) */
    uint8_t digest[32];
    char hash[16] = "";
    double ts = now_s();
    if (sdc_sha256_file(m->path, digest, &e) != SDC_OK) goto done;
    sdc_autov2_hex(digest, hash);
    out->timings.load_hash = now_s() - ts;

    /* 1. conditioning: k cond rows of Tc tokens (k > 1 for AND prompts), one uncond row of Tu */
    int k = 1, Tc = p->cond ? p->cond_len : SDC_CLIP_CTX, Tu = p->cond ? p->uncond_len : SDC_CLIP_CTX;
    double and_weights[SDC_MAX_CONDS];
    ts = now_s();
    if (p->embeddings_dir && (p->cond || p->raw_prompt)) {
        sdc_fail(&e, SDC_E_INVALID_ARG, "embeddings apply to A1111 prompts, not to %s",
                 p->cond ? "given conditioning" : "raw prompts");
        goto done;
    }
    if (!p->cond && !p->raw_prompt) {
        sdc_a1111_opts ao = {.clip_skip = p->clip_skip, .comma_padding_backtrack = 20, .emphasis = SDC_EMPHASIS_ORIGINAL,
                             .ti_hashes = &ti_hashes};
        char eb[512];
        if (sdc_tokenizer_new(&tok, eb, sizeof eb) != SDC_OK) {
            sdc_fail(&e, SDC_E_FORMAT, "%s", eb);
            goto done;
        }
        if (p->embeddings_dir) {
            sdc_status es = sdc_embeddings_load(m, tok, p->embeddings_dir, &embs, eb, sizeof eb);
            if (es != SDC_OK) {
                sdc_fail(&e, es, "%s", eb);
                goto done;
            }
            ao.embeddings = embs;
        }
        /* webui encodes the negative prompt first (setup_conds), which orders "TI hashes" */
        if (sdc_a1111_cond_new(m, tok, p->negative ? p->negative : "", p->steps, 0, 1, &ao, &neg, &e) != SDC_OK ||
            sdc_a1111_cond_new(m, tok, xn.prompt ? xn.prompt : p->prompt ? p->prompt : "", p->steps, 0, 0, &ao, &pos, &e) != SDC_OK)
            goto done;
        k = sdc_a1111_cond_parts(pos);
        if (k > SDC_MAX_CONDS) {
            sdc_fail(&e, SDC_E_LIMIT, "the prompt has %d AND parts; at most %d are supported", k, SDC_MAX_CONDS);
            goto done;
        }
        for (int i = 0; i < k; i++) and_weights[i] = sdc_a1111_cond_weight(pos, i);
        Tc = sdc_a1111_cond_tokens(pos);
        Tu = sdc_a1111_cond_tokens(neg);
    }
    ctx = malloc((size_t)(k * Tc + Tu) * (size_t)D * sizeof(float));
    x = malloc(n * sizeof(float));
    sched = malloc(sizeof *sched);
    nt = malloc(sizeof *nt);
    if (!ctx || !x || !sched || !nt) {
        sdc_fail(&e, SDC_E_NOMEM, "out of memory");
        goto done;
    }
    if (pos) {
        sdc_a1111_cond_rows(pos, 0, ctx);
        sdc_a1111_cond_rows(neg, 0, ctx + (size_t)k * (size_t)Tc * (size_t)D);
    } else if (p->cond) {
        if (m->has_clip && m->clip.width != D) {
            sdc_fail(&e, SDC_E_INVALID_ARG, "conditioning width mismatch");
            goto done;
        }
        memcpy(ctx, p->cond, (size_t)Tc * (size_t)D * sizeof(float));
        memcpy(ctx + (size_t)Tc * (size_t)D, p->uncond, (size_t)Tu * (size_t)D * sizeof(float));
    } else if (encode_prompts(m, p, pool, ctx, &e) != SDC_OK)
        goto done;
    out->timings.text_encoder = now_s() - ts;
    sdc_model_release(m, SDC_CLIP_PREFIX); /* done with the text encoder: its pages leave RSS */

    /* 2. schedule and noise */
    sdc_noise_table_init(nt, r.compat);
    if (r.sampler == SDC_SAMPLER_DDIM) {
        if (sdc_schedule_ddim(nt, p->steps, sched, &e) != SDC_OK) goto done;
    } else {
        sdc_sched_params sp = {.kind = r.schedule, .steps = p->steps, .final_sigma_min = p->final_sigma_min};
        if (sdc_schedule_make(nt, &sp, sched, &e) != SDC_OK) goto done;
    }
    sdc_sampler_params sp = sdc_sampler_defaults(r.sampler);
    sdc_rng rng;
    sp.sched = sched;
    sp.model = unet_eps;
    sp.model_user = &u;
    sp.cfg.scale = p->cfg;
    float weights_f[SDC_MAX_CONDS];
    if (k > 1) {
        for (int i = 0; i < k; i++) weights_f[i] = (float)and_weights[i];
        sp.cfg.n_cond = k;
        sp.cfg.weights = weights_f;
    }
    sp.rngs = &rng;
    sp.batch = 1;
    step_progress prog = {.p = p};
    sp.on_step = on_step;
    sp.step_user = &prog;
    uint64_t seed = p->seed;
    sdc_initial_noise(r.compat, r.rng, &seed, 1, p->ensd, n, &rng, x);
    if (p->init_latent) memcpy(x, p->init_latent, n * sizeof(float));
    float scale = sdc_sampler_noise_scale(&sp);
    for (size_t i = 0; i < n; i++) x[i] *= scale;

    /* previews (and the optional fast final decode) with the vaelight decoder */
    if (p->preview || p->final_vaelight) {
        char vpath[4096];
        if (sdc_vaelight_find(p->preview_decoder, vpath, sizeof vpath, &e) != SDC_OK ||
            sdc_vaelight_load(vpath, &vl, &e) != SDC_OK)
            goto done;
    }
    if (p->preview) {
        size_t pl = strlen(p->preview);
        prog.preview_is_dir = !(pl >= 4 && !strcasecmp(p->preview + pl - 4, ".png"));
        if (prog.preview_is_dir && mkdir(p->preview, 0777) != 0) {
            struct stat st;
            if (stat(p->preview, &st) != 0 || !S_ISDIR(st.st_mode)) {
                sdc_fail(&e, SDC_E_IO, "%s: cannot create the preview directory", p->preview);
                goto done;
            }
        }
        prog.preview = vl;
    }
    prog.h = r.h;
    prog.w = r.w;
    prog.pool = pool;
    prog.timings = &out->timings;

    /* 3. the sampling loop on UNet graphs built once */
    u.pool = pool;
    u.p = p;
    u.h = r.h;
    u.w = r.w;
    if (p->unet_observer && sdc_runner_temb(&u.temb, m, 1, &e) != SDC_OK) goto done;
    size_t cond_floats = (size_t)k * (size_t)Tc * (size_t)D;
    if (Tc == Tu) { /* one batch: [cond_0 .. cond_k-1, uncond] */
        u.n_runs = 1;
        if (sdc_runner_unet(&u.run[0], m, k + 1, r.h, r.w, Tc, 0, 0, &e) != SDC_OK) goto done;
        u.pos_ctx = sdc_runner_input(&u.run[0], 2);
        u.neg_ctx = u.pos_ctx + cond_floats;
    } else { /* webui runs cond and uncond of different lengths as separate calls */
        u.n_runs = 2;
        if (sdc_runner_unet(&u.run[0], m, k, r.h, r.w, Tc, 0, 0, &e) != SDC_OK ||
            sdc_runner_unet(&u.run[1], m, 1, r.h, r.w, Tu, 0, 0, &e) != SDC_OK)
            goto done;
        u.pos_ctx = sdc_runner_input(&u.run[0], 2);
        u.neg_ctx = sdc_runner_input(&u.run[1], 2);
    }
    memcpy(u.pos_ctx, ctx, cond_floats * sizeof(float));
    memcpy(u.neg_ctx, ctx + cond_floats, (size_t)Tu * (size_t)D * sizeof(float));
    u.pos = pos;
    u.neg = neg;
    for (int i = 0; i < u.n_runs; i++) {
        u.peak_arena += u.run[i].plan.arena_floats * sizeof(float);
        double kf[SDC_KIND_COUNT];
        out->timings.unet_step_flops += sdc_graph_flops(&u.run[i].g, kf);
        for (int j = 0; j < SDC_KIND_COUNT && j < 4; j++) out->timings.unet_kind_flops[j] += kf[j];
        if (p->low_memory) sdc_runner_stream_weights(&u.run[i], m);
        if (p->profile) {
            u.run[i].plan.observer = profile_op;
            u.run[i].plan.observer_user = &u;
        }
    }
    size_t wf = sdc_sampler_workspace_floats(&sp, n);
    if (!wf || !(work = malloc(wf * sizeof(float)))) {
        sdc_fail(&e, SDC_E_NOMEM, "out of memory for the sampler workspace");
        goto done;
    }
    ts = prog.t_last = now_s();
    if (sdc_sample(&sp, x, n, work, &e) != SDC_OK) goto done;
    out->timings.unet_total = now_s() - ts;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            sdc_fail(&e, SDC_E_BACKEND, "the latent is not finite after sampling (value %zu is %g)", i, (double)x[i]);
            goto done;
        }
    out->timings.steps = sched->steps;
    for (int j = 0; j < SDC_KIND_COUNT && j < 4; j++) out->timings.unet_kind_seconds[j] = u.kind_seconds[j];
    for (int i = 0; i < u.n_runs; i++) sdc_runner_free(&u.run[i]);
    sdc_model_release(m, SDC_UNET_PREFIX); /* the UNet's pages leave RSS before the VAE's arena comes */

    /* 4. VAE decoder (or vaelight) and the picture */
    ts = now_s();
    out->width = p->width;
    out->height = p->height;
    out->rgb = malloc((size_t)p->width * (size_t)p->height * 3);
    if (!out->rgb) {
        sdc_fail(&e, SDC_E_NOMEM, "out of memory");
        goto done;
    }
    out->timings.peak_arena_bytes = u.peak_arena;
    if (p->final_vaelight) {
        float *zs = malloc(n * sizeof(float)), *img = malloc((size_t)3 * p->width * p->height * sizeof(float));
        sdc_status vs = zs && img ? SDC_OK : sdc_fail(&e, SDC_E_NOMEM, "out of memory");
        for (size_t i = 0; vs == SDC_OK && i < n; i++) zs[i] = x[i] / SDC_VAE_SCALE;
        if (vs == SDC_OK) vs = sdc_vaelight_decode(vl, zs, r.h, r.w, img, pool, &e);
        if (vs == SDC_OK) sdc_image_to_u8(img, p->height, p->width, out->rgb);
        free(zs);
        free(img);
        if (vs != SDC_OK) goto done;
    } else if (p->low_memory) { /* overlapping tiles, one tile-sized arena, weights streamed */
        float *img = malloc((size_t)3 * p->width * p->height * sizeof(float)), *zs = malloc(n * sizeof(float));
        sdc_status vs = img && zs ? SDC_OK : sdc_fail(&e, SDC_E_NOMEM, "out of memory");
        for (size_t i = 0; vs == SDC_OK && i < n; i++) zs[i] = x[i] / SDC_VAE_SCALE;
        size_t vae_bytes = 0;
        int th, tw;
        sdc_vae_tile_size(r.h, r.w, SDC_LOWMEM_VAE_TILE_PIXELS, SDC_LOWMEM_VAE_OVERLAP, &th, &tw);
        if (vs == SDC_OK)
            vs = sdc_vae_decode_tiled(m, zs, r.h, r.w, th, tw, SDC_LOWMEM_VAE_OVERLAP, 1, pool, img,
                                      &out->timings.vae_flops, &vae_bytes, &e);
        if (vae_bytes > out->timings.peak_arena_bytes) out->timings.peak_arena_bytes = vae_bytes;
        if (vs == SDC_OK) sdc_image_to_u8(img, p->height, p->width, out->rgb);
        free(img);
        free(zs);
        if (vs != SDC_OK) goto done;
    } else {
        if (sdc_runner_vae(&vae, m, 1, r.h, r.w, 0, &e) != SDC_OK) goto done;
        out->timings.vae_flops = sdc_graph_flops(&vae.g, NULL);
        float *z = sdc_runner_input(&vae, 0);
        for (size_t i = 0; i < n; i++) z[i] = x[i] / SDC_VAE_SCALE;
        if (sdc_runner_run(&vae, pool, &e) != SDC_OK) goto done;
        size_t vae_bytes = vae.plan.arena_floats * sizeof(float);
        if (vae_bytes > out->timings.peak_arena_bytes) out->timings.peak_arena_bytes = vae_bytes;
        sdc_image_to_u8(sdc_runner_output(&vae), p->height, p->width, out->rgb);
    }
    out->timings.vae = now_s() - ts;
    out->latent = x;
    x = NULL;
    out->parameters = make_infotext(m, p, &r, hash, ti_hashes);
    if (!out->parameters) sdc_fail(&e, SDC_E_NOMEM, "out of memory");
    out->timings.total = now_s() - t0;
done:
    for (int i = 0; i < 2; i++) sdc_runner_free(&u.run[i]);
    sdc_runner_free(&u.temb);
    sdc_runner_free(&vae);
    sdc_vaelight_free(vl);
    sdc_a1111_cond_free(pos);
    sdc_a1111_cond_free(neg);
    sdc_embeddings_free(embs);
    free(ti_hashes);
    sdc_tokenizer_free(tok);
    sdc_pool_free(pool);
    free(ctx);
    free(x);
    free(work);
    free(sched);
    free(nt);
    sdc_overlay_free(lora_ov); /* the prompt's LoRAs leave with this generation */
    sdc_extra_networks_free(&xn);
    if (e.code != SDC_OK) {
        sdc_image_free(out);
        if (errbuf && errlen) snprintf(errbuf, errlen, "%s", e.msg);
    }
    return e.code;
}
