/* src/deploy/pulsar2.c: the toolchain files that go with the calibration sets (see calib.h):
 * pulsar2 build configs, the build script and manifest.json.
 *
 * The configs follow the seed's (config_unet_u16.json of the article's repository): ONNX input,
 * NPU3, the whole graph in U16 (layer_configs DEFAULT..DEFAULT), MinMax, the calibration set of
 * every input with calibration_size = the samples written (the seed used 4 of 280), NCHW input
 * processors, compiler check 0 and max_dynamic_batch_size 1. The seed compiled no text encoder;
 * its config here is the same template without input processors (its input is int32 ids). */
#include "deploy/calib.h"

#include "prompt/prompt_parse.h"
#include "sampling/sampler.h"
#include "sampling/schedule.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct tensor_desc {
    const char *name;
    const char *file; /* the Numpy tar's base name */
    const char *dtype;
    int ndim;
    int shape[4];
} tensor_desc;

typedef struct model_desc {
    const char *key;  /* text_encoder, unet, vae_decoder */
    int n_in;
    tensor_desc in[3];
    tensor_desc out;
    const sdc_calib_set *set;
} model_desc;

static void describe(const sdc_deploy_info *d, model_desc md[3]) {
    int h = d->height / 8, w = d->width / 8;
    const char *f = d->onnx_fp16 ? "float16" : "float32";
    md[0] = (model_desc){"text_encoder", 1, {{"input_ids", "input_ids", "int32", 2, {1, d->text_ctx}}},
                         {"last_hidden_state", NULL, f, 3, {1, d->text_ctx, d->text_width}}, &d->calib->text};
    md[1] = (model_desc){"unet", 3,
                         {{"sample", "sample", f, 4, {1, d->latent_ch, h, w}},
                          {"encoder_hidden_states", "encoder_hidden_states", f, 3, {1, d->text_ctx, d->text_width}},
                          {SDC_TEMB_NAME, "time_embedding", f, 2, {1, d->time_dim}}},
                         {"out_sample", NULL, f, 4, {1, d->latent_ch, h, w}}, &d->calib->unet};
    md[2] = (model_desc){"vae_decoder", 1, {{"latent", "latent", f, 4, {1, d->latent_ch, h, w}}},
                         {"sample", NULL, f, 4, {1, 3, d->height, d->width}}, &d->calib->vae};
}

