/* src/deploy/calib.c: recording calibration sets while sampling (see calib.h for the contract).
 *
 * Flow of sdc_calib_run:
 *   1. a staging folder DIR/.sdc-calib.tmp with calib/ and pulsar2/ inside;
 *   2. per prompt: its text-encoder id rows (tokenized as the pipeline does), then sdc_txt2img
 *      with a UNet observer that appends every row's three inputs to a spool file (the UNet set
 *      can be large: 280 samples at 320x480 are 78 MB) and keeps only an index in memory; the
 *      final latent / 0.18215 is the VAE sample;
 *   3. the selection (--max-samples), then the tars, read back from the spool in order;
 *   4. pulsar2 configs, build script, time-embedding table and manifest (src/deploy/pulsar2.c);
 *   5. everything moved into DIR; the staging folder (with the spool) removed.
 */
#define _GNU_SOURCE
#include "deploy/calib.h"

#include "deploy/pickle_write.h"
#include "io/npy.h"
#include "io/tar.h"
#include "model/model.h"
#include "prompt/conditioning.h"
#include "prompt/prompt_parse.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STAGING ".sdc-calib.tmp"
#define CTX 77

/* ================================================================ the output folder */

sdc_status sdc_deploy_prepare_dir(const char *dir, int force, sdc_error *err) {
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT) return sdc_fail(err, SDC_E_IO, "%s: cannot open the directory (%s)", dir, strerror(errno));
        if (mkdir(dir, 0777) != 0) return sdc_fail(err, SDC_E_IO, "%s: cannot create the directory (%s)", dir, strerror(errno));
        return SDC_OK;
    }
    int used = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) used = 1;
    closedir(d);
    if (used && !force)
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: the directory is not empty (use --force to write into it)", dir);
    if (access(dir, W_OK) != 0) return sdc_fail(err, SDC_E_IO, "%s: the directory is not writable", dir);
    return SDC_OK;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tree(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* ================================================================ recording */

typedef struct unet_rec {
    int prompt, step, row, rows;
} unet_rec;

typedef struct text_row {
    int32_t ids[CTX];
    char name[48];
} text_row;

typedef struct recorder {
    const sdc_model *m;
    int h, w, D, temb_dim;
    size_t sample_n, ctx_n, rec_floats;
    FILE *spool;
    unet_rec *recs;
    size_t n_recs, cap_recs;
    int prompt;
    int truncated;
    float *timesteps, *temb_table; /* [steps], [steps, temb_dim]: from the first prompt */
    int steps_seen;
    text_row *rows;
    size_t n_rows, cap_rows;
    float *latents; /* [prompts, 4 h w] */
    sdc_error err;
} recorder;

static int observe(void *user, const sdc_unet_call *c) {
    recorder *r = user;
    if (c->h != r->h || c->w != r->w || c->context_len < CTX || c->row < 0 || c->row >= c->rows) {
        sdc_fail(&r->err, SDC_E_BACKEND, "calib: unexpected UNet call (%dx%d latent, %d tokens, row %d of %d)", c->h,
                 c->w, c->context_len, c->row, c->rows);
        return 1;
    }
    if (c->context_len > CTX) r->truncated++;
    if (fwrite(c->sample, sizeof(float), r->sample_n, r->spool) != r->sample_n ||
        fwrite(c->context, sizeof(float), r->ctx_n, r->spool) != r->ctx_n ||
        fwrite(c->temb, sizeof(float), (size_t)r->temb_dim, r->spool) != (size_t)r->temb_dim) {
        sdc_fail(&r->err, SDC_E_IO, "calib: cannot write the sample spool (disk full?)");
        return 1;
    }
    if (r->n_recs == r->cap_recs) {
        size_t cap = r->cap_recs ? 2 * r->cap_recs : 256;
        unet_rec *nr = realloc(r->recs, cap * sizeof *nr);
        if (!nr) {
            sdc_fail(&r->err, SDC_E_NOMEM, "calib: out of memory");
            return 1;
        }
        r->recs = nr;
        r->cap_recs = cap;
    }
    r->recs[r->n_recs++] = (unet_rec){r->prompt, c->step, c->row, c->rows};
    if (r->prompt == 0 && c->row == 0 && c->step < c->steps && c->step == r->steps_seen) {
        r->timesteps[c->step] = c->t;
        memcpy(r->temb_table + (size_t)c->step * r->temb_dim, c->temb, (size_t)r->temb_dim * sizeof(float));
        r->steps_seen++;
    }
    return 0;
}

/* Adds one id row unless an identical one is there already. */
static sdc_status add_row(recorder *r, const int32_t *ids, int prompt, const char *branch, int k, sdc_error *err) {
    for (size_t i = 0; i < r->n_rows; i++)
        if (!memcmp(r->rows[i].ids, ids, sizeof r->rows[i].ids)) return SDC_OK;
    if (r->n_rows == r->cap_rows) {
        size_t cap = r->cap_rows ? 2 * r->cap_rows : 64;
        text_row *nr = realloc(r->rows, cap * sizeof *nr);
        if (!nr) return sdc_fail(err, SDC_E_NOMEM, "calib: out of memory");
        r->rows = nr;
        r->cap_rows = cap;
    }
    text_row *t = &r->rows[r->n_rows++];
    memcpy(t->ids, ids, sizeof t->ids);
    snprintf(t->name, sizeof t->name, "p%03d_%s_%02d.npy", prompt, branch, k);
    return SDC_OK;
}

/* The text encoder's input rows for one prompt, as src/prompt/conditioning.c forms them: per
 * AND subprompt (the negative is not split), its prompt-editing texts are one batch; each text is
 * tokenized into chunks by tokenize_line, and a text with fewer chunks than the batch's longest
 * gets empty chunks [BOS, EOS x 76]. */
static sdc_status prompt_rows(recorder *r, const sdc_tokenizer *tok, const char *prompt, int is_negative,
                              const sdc_txt2img_params *g, int pi, sdc_error *err) {
    const char *branch = is_negative ? "uncond" : "cond";
    int k = 0;
    if (g->raw_prompt) {
        int32_t ids[CTX];
        char eb[256];
        if (sdc_tokenize(tok, prompt, ids, eb, sizeof eb) != SDC_OK) return sdc_fail(err, SDC_E_INVALID_ARG, "%s", eb);
        return add_row(r, ids, pi, branch, 0, err);
    }
    sdc_a1111_opts ao = {.clip_skip = g->clip_skip, .comma_padding_backtrack = 20, .emphasis = SDC_EMPHASIS_ORIGINAL};
    sdc_prompt_and split = {0};
    char *single[1] = {(char *)prompt};
    if (is_negative) split.texts = single, split.n_texts = 1;
    else SDC_TRY(sdc_prompt_split_and(prompt, &split, err));
    sdc_status s = SDC_OK;
    int32_t empty[CTX];
    empty[0] = SDC_CLIP_BOS;
    for (int i = 1; i < CTX; i++) empty[i] = SDC_CLIP_EOS;
    for (size_t t = 0; t < split.n_texts && s == SDC_OK; t++) {
        sdc_prompt_schedule sch = {0};
        if ((s = sdc_prompt_schedule_get(split.texts[t], g->steps, 0, 0, &sch, err)) != SDC_OK) break;
        sdc_a1111_chunks *ch = calloc(sch.n ? sch.n : 1, sizeof *ch);
        int K = 0;
        if (!ch) s = sdc_fail(err, SDC_E_NOMEM, "calib: out of memory");
        for (size_t e = 0; e < sch.n && s == SDC_OK; e++)
            if ((s = sdc_a1111_tokenize_line(tok, sch.v[e].text, &ao, &ch[e], err)) == SDC_OK && ch[e].n > K) K = ch[e].n;
        for (size_t e = 0; e < sch.n && s == SDC_OK; e++)
            for (int c = 0; c < K && s == SDC_OK; c++)
                s = add_row(r, c < ch[e].n ? ch[e].tokens + (size_t)c * CTX : empty, pi, branch, k++, err);
        for (size_t e = 0; ch && e < sch.n; e++) sdc_a1111_chunks_free(&ch[e]);
        free(ch);
        sdc_prompt_schedule_free(&sch);
    }
    if (!is_negative) sdc_prompt_and_free(&split);
    return s;
}

/* ================================================================ selection */

/* keep[i] = 1 for `want` of n items spread evenly (all when want <= 0 or want >= n). */
static void spread(unsigned char *keep, size_t n, size_t want) {
    if (!want || want >= n) {
        memset(keep, 1, n);
        return;
    }
    memset(keep, 0, n);
    for (size_t j = 0; j < want; j++) keep[(size_t)(((double)j + 0.5) * (double)n / (double)want)] = 1;
}

/* UNet selection: prompt p gets floor((p+1)N/P) - floor(pN/P) picks; pick q of n_p goes to step
 * floor((q + phase_p) S / n_p) with phase_p = (p + 0.5) / P, row (q + p) mod R. A step is hit by at
 * most ceil(n_p / S) <= R consecutive picks, whose rows then differ: no pick is taken twice. */
static void select_unet(const unet_rec *recs, size_t n, int P, size_t want, unsigned char *keep) {
    if (!want || want >= n) {
        memset(keep, 1, n);
        return;
    }
    memset(keep, 0, n);
    size_t base = 0;
    for (int p = 0; p < P; p++) {
        size_t cnt = 0;
        while (base + cnt < n && recs[base + cnt].prompt == p) cnt++;
        if (!cnt) continue;
        int R = recs[base].rows, S = (int)(cnt / (size_t)R);
        size_t np = (size_t)((double)(p + 1) * want / P) - (size_t)((double)p * want / P);
        if (np > cnt) np = cnt;
        double phase = (p + 0.5) / P;
        for (size_t q = 0; q < np; q++) {
            int step = (int)(((double)q + phase) * S / (double)np);
            if (step >= S) step = S - 1;
            int row = (int)((q + (size_t)p) % (size_t)R);
            keep[base + (size_t)step * R + row] = 1;
        }
        base += cnt;
    }
}

/* ================================================================ writing */

typedef struct tar_out {
    FILE *f;
    sdc_tar_writer w;
    char path[4200];
} tar_out;

static sdc_status tar_open(tar_out *t, const char *stage, const char *rel, sdc_error *err) {
    if (snprintf(t->path, sizeof t->path, "%s/%s", stage, rel) >= (int)sizeof t->path)
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: path too long", stage);
    if (!(t->f = fopen(t->path, "wb"))) return sdc_fail(err, SDC_E_IO, "%s: cannot create (%s)", t->path, strerror(errno));
    sdc_tar_writer_init(&t->w, t->f, t->path);
    return SDC_OK;
}

/* Encodes `a` (plain, or as a one-or-more-entry dict when n_obj > 0) and appends it. */
static sdc_status tar_put(tar_out *t, const char *name, const sdc_npy_entry *a, int n_obj, sdc_error *err) {
    void *buf = NULL;
    size_t len = 0;
    SDC_TRY(n_obj ? sdc_npy_object_encode(a, n_obj, &buf, &len, err) : sdc_npy_encode(a, &buf, &len, err));
    sdc_status s = sdc_tar_write_member(&t->w, name, buf, len, err);
    free(buf);
    return s;
}

static sdc_status tar_close(tar_out *t, uint64_t *bytes, sdc_error *err) {
    if (!t->f) return SDC_OK;
    sdc_status s = sdc_tar_writer_finish(&t->w, err);
    if (fclose(t->f) != 0 && s == SDC_OK) s = sdc_fail(err, SDC_E_IO, "%s: cannot write (disk full?)", t->path);
    t->f = NULL;
    if (s == SDC_OK && bytes) *bytes += t->w.bytes;
    return s;
}

static void rec_name(char *buf, size_t cap, const unet_rec *r) {
    char branch[16];
    if (r->row == r->rows - 1) snprintf(branch, sizeof branch, "uncond");
    else if (r->rows == 2) snprintf(branch, sizeof branch, "cond");
    else snprintf(branch, sizeof branch, "cond%d", r->row);
    snprintf(buf, cap, "p%03d_s%03d_%s.npy", r->prompt, r->step, branch);
}

static sdc_status write_unet(recorder *r, const char *stage, const unsigned char *keep, sdc_calib_set *set,
                             sdc_error *err) {
    tar_out t[4] = {0};
    sdc_status s = SDC_OK;
    float *buf = malloc(r->rec_floats * sizeof *buf);
    if (!buf) return sdc_fail(err, SDC_E_NOMEM, "calib: out of memory");
    const char *rel[4] = {"calib/unet_numpyobject.tar", "calib/unet/sample.tar", "calib/unet/encoder_hidden_states.tar",
                          "calib/unet/time_embedding.tar"};
    for (int i = 0; i < 4 && s == SDC_OK; i++) s = tar_open(&t[i], stage, rel[i], err);
    int64_t xs[4] = {1, r->m->unet.in_ch, r->h, r->w}, cs[3] = {1, CTX, r->D}, es[2] = {1, r->temb_dim};
    sdc_npy_entry e[3] = {{"sample", SDC_NPY_F32, 4, xs, buf},
                          {"encoder_hidden_states", SDC_NPY_F32, 3, cs, buf + r->sample_n},
                          {SDC_TEMB_NAME, SDC_NPY_F32, 2, es, buf + r->sample_n + r->ctx_n}};
    if (s == SDC_OK && fflush(r->spool) != 0) s = sdc_fail(err, SDC_E_IO, "calib: cannot write the sample spool (disk full?)");
    for (size_t i = 0; i < r->n_recs && s == SDC_OK; i++) {
        if (!keep[i]) continue;
        if (fseeko(r->spool, (off_t)(i * r->rec_floats * sizeof(float)), SEEK_SET) != 0 ||
            fread(buf, sizeof(float), r->rec_floats, r->spool) != r->rec_floats) {
            s = sdc_fail(err, SDC_E_IO, "calib: cannot read the sample spool back");
            break;
        }
        char name[64];
        rec_name(name, sizeof name, &r->recs[i]);
        s = tar_put(&t[0], name, e, 3, err);
        for (int k = 0; k < 3 && s == SDC_OK; k++) s = tar_put(&t[1 + k], name, &e[k], 0, err);
        set->written++;
    }
    for (int i = 0; i < 4; i++) {
        sdc_status c = tar_close(&t[i], i == 0 ? &set->numpyobject_bytes : &set->numpy_bytes, err);
        if (s == SDC_OK) s = c;
    }
    free(buf);
    return s;
}

static sdc_status write_text(recorder *r, const char *stage, size_t want, sdc_calib_set *set, sdc_error *err) {
    tar_out t[2] = {0};
    unsigned char *keep = malloc(r->n_rows ? r->n_rows : 1);
    if (!keep) return sdc_fail(err, SDC_E_NOMEM, "calib: out of memory");
    spread(keep, r->n_rows, want);
    sdc_status s = tar_open(&t[0], stage, "calib/text_encoder_numpyobject.tar", err);
    if (s == SDC_OK) s = tar_open(&t[1], stage, "calib/text_encoder/input_ids.tar", err);
    int64_t shape[2] = {1, CTX}, ids[CTX];
    sdc_npy_entry e = {"input_ids", SDC_NPY_I64, 2, shape, ids};
    for (size_t i = 0; i < r->n_rows && s == SDC_OK; i++) {
        if (!keep[i]) continue;
        for (int k = 0; k < CTX; k++) ids[k] = r->rows[i].ids[k];
        s = tar_put(&t[0], r->rows[i].name, &e, 1, err);
        if (s == SDC_OK) s = tar_put(&t[1], r->rows[i].name, &e, 0, err);
        set->written++;
    }
    sdc_status c0 = tar_close(&t[0], &set->numpyobject_bytes, err), c1 = tar_close(&t[1], &set->numpy_bytes, err);
    free(keep);
    return s != SDC_OK ? s : c0 != SDC_OK ? c0 : c1;
}

static sdc_status write_vae(recorder *r, const char *stage, int P, size_t want, sdc_calib_set *set, sdc_error *err) {
    tar_out t[2] = {0};
    unsigned char *keep = malloc((size_t)P);
    if (!keep) return sdc_fail(err, SDC_E_NOMEM, "calib: out of memory");
    spread(keep, (size_t)P, want);
    sdc_status s = tar_open(&t[0], stage, "calib/vae_decoder_numpyobject.tar", err);
    if (s == SDC_OK) s = tar_open(&t[1], stage, "calib/vae_decoder/latent.tar", err);
    int64_t shape[4] = {1, r->m->unet.in_ch, r->h, r->w};
    for (int i = 0; i < P && s == SDC_OK; i++) {
        if (!keep[i]) continue;
        sdc_npy_entry e = {"latent", SDC_NPY_F32, 4, shape, r->latents + (size_t)i * r->sample_n};
        char name[32];
        snprintf(name, sizeof name, "p%03d.npy", i);
        s = tar_put(&t[0], name, &e, 1, err);
        if (s == SDC_OK) s = tar_put(&t[1], name, &e, 0, err);
        set->written++;
    }
    sdc_status c0 = tar_close(&t[0], &set->numpyobject_bytes, err), c1 = tar_close(&t[1], &set->numpy_bytes, err);
    free(keep);
    return s != SDC_OK ? s : c0 != SDC_OK ? c0 : c1;
}

/* Moves stage/NAME to dir/NAME, replacing what is there (a folder is renamed aside first). */
static sdc_status move_in(const char *stage, const char *dir, const char *name, sdc_error *err) {
    char from[4200], to[4200], old[4200];
    if (snprintf(from, sizeof from, "%s/%s", stage, name) >= (int)sizeof from ||
        snprintf(to, sizeof to, "%s/%s", dir, name) >= (int)sizeof to ||
        snprintf(old, sizeof old, "%s/old.%s", stage, name) >= (int)sizeof old)
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: path too long", dir);
    struct stat st;
    if (lstat(to, &st) == 0 && rename(to, old) != 0)
        return sdc_fail(err, SDC_E_IO, "%s: cannot replace (%s)", to, strerror(errno));
    if (rename(from, to) != 0) return sdc_fail(err, SDC_E_IO, "%s: cannot move into place (%s)", to, strerror(errno));
    return SDC_OK;
}

/* ================================================================ the run */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

sdc_status sdc_calib_run(const sdc_model *m, const sdc_calib_params *p, sdc_calib_summary *out, sdc_error *err) {
    double t0 = now_s();
    memset(out, 0, sizeof *out);
    const sdc_txt2img_params *g = &p->gen;
    if (!p->dir || !p->prompts || p->n_prompts < 1)
        return sdc_fail(err, SDC_E_INVALID_ARG, "calib: no %s", !p->dir ? "output directory" : "prompts");
    if (p->max_samples < 0) return sdc_fail(err, SDC_E_INVALID_ARG, "calib: max samples %d is negative", p->max_samples);
    if (g->width < 8 || g->height < 8 || g->width % 8 || g->height % 8 || g->width > 2048 || g->height > 2048)
        return sdc_fail(err, SDC_E_INVALID_ARG, "size %dx%d: width and height must be multiples of 8 in 8..2048",
                        g->width, g->height);
    if (!m->has_clip || !m->has_unet || !m->has_vae)
        return sdc_fail(err, SDC_E_FORMAT, "%s: calibration needs the text encoder, the UNet and the VAE decoder", m->path);
    if (g->cond || g->uncond)
        return sdc_fail(err, SDC_E_INVALID_ARG, "calib: prompts are encoded here; give no conditioning");
    if (g->steps < 1 || g->steps > 1000) return sdc_fail(err, SDC_E_INVALID_ARG, "steps %d is outside 1..1000", g->steps);

    char stage[4200], spool_path[4300];
    if (snprintf(stage, sizeof stage, "%s/%s", p->dir, STAGING) >= (int)sizeof stage)
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: path too long", p->dir);
    snprintf(spool_path, sizeof spool_path, "%s/unet.spool", stage);
    rm_tree(stage); // left over from a killed run
    const char *dirs[] = {"", "/calib", "/calib/unet", "/calib/text_encoder", "/calib/vae_decoder", "/pulsar2"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char d[4300];
        snprintf(d, sizeof d, "%s%s", stage, dirs[i]);
        if (mkdir(d, 0777) != 0) {
            sdc_status s = sdc_fail(err, SDC_E_IO, "%s: cannot create (%s)", d, strerror(errno));
            rm_tree(stage);
            return s;
        }
    }

    recorder r = {.m = m, .h = g->height / 8, .w = g->width / 8, .D = m->unet.ctx_dim, .temb_dim = m->unet.time_dim};
    r.sample_n = (size_t)m->unet.in_ch * (size_t)r.h * (size_t)r.w;
    r.ctx_n = (size_t)CTX * (size_t)r.D;
    r.rec_floats = r.sample_n + r.ctx_n + (size_t)r.temb_dim;
    sdc_tokenizer *tok = NULL;
    unsigned char *keep = NULL;
    sdc_status s = SDC_OK;
    char eb[512];
    r.timesteps = calloc((size_t)g->steps, sizeof *r.timesteps);
    r.temb_table = calloc((size_t)g->steps * (size_t)r.temb_dim, sizeof *r.temb_table);
    r.latents = malloc((size_t)p->n_prompts * r.sample_n * sizeof *r.latents);
    if (!r.timesteps || !r.temb_table || !r.latents) {
        s = sdc_fail(err, SDC_E_NOMEM, "calib: out of memory");
        goto done;
    }
    if (!(r.spool = fopen(spool_path, "w+b"))) {
        s = sdc_fail(err, SDC_E_IO, "%s: cannot create (%s)", spool_path, strerror(errno));
        goto done;
    }
    if (sdc_tokenizer_new(&tok, eb, sizeof eb) != SDC_OK) {
        s = sdc_fail(err, SDC_E_FORMAT, "%s", eb);
        goto done;
    }

    /* record */
    for (int i = 0; i < p->n_prompts; i++) {
        sdc_txt2img_params gp = *g;
        gp.prompt = p->prompts[i].prompt ? p->prompts[i].prompt : "";
        if (p->prompts[i].negative) gp.negative = p->prompts[i].negative;
        gp.seed = g->seed + (uint64_t)i;
        gp.unet_observer = observe;
        gp.unet_observer_user = &r;
        gp.preview = NULL;
        gp.final_vaelight = 0;
        if ((s = prompt_rows(&r, tok, gp.prompt, 0, &gp, i, err)) != SDC_OK ||
            (s = prompt_rows(&r, tok, gp.negative ? gp.negative : "", 1, &gp, i, err)) != SDC_OK) {
            char msg[SDC_ERRMSG_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            sdc_fail(err, s, "prompt %d: %s", i + 1, msg);
            goto done;
        }
        r.prompt = i;
        size_t before = r.n_recs;
        sdc_image img = {0};
        s = sdc_txt2img(m, &gp, &img, eb, sizeof eb);
        if (s != SDC_OK) {
            if (r.err.code != SDC_OK) sdc_fail(err, r.err.code, "prompt %d: %s", i + 1, r.err.msg);
            else sdc_fail(err, s, "prompt %d: %s", i + 1, eb);
            s = err->code;
            goto done;
        }
        for (size_t k = 0; k < r.sample_n; k++) r.latents[(size_t)i * r.sample_n + k] = img.latent[k] / SDC_VAE_SCALE;
        if (p->on_prompt) p->on_prompt(p->user, i, p->n_prompts, &img.timings);
        sdc_image_free(&img);
        size_t got = r.n_recs - before, R = got ? (size_t)r.recs[before].rows : 0;
        int S = R ? (int)(got / R) : 0;
        if (!got || got % R || r.recs[r.n_recs - 1].step != S - 1) {
            s = sdc_fail(err, SDC_E_BACKEND, "prompt %d: %zu UNet rows recorded, not whole steps", i + 1, got);
            goto done;
        }
    }
    out->truncated = r.truncated;
    out->unet.recorded = (int)r.n_recs;
    out->text.recorded = (int)r.n_rows;
    out->vae.recorded = p->n_prompts;

    /* select and write */
    if (!(keep = malloc(r.n_recs))) {
        s = sdc_fail(err, SDC_E_NOMEM, "calib: out of memory");
        goto done;
    }
    select_unet(r.recs, r.n_recs, p->n_prompts, (size_t)p->max_samples, keep);
    if ((s = write_unet(&r, stage, keep, &out->unet, err)) != SDC_OK ||
        (s = write_text(&r, stage, (size_t)p->max_samples, &out->text, err)) != SDC_OK ||
        (s = write_vae(&r, stage, p->n_prompts, (size_t)p->max_samples, &out->vae, err)) != SDC_OK)
        goto done;
    fclose(r.spool);
    r.spool = NULL;
    remove(spool_path);

    /* toolchain files */
    char path[4400];
    int64_t ts[2] = {r.steps_seen, r.temb_dim};
    snprintf(path, sizeof path, "%s/time_embedding.npy", stage);
    if ((s = sdc_npy_write_f32(path, r.temb_table, 2, ts, err)) != SDC_OK) goto done;
    out->seconds = now_s() - t0;
    {
        const char *sampler = g->sampler ? g->sampler : "dpm++2m";
        sdc_deploy_info d = {
            .width = g->width, .height = g->height, .latent_ch = m->unet.in_ch, .text_ctx = CTX,
            .text_width = m->clip.width, .time_dim = r.temb_dim, .steps = r.steps_seen, .cfg = g->cfg,
            .sampler = sampler, .schedule = g->schedule ? g->schedule : "automatic",
            .compat = g->scheduler_compat ? g->scheduler_compat : "a1111", .final_sigma_min = g->final_sigma_min,
            .timesteps = r.timesteps, .onnx_fp16 = p->onnx_fp16,
            .model_label = p->model_label ? p->model_label : m->path, .calib = out};
        if ((s = sdc_calib_write_pulsar2(stage, &d, err)) != SDC_OK || (s = sdc_calib_write_manifest(stage, &d, err)) != SDC_OK)
            goto done;
    }

    /* into place */
    const char *items[] = {"calib", "pulsar2", "time_embedding.npy", "manifest.json"};
    for (size_t i = 0; i < sizeof items / sizeof *items && s == SDC_OK; i++) s = move_in(stage, p->dir, items[i], err);
done:
    if (r.spool) fclose(r.spool);
    rm_tree(stage);
    sdc_tokenizer_free(tok);
    free(keep);
    free(r.recs);
    free(r.rows);
    free(r.latents);
    free(r.timesteps);
    free(r.temb_table);
    return s;
}
