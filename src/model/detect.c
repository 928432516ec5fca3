/* src/model/detect.c: model-file kind and family detection (rules and messages in detect.h). */
#include "model/detect.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* Container sniffing                                                                          */
/* ------------------------------------------------------------------------------------------ */

sdc_status sdc_detect_file_kind(const char *path, sdc_file_kind *kind, sdc_error *err) {
    sdc_file_kind k_ = SDC_FILE_OTHER, *k = kind ? kind : &k_;
    *k = SDC_FILE_OTHER;
    struct stat st;
    if (stat(path, &st) != 0) return sdc_fail(err, SDC_E_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return sdc_fail(err, SDC_E_IO, "%s: is a directory, not a .safetensors file "
                        "(diffusers folders are not supported)", path);
    if (!S_ISREG(st.st_mode)) return sdc_fail(err, SDC_E_IO, "%s: not a regular file", path);
    if (st.st_size == 0) return sdc_fail(err, SDC_E_FORMAT, "%s: empty file", path);

    unsigned char h[16] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sdc_fail(err, SDC_E_IO, "%s: %s", path, strerror(errno));
    ssize_t got;
    do got = read(fd, h, sizeof h);
    while (got < 0 && errno == EINTR);
    int read_errno = errno;
    close(fd);
    if (got < 0) return sdc_fail(err, SDC_E_IO, "%s: read failed: %s", path, strerror(read_errno));

    /* Safetensors first: a header length that fits, followed by '{'. (A header length whose low
     * byte is 0x80 would look like a pickle's first byte, so pickles are checked after.) */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | h[i];
    uint64_t size = (uint64_t)st.st_size;
    if (got >= 9 && h[8] == '{' && hlen >= 2 && hlen <= size - 8) {
        *k = SDC_FILE_SAFETENSORS;
        return SDC_OK;
    }
    if (got >= 4 && !memcmp(h, "PK\x03\x04", 4)) {
        *k = SDC_FILE_PICKLE;
        return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: a .ckpt/pickle checkpoint; sdc reads "
                        ".safetensors only (convert it first)", path);
    }
    if (got >= 2 && h[0] == 0x80 && h[1] >= 2 && h[1] <= 5) {
        *k = SDC_FILE_PICKLE;
        return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: a .ckpt/pickle checkpoint; sdc reads "
                        ".safetensors only (convert it first)", path);
    }
    if (got >= 4 && !memcmp(h, "GGUF", 4)) {
        *k = SDC_FILE_GGUF;
        return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: a GGUF file; sdc reads .safetensors only",
                        path);
    }
    if (size < 10)
        return sdc_fail(err, SDC_E_FORMAT, "%s: too short for a safetensors file (%" PRIu64
                        " bytes)", path, size);
    if (hlen > size - 8)
        return sdc_fail(err, SDC_E_FORMAT, "%s: not a safetensors file (header length %" PRIu64
                        " exceeds the file size %" PRIu64 ")", path, hlen, size);
    return sdc_fail(err, SDC_E_FORMAT, "%s: not a safetensors file (the header does not start "
                    "with '{')", path);
}

/* ------------------------------------------------------------------------------------------ */
/* Family                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static const char *const family_ids[SDC_FAMILY_COUNT] = {
    [SDC_FAMILY_UNKNOWN] = "unknown", [SDC_FAMILY_SD15] = "sd15",
    [SDC_FAMILY_SD2] = "sd2",         [SDC_FAMILY_SDXL] = "sdxl",
    [SDC_FAMILY_LORA] = "lora",       [SDC_FAMILY_EMBEDDING] = "embedding",
    [SDC_FAMILY_VAE] = "vae",         [SDC_FAMILY_DIFFUSERS] = "diffusers",
};
static const char *const family_descs[SDC_FAMILY_COUNT] = {
    [SDC_FAMILY_UNKNOWN] = "not a Stable Diffusion checkpoint",
    [SDC_FAMILY_SD15] = "an SD1.5 checkpoint",
    [SDC_FAMILY_SD2] = "an SD 2.x checkpoint",
    [SDC_FAMILY_SDXL] = "an SDXL checkpoint",
    [SDC_FAMILY_LORA] = "a LoRA",
    [SDC_FAMILY_EMBEDDING] = "a textual-inversion embedding",
    [SDC_FAMILY_VAE] = "a VAE-only file",
    [SDC_FAMILY_DIFFUSERS] = "diffusers-format weights",
};
_Static_assert(SDC_FAMILY_COUNT == 8, "update family_ids and family_descs");

const char *sdc_family_id(sdc_family f) {
    return (int)f >= 0 && f < SDC_FAMILY_COUNT ? family_ids[f] : "unknown";
}

const char *sdc_family_desc(sdc_family f) {
    return (int)f >= 0 && f < SDC_FAMILY_COUNT ? family_descs[f] : family_descs[0];
}

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }
static int ends(const char *s, const char *p) {
    size_t n = strlen(s), m = strlen(p);
    return n >= m && !strcmp(s + n - m, p);
}

/* Which LoRA naming `name` uses, or NULL. */
static const char *lora_marker(const char *name) {
    if (starts(name, "lora_unet_")) return "lora_unet_*";
    if (starts(name, "lora_te")) return "lora_te*";
    if (strstr(name, ".lora_down.") || strstr(name, ".lora_up.")) return "*.lora_down.* / *.lora_up.*";
    if (strstr(name, ".lora_A.") || strstr(name, ".lora_B.")) return "*.lora_A.* / *.lora_B.*";
    if (strstr(name, ".hada_w") || strstr(name, ".lokr_w")) return "LyCORIS *.hada_* / *.lokr_*";
    return NULL;
}

