/* cli/cmd_encode.c: `sdc encode [--a1111 [--embeddings DIR]] -m MODEL -p TEXT [--clip-skip N] -o OUT.npy`
 * The literal text-encoder stage: tokenize, run CLIP, write the [1, 77, D] hidden states
 * (what an exported text encoder computes for these ids). With --a1111 the prompt is read as
 * AUTOMATIC1111's webui reads it ((weights), BREAK, chunks of 75 tokens: sdc_encode_a1111) and
 * the output is [1, 77 * chunks, D]; --embeddings DIR adds textual-inversion embeddings (the
 * webui's "TI hashes" value is printed when one is used). */
#include "cli.h"
#include "io/npy.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: sdc encode [--a1111 [--embeddings DIR]] -m MODEL -p TEXT [--clip-skip N] [-t THREADS] -o OUT.npy\n"
           "  writes the text encoder's output [1, 77, D] as float32 .npy\n"
           "  --clip-skip N      A1111 clip skip: 1 = last layer (default), 2 = penultimate, ...\n"
           "  --a1111            A1111 conditioning: (emphasis), BREAK, 75-token chunks -> [1, 77*k, D]\n"
           "  --embeddings DIR   with --a1111: textual-inversion embeddings (DIR/WORD.pt|.bin|.safetensors)\n"
           "  --lora FILE[:W]    merge a LoRA (weight W, default 1) into the model first; repeatable\n");
}

int cmd_encode(int argc, char **argv) {
    const char *C = "encode", *model_path = NULL, *prompt = NULL, *out_path = NULL, *emb_dir = NULL;
    int clip_skip = 1, threads = 0, a1111 = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'},
        {"clip-skip", required_argument, 0, 'c'}, {"threads", required_argument, 0, 't'},
        {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {"a1111", no_argument, 0, 'a'},
        {"embeddings", required_argument, 0, 'e'}, {"lora", required_argument, 0, 'L'}, {0, 0, 0, 0}};
    CLI_GETOPT_RESET();
    for (int c; (c = getopt_long(argc, argv, ":m:p:t:o:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'p': prompt = optarg; break;
        case 'o': out_path = optarg; break;
        case 'c': if (cli_int_arg(C, "--clip-skip", optarg, 1, 12, &clip_skip)) return 1; break;
        case 't': if (cli_int_arg(C, "--threads", optarg, 1, 256, &threads)) return 1; break;
        case 'h': usage(); return 0;
        case 'a': a1111 = 1; break;
        case 'e': emb_dir = optarg; break;
        case 'L': if (cli_lora_option(C, optarg)) return 1; break;
        case ':': return cli_fail(C, "option %s needs a value", argv[optind - 1]);
        default: return cli_fail(C, "unknown option %s (see sdc encode --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_fail(C, "unexpected argument '%s'", argv[optind]);
    if (!prompt) return cli_fail(C, "no prompt given (-p TEXT)");
    if (!out_path) return cli_fail(C, "no output given (-o OUT.npy)");
    if (emb_dir && !a1111) return cli_fail(C, "--embeddings needs --a1111 (webui's prompt handling)");

    char err[512];
    sdc_tokenizer *tok = NULL;
    sdc_model *m = NULL;
    sdc_embeddings *emb = NULL;
    char *ti_hashes = NULL;
    float *out = NULL;
    int rc = 1;
    int32_t ids[SDC_CLIP_CTX];
    int n_tokens = SDC_CLIP_CTX;
    if (sdc_tokenizer_new(&tok, err, sizeof err) != SDC_OK) { cli_fail(C, "%s", err); goto done; }
    if (!a1111 && sdc_tokenize(tok, prompt, ids, err, sizeof err) != SDC_OK) { cli_fail(C, "%s", err); goto done; }
    if (cli_load_model(C, model_path, threads, &m)) goto done;
    sdc_model_desc d;
    sdc_model_describe(m, &d);
    if (emb_dir && sdc_embeddings_load(m, tok, emb_dir, &emb, err, sizeof err) != SDC_OK) {
        cli_fail(C, "%s", err);
        goto done;
    }
    if (a1111) {
        if (sdc_encode_a1111_ti(m, tok, emb, prompt, clip_skip, &out, &n_tokens, &ti_hashes, err, sizeof err) != SDC_OK) {
            cli_fail(C, "%s", err);
            goto done;
        }
    } else if (!(out = malloc((size_t)SDC_CLIP_CTX * (size_t)d.text_width * sizeof(float)))) {
        cli_fail(C, "out of memory");
        goto done;
    }
    if (!a1111 && sdc_encode_ids(m, ids, 1, clip_skip, out, err, sizeof err) != SDC_OK) { cli_fail(C, "%s", err); goto done; }
    sdc_error e = {0};
    int64_t shape[3] = {1, n_tokens, d.text_width};
    if (sdc_npy_write_f32(out_path, out, 3, shape, &e) != SDC_OK) { cli_fail(C, "%s", e.msg); goto done; }
    if (ti_hashes) printf("TI hashes: %s\n", ti_hashes);
    rc = 0;
done:
    free(ti_hashes);
    sdc_embeddings_free(emb);
    free(out);
    sdc_model_free(m);
    sdc_tokenizer_free(tok);
    return rc;
}