static FILE *open_out(const char *dir, const char *rel, char *path, size_t cap, sdc_error *err) {
    snprintf(path, cap, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    if (!f) sdc_fail(err, SDC_E_IO, "%s: cannot create (%s)", path, strerror(errno));
    return f;
}

static sdc_status close_out(FILE *f, const char *path, sdc_error *err) {
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    return bad ? sdc_fail(err, SDC_E_IO, "%s: cannot write (disk full?)", path) : SDC_OK;
}

/* ================================================================ pulsar2 */

static void write_config(FILE *f, const model_desc *md, int numpy) {
    fprintf(f, "{\n  \"model_type\": \"ONNX\",\n  \"npu_mode\": \"NPU3\",\n  \"quant\": {\n    \"input_configs\": [\n");
    if (numpy) {
        for (int i = 0; i < md->n_in; i++)
            fprintf(f,
                    "      {\n        \"tensor_name\": \"%s\",\n        \"calibration_dataset\": \"calib/%s/%s.tar\",\n"
                    "        \"calibration_size\": %d,\n        \"calibration_format\": \"Numpy\"\n      }%s\n",
                    md->in[i].name, md->key, md->in[i].file, md->set->written, i + 1 < md->n_in ? "," : "");
    } else {
        fprintf(f,
                "      {\n        \"tensor_name\": \"DEFAULT\",\n        \"calibration_dataset\": \"calib/%s_numpyobject.tar\",\n"
                "        \"calibration_size\": %d,\n        \"calibration_format\": \"NumpyObject\"\n      }\n",
                md->key, md->set->written);
    }
    fprintf(f, "    ],\n    \"calibration_method\": \"MinMax\",\n    \"precision_analysis\": false,\n"
               "    \"precision_analysis_method\": \"EndToEnd\",\n    \"layer_configs\": [\n      {\n"
               "        \"start_tensor_names\": [\"DEFAULT\"],\n        \"end_tensor_names\": [\"DEFAULT\"],\n"
               "        \"data_type\": \"U16\"\n      }\n    ]\n  },\n");
    if (strcmp(md->key, "text_encoder") != 0)
        fprintf(f, "  \"input_processors\": [\n    {\n      \"tensor_name\": \"DEFAULT\",\n"
                   "      \"tensor_format\": \"AutoColorSpace\",\n      \"tensor_layout\": \"NCHW\"\n    }\n  ],\n");
    fprintf(f, "  \"compiler\": {\n    \"check\": 0,\n    \"max_dynamic_batch_size\": 1\n  }\n}\n");
}

sdc_status sdc_calib_write_pulsar2(const char *dir, const sdc_deploy_info *d, sdc_error *err) {
    model_desc md[3];
    describe(d, md);
    char path[4400], rel[128];
    for (int k = 0; k < 3; k++)
        for (int numpy = 0; numpy < 2; numpy++) {
            snprintf(rel, sizeof rel, "pulsar2/%s%s.json", md[k].key, numpy ? "_numpy" : "");
            FILE *f = open_out(dir, rel, path, sizeof path, err);
            if (!f) return err->code;
            write_config(f, &md[k], numpy);
            SDC_TRY(close_out(f, path, err));
        }
    FILE *f = open_out(dir, "pulsar2/build.sh", path, sizeof path, err);
    if (!f) return err->code;
    fprintf(f,
            "#!/bin/sh\n"
            "# pulsar2/build.sh, written by sdc calib: compiles the three exported models with Axera's pulsar2\n"
            "# (whole graph U16, MinMax calibration on every recorded sample, NPU3), as the seed did for its UNet.\n"
            "#\n"
            "#   sh pulsar2/build.sh [numpy]\n"
            "#\n"
            "# Runs from the deploy folder (the one holding manifest.json), which must also hold the ONNX files\n"
            "# (`sdc deploy` writes both; or `sdc export -o DIR` and then `sdc calib -o DIR --force`).\n"
            "# 'numpy' uses the per-input Numpy calibration tars instead of the NumpyObject ones.\n"
            "# Outputs: axmodel/{text_encoder,unet,vae_decoder}.axmodel. The UNet takes the longest (the seed: 68 min).\n"
            "set -e\n"
            "cd \"$(dirname \"$0\")/..\"\n"
            "case \"${1:-}\" in\n  numpy) sfx=_numpy ;;\n  \"\") sfx= ;;\n"
            "  *) echo \"usage: sh pulsar2/build.sh [numpy]\" >&2; exit 2 ;;\nesac\n"
            "for m in text_encoder unet vae_decoder; do\n"
            "    [ -f \"$m.onnx\" ] || { echo \"pulsar2/build.sh: $m.onnx is missing: run sdc export -o $(pwd) first\" >&2; exit 1; }\n"
            "done\n");
    for (int k = 0; k < 3; k++)
        fprintf(f, "pulsar2 build --input %s.onnx --config pulsar2/%s$sfx.json --output_dir axmodel/%s --output_name %s.axmodel\n",
                md[k].key, md[k].key, md[k].key, md[k].key);
    SDC_TRY(close_out(f, path, err));
    chmod(path, 0755);
    return SDC_OK;
}

/* ================================================================ manifest */

static void json_str(FILE *f, const char *s) {
    size_t n = sdc_prompt_json_string(NULL, s, strlen(s));
    char *b = malloc(n + 1);
    if (!b) {
        fputs("\"\"", f);
        return;
    }
    sdc_prompt_json_string(b, s, strlen(s));
    fwrite(b, 1, n, f);
    free(b);
}

static void json_tensor(FILE *f, const tensor_desc *t) {
    fprintf(f, "{\"name\": \"%s\", \"dtype\": \"%s\", \"shape\": [", t->name, t->dtype);
    for (int i = 0; i < t->ndim; i++) fprintf(f, "%s%d", i ? ", " : "", t->shape[i]);
    fprintf(f, "]}");
}

sdc_status sdc_calib_write_manifest(const char *dir, const sdc_deploy_info *d, sdc_error *err) {
    model_desc md[3];
    describe(d, md);
    int sk = sdc_sampler_from_name(d->sampler);
    if (!strcasecmp(d->sampler, "dpm++2m") || !strcasecmp(d->sampler, "dpmpp2m")) sk = SDC_SAMPLER_DPMPP_2M;
    const char *sampler = sk >= 0 ? sdc_sampler_name((sdc_sampler_kind)sk) : d->sampler;
    int sch = !strcasecmp(d->schedule, "automatic") ? (sk >= 0 ? (int)sdc_sampler_default_schedule((sdc_sampler_kind)sk) : -1)
                                                     : sdc_schedule_from_name(d->schedule);
    const char *schedule = sk == SDC_SAMPLER_DDIM ? "ddim" : sch >= 0 ? sdc_schedule_name((sdc_schedule)sch) : d->schedule;
    char path[4400];
    FILE *f = open_out(dir, "manifest.json", path, sizeof path, err);
    if (!f) return err->code;
    fprintf(f, "{\n  \"format\": \"sdc deploy manifest 1\",\n  \"model\": ");
    json_str(f, d->model_label);
    fprintf(f, ",\n  \"image\": {\"width\": %d, \"height\": %d, \"channels\": 3, \"layout\": \"NCHW\",\n"
               "            \"postprocess\": \"rgb8 = round(clip(sample / 2 + 0.5, 0, 1) * 255), HWC\"},\n",
            d->width, d->height);
    fprintf(f, "  \"latent\": {\"channels\": %d, \"height\": %d, \"width\": %d, \"vae_scale_factor\": 0.18215,\n"
               "             \"vae_input\": \"final latent / 0.18215\"},\n",
            d->latent_ch, d->height / 8, d->width / 8);
    fprintf(f, "  \"models\": {\n");
    for (int k = 0; k < 3; k++) {
        fprintf(f, "    \"%s\": {\"onnx\": \"%s.onnx\", \"axmodel\": \"axmodel/%s/%s.axmodel\",\n      \"inputs\": [", md[k].key,
                md[k].key, md[k].key, md[k].key);
        for (int i = 0; i < md[k].n_in; i++) {
            if (i) fprintf(f, ",\n                 ");
            json_tensor(f, &md[k].in[i]);
        }
        fprintf(f, "],\n      \"outputs\": [");
        json_tensor(f, &md[k].out);
        fprintf(f, "]}%s\n", k < 2 ? "," : "");
    }
    fprintf(f, "  },\n");
    fprintf(f, "  \"tokenizer\": {\"kind\": \"CLIP BPE (openai/clip-vit-large-patch14)\", \"vocab_size\": 49408,\n"
               "                \"vocab\": \"bpe_simple_vocab_16e6.txt.gz\", \"lowercase\": true,\n"
               "                \"bos_id\": %d, \"eos_id\": %d, \"pad_id\": %d, \"max_length\": %d,\n"
               "                \"layout\": \"BOS, up to 75 tokens, EOS, then EOS padding\"},\n",
            SDC_CLIP_BOS, SDC_CLIP_EOS, SDC_CLIP_EOS, d->text_ctx);
    fprintf(f, "  \"time_embedding\": {\"input\": \"%s\", \"dim\": %d,\n"
               "                     \"formula\": \"SiLU(time_embedding(timestep_embedding(t, 320)))\",\n"
               "                     \"table\": \"time_embedding.npy\", \"table_rows\": \"one per step of the scheduler below\"},\n",
            SDC_TEMB_NAME, d->time_dim);
    fprintf(f, "  \"scheduler\": {\"sampler\": \"%s\", \"schedule\": \"%s\", \"compat\": \"%s\", \"final_sigma_min\": %s,\n"
               "                \"steps\": %d, \"cfg\": %g, \"num_train_timesteps\": 1000, \"beta_start\": 0.00085,\n"
               "                \"beta_end\": 0.012, \"beta_schedule\": \"scaled_linear\", \"prediction_type\": \"epsilon\",\n"
               "                \"guidance\": \"eps = eps_uncond + cfg * (eps_cond - eps_uncond), two batch-1 UNet calls per step\",\n"
               "                \"timesteps\": [",
            sampler, schedule, d->compat, d->final_sigma_min ? "true" : "false", d->steps, (double)d->cfg);
    for (int i = 0; i < d->steps; i++) fprintf(f, "%s%.9g", i ? ", " : "", (double)d->timesteps[i]);
    fprintf(f, "]},\n  \"calibration\": {\n");
    for (int k = 0; k < 3; k++) {
        const sdc_calib_set *s = md[k].set;
        fprintf(f, "    \"%s\": {\"recorded\": %d, \"samples\": %d, \"numpyobject\": \"calib/%s_numpyobject.tar\", \"numpy\": [",
                md[k].key, s->recorded, s->written, md[k].key);
        for (int i = 0; i < md[k].n_in; i++)
            fprintf(f, "%s\"calib/%s/%s.tar\"", i ? ", " : "", md[k].key, md[k].in[i].file);
        fprintf(f, "]}%s\n", k < 2 ? "," : "");
    }
    fprintf(f, "  },\n  \"unet_context_truncated\": %d\n}\n", d->calib->truncated);
    return close_out(f, path, err);
}