static const char *embedding_marker(const char *name) {
    if (!strcmp(name, "emb_params")) return "emb_params";
    if (starts(name, "string_to_param")) return "string_to_param.*";
    if (!strcmp(name, "clip_l") || !strcmp(name, "clip_g")) return "clip_l / clip_g";
    return NULL;
}

static int is_diffusers(const char *name) {
    static const char *const p[] = {"unet.", "text_model.", "text_encoder.", "vae.",
                                    "down_blocks.", "up_blocks.", "mid_block.", "time_embedding.",
                                    "conv_in.", "conv_norm_out."};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (starts(name, p[i])) return 1;
    return 0;
}

static int is_bare_vae(const char *name) {
    return starts(name, "encoder.") || starts(name, "decoder.") || starts(name, "quant_conv.") ||
           starts(name, "post_quant_conv.");
}

/* Tallies of the keys that the rules look at. */
typedef struct tally {
    size_t ldm, openclip, conditioner, label_emb, diffusers, bare_vae, lora, emb;
    const char *lora_mark, *emb_mark;
} tally;

static void set_evidence(sdc_family_info *o, const char *s) {
    snprintf(o->evidence, sizeof o->evidence, "%s", s);
}

sdc_status sdc_detect_family(const sdc_st_file *f, sdc_family_info *o, sdc_error *err) {
    memset(o, 0, sizeof *o);
    tally t = {0};
    size_t n = sdc_st_count(f);
    o->n_tensors = n;
    const char *path = sdc_st_path(f);

    for (size_t i = 0; i < n; i++) {
        const sdc_st_tensor *x = sdc_st_get(f, i);
        const char *name = x->name;
        int comp;
        switch (sdc_sd15_classify_key(name, &comp)) {
        case SDC_KEY_PARAM: {
            sdc_component_info *c = &o->comp[comp];
            c->present = 1;
            c->n_tensors++;
            c->n_params += x->numel;
            c->dtypes |= 1u << x->dtype;
            o->total_params += x->numel;
            t.ldm++;
            break;
        }
        case SDC_KEY_BUFFER: o->n_buffers++; break;
        case SDC_KEY_OTHER:
            if (!o->n_ignored++) snprintf(o->first_ignored, sizeof o->first_ignored, "%s", name);
            break;
        }
        if (starts(name, "cond_stage_model.model.")) t.openclip++;
        if (starts(name, "conditioner.embedders.")) t.conditioner++;
        if (starts(name, SDC_SD15_UNET_PREFIX "label_emb.")) t.label_emb++;
        if (is_diffusers(name)) t.diffusers++;
        if (is_bare_vae(name)) t.bare_vae++;
        const char *m = lora_marker(name);
        if (m && !t.lora++) t.lora_mark = m;
        m = embedding_marker(name);
        if (m && !t.emb++) t.emb_mark = m;
        /* the UNet's cross-attention input width and input channels */
        if (starts(name, SDC_SD15_UNET_PREFIX) && ends(name, ".attn2.to_k.weight") &&
            x->ndim == 2 && !o->context_dim && x->shape[1] <= INT32_MAX)
            o->context_dim = (int)x->shape[1];
        if (!strcmp(name, SDC_SD15_UNET_PREFIX "input_blocks.0.0.weight") && x->ndim == 4 &&
            x->shape[1] <= INT32_MAX)
            o->unet_in_channels = (int)x->shape[1];
    }

    /* The rules, first match wins (see detect.h). */
    if (n == 0) {
        set_evidence(o, "no tensors");
    } else if (t.conditioner) {
        o->family = SDC_FAMILY_SDXL;
        set_evidence(o, "conditioner.embedders.*");
    } else if (t.openclip) {
        o->family = SDC_FAMILY_SD2;
        set_evidence(o, "cond_stage_model.model.*: OpenCLIP text encoder");
    } else if (t.label_emb) {
        o->family = SDC_FAMILY_SDXL;
        set_evidence(o, "model.diffusion_model.label_emb.*");
    } else if (o->context_dim == 1024) {
        o->family = SDC_FAMILY_SD2;
        set_evidence(o, "UNet cross-attention width 1024");
    } else if (o->context_dim == 2048) {
        o->family = SDC_FAMILY_SDXL;
        set_evidence(o, "UNet cross-attention width 2048");
    } else if (t.ldm) {
        o->family = SDC_FAMILY_SD15;
        static const char *const prefix[SDC_SD15_N_COMPONENTS] = {
            "model.diffusion_model.*", "first_stage_model.*", "cond_stage_model.transformer.*"};
        for (int c = 0; c < SDC_SD15_N_COMPONENTS; c++)
            if (o->comp[c].present) {
                size_t used = strlen(o->evidence);
                snprintf(o->evidence + used, sizeof o->evidence - used, "%s%s", used ? ", " : "",
                         prefix[c]);
            }
    } else if (t.lora) {
        o->family = SDC_FAMILY_LORA;
        set_evidence(o, t.lora_mark);
    } else if (t.emb) {
        o->family = SDC_FAMILY_EMBEDDING;
        set_evidence(o, t.emb_mark);
    } else if (n == 1 && sdc_st_get(f, 0)->ndim <= 2 && sdc_st_get(f, 0)->numel <= 75 * 1280) {
        const sdc_st_tensor *x = sdc_st_get(f, 0);
        o->family = SDC_FAMILY_EMBEDDING;
        if (x->ndim == 2)
            snprintf(o->evidence, sizeof o->evidence, "a single tensor '%.60s' [%" PRId64
                     ", %" PRId64 "]", x->name, x->shape[0], x->shape[1]);
        else
            snprintf(o->evidence, sizeof o->evidence, "a single small tensor '%.60s'", x->name);
    } else if (t.diffusers) {
        o->family = SDC_FAMILY_DIFFUSERS;
        set_evidence(o, "unet.* / text_model.* / down_blocks.* names");
    } else if (t.bare_vae) {
        o->family = SDC_FAMILY_VAE;
        set_evidence(o, "encoder.* / decoder.* keys without first_stage_model.");
    } else {
        set_evidence(o, "no model.diffusion_model.*, first_stage_model.* or "
                        "cond_stage_model.transformer.* keys");
    }

    switch (o->family) {
    case SDC_FAMILY_SD15: return SDC_OK;
    case SDC_FAMILY_SD2:
    case SDC_FAMILY_SDXL:
        return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: %s (%s); sdc runs SD1.5 only", path,
                        sdc_family_desc(o->family), o->evidence);
    case SDC_FAMILY_LORA:
    case SDC_FAMILY_EMBEDDING:
    case SDC_FAMILY_VAE:
        return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: %s (%s), not a full checkpoint; sdc loads "
                        "full SD1.5 checkpoints only", path, sdc_family_desc(o->family),
                        o->evidence);
    case SDC_FAMILY_DIFFUSERS:
        return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: %s (%s); sdc reads single-file checkpoints "
                        "with the original LDM key names", path, sdc_family_desc(o->family),
                        o->evidence);
    default:
        return sdc_fail(err, SDC_E_FORMAT, "%s: %s (%s)", path, sdc_family_desc(o->family),
                        o->evidence);
    }
}

void sdc_dtype_mask_str(uint32_t mask, char *buf, size_t len) {
    if (!len) return;
    buf[0] = '\0';
    size_t used = 0;
    for (int d = 0; d < SDC_DTYPE_COUNT; d++) {
        if (!(mask & (1u << d))) continue;
        int w = snprintf(buf + used, len - used, "%s%s", used ? "," : "", sdc_dtype_table[d].name);
        if (w < 0 || (size_t)w >= len - used) break;
        used += (size_t)w;
    }
    if (!used) snprintf(buf, len, "-");
}
