/* cli/cmd_bench.c: `sdc bench`, whole generations timed stage by stage.
 *
 *   sdc bench -m MODEL [--sizes 512x512,320x480] [--steps 4] [-t THREADS] [--json]
 *             [--low-memory | --memory normal|low|both] [--prompt P] [--negative N]
 *
 * For each size (and memory mode) one txt2img run: CFG 7 with a negative prompt, DPM++ 2M
 * (Karras), `steps` steps, the VAE decode, in a fresh child process (fork), so that its peak RSS
 * (VmHWM, reset at the child's start) is the peak of that run alone, model loading included.
 * Reported per run:
 *   text_encoder_s, vae_s, total_s (text encoder + sampling + VAE; the model hash that txt2img
 *     also computes for the PNG metadata is hash_s, outside total_s), unet_step_s: the MEDIAN of
 *     the per-step times (each step is one batch-2 UNet call for the CFG pair, plus the sampler);
 *   unet_gflops: the step's FLOPs counted from the graph (direct convolution, plain matmuls,
 *     src/graph/graph.h) divided by unet_step_s; per op kind (conv, linear, attention, other)
 *     the mean seconds per step from the backend's observer and the GFLOP/s they give;
 *   peak_gflops: the machine's FP32 FMA peak on the same threads, measured by a 0.3 s probe
 *     (src/core/peak.h) with the ISA the GEMM was compiled for; the AVX2 figure as well on x86.
 * The model is any SD1.5-layout checkpoint; the intended one is the full-size random f16 model
 * from `sdc mkmodel --full --dtype f16` (--make-model PATH writes it when PATH is missing).
 * Timings are printed, never asserted: the tests check the output's shape only. */
#include "cli.h"

#include "core/peak.h"
#include "core/rss.h"
#include "model/mkmodel.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZES 16
#define MAX_STEPS 1000
#define N_KINDS 4 /* conv, linear, attention, other: the order of sdc_timings.unet_kind_* */
static const char *const kind_names[N_KINDS] = {"conv", "linear", "attention", "other"};

static void usage(void) {
    printf("usage: sdc bench -m MODEL [options]\n"
           "  -m, --model PATH         an SD1.5 checkpoint; the benchmark's is the full-size random f16\n"
           "                           model: sdc mkmodel --full --dtype f16 --seed 1 -o PATH\n"
           "      --make-model PATH    use PATH, writing that model there first if it does not exist (~2.1 GB)\n"
           "  -W, --width N, -H, --height N   one size (pixels, multiples of 8)\n"
           "      --sizes WxH,...      sizes to run (default 512x512,320x480)\n"
           "      --steps N            DPM++ 2M steps per run (4); unet_step_s is their median\n"
           "  -t, --threads N          compute threads (default: all online CPUs)\n"
           "      --low-memory         run in low-memory mode (same as --memory low)\n"
           "      --memory MODE        normal (default), low, or both (each size in both modes)\n"
           "  -p, --prompt TEXT        prompt (\"a photograph of an astronaut riding a horse\")\n"
           "  -n, --negative TEXT      negative prompt (\"blurry, low quality\")\n"
           "      --seed N             noise seed (1)\n"
           "      --json               one JSON object per run, one line each, instead of the table\n"
           "      --json-out PATH      print the table, and append the JSON lines to PATH\n");
}

/* What a child reports back through its pipe (plain bytes: same program, same layout). */
typedef struct run_result {
    int ok;
    char err[512];
    int width, height, steps, threads, low_memory;
    double hash_s, text_encoder_s, unet_step_s, unet_total_s, vae_s, total_s;
    double peak_rss_mb, arena_mb;
    double unet_step_flops, vae_flops;
    double kind_flops[N_KINDS], kind_s[N_KINDS]; /* kind_s: summed over all steps */
} run_result;

typedef struct step_log {
    double s[MAX_STEPS];
    int n;
} step_log;

static int on_progress(void *user, int step, int steps, double step_seconds) {
    step_log *l = user;
    (void)steps;
    if (step >= 1 && step <= MAX_STEPS) {
        l->s[step - 1] = step_seconds;
        if (step > l->n) l->n = step;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    if (n <= 0) return 0.0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct bench_opts {
    const char *model, *prompt, *negative;
    int steps, threads;
    uint64_t seed;
} bench_opts;

/* The child's work: load, generate, measure. Never returns an error code: fills r. */
static void run_child(const bench_opts *o, int width, int height, int low_memory, run_result *r) {
    sdc_rss_peak_reset(); /* the peak of this run alone (see rss.h; else the fresh process's) */
    char err[512];
    sdc_model_params mp = sdc_model_params_default();
    mp.path = o->model;
    mp.n_threads = o->threads;
    sdc_model *m = NULL;
    if (sdc_model_load(&mp, &m, err, sizeof err) != SDC_OK) {
        snprintf(r->err, sizeof r->err, "%s", err);
        return;
    }
    static step_log log; /* static: the child is single-use */
    sdc_txt2img_params p = sdc_txt2img_params_default();
    p.prompt = o->prompt;
    p.negative = o->negative;
    p.width = width;
    p.height = height;
    p.steps = o->steps;
    p.cfg = 7.0f;
    p.seed = o->seed;
    p.sampler = "dpm++2m";
    p.n_threads = o->threads;
    p.low_memory = low_memory;
    p.profile = 1;
    p.progress = on_progress;
    p.progress_user = &log;
    sdc_image img = {0};
    if (sdc_txt2img(m, &p, &img, err, sizeof err) != SDC_OK) {
        snprintf(r->err, sizeof r->err, "%s", err);
        sdc_model_free(m);
        return;
    }
    const sdc_timings *t = &img.timings;
    r->peak_rss_mb = (double)sdc_rss_peak() / 1e6;
    r->hash_s = t->load_hash;
    r->text_encoder_s = t->text_encoder;
    r->unet_total_s = t->unet_total;
    r->unet_step_s = median(log.s, log.n);
    r->vae_s = t->vae;
    r->total_s = t->total - t->load_hash;
    r->arena_mb = (double)t->peak_arena_bytes / 1e6;
    r->unet_step_flops = t->unet_step_flops;
    r->vae_flops = t->vae_flops;
    for (int k = 0; k < N_KINDS; k++) {
        r->kind_flops[k] = t->unet_kind_flops[k];
        r->kind_s[k] = t->unet_kind_seconds[k];
    }
    r->ok = 1;
    sdc_image_free(&img);
    sdc_model_free(m);
}

/* Runs one configuration in a fresh child process; 0 on success, else prints one line. */
static int run_one(const bench_opts *o, int width, int height, int low_memory, run_result *r) {
    memset(r, 0, sizeof *r);
    r->width = width;
    r->height = height;
    r->steps = o->steps;
    r->low_memory = low_memory;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    r->threads = o->threads > 0 ? o->threads : (ncpu > 0 ? (int)ncpu : 1);
    int fd[2];
    if (pipe(fd) != 0) return cli_fail("bench", "cannot create a pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return cli_fail("bench", "cannot start a child process: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fd[0]);
        run_child(o, width, height, low_memory, r);
        const char *b = (const char *)r;
        size_t left = sizeof *r;
        while (left) {
            ssize_t k = write(fd[1], b, left);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) _exit(3);
            b += k;
            left -= (size_t)k;
        }
        _exit(0);
    }
    close(fd[1]);
    run_result got;
    char *b = (char *)&got;
    size_t have = 0;
    while (have < sizeof got) {
        ssize_t k = read(fd[0], b + have, sizeof got - have);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        have += (size_t)k;
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (have != sizeof got) {
        if (WIFSIGNALED(status))
            return cli_fail("bench", "%dx%d run died with signal %d", width, height, WTERMSIG(status));
        return cli_fail("bench", "%dx%d run exited with status %d and no result", width, height,
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    *r = got;
    if (!r->ok) return cli_fail("bench", "%dx%d: %s", width, height, r->err);
    return 0;
}

/* ---------------------------------------------------------------- output */

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static double gflops(double flops, double s) { return s > 0.0 ? flops / s / 1e9 : 0.0; }

typedef struct peak_info {
    const char *isa;
    double gflops, avx2;
} peak_info;

static void print_json(FILE *f, const char *model, const run_result *r, const peak_info *pk) {
    double ug = gflops(r->unet_step_flops, r->unet_step_s);
    fprintf(f, "{\"model\":");
    json_string(f, model);
    fprintf(f, ",\"width\":%d,\"height\":%d,\"steps\":%d,\"threads\":%d,\"low_memory\":%s,"
           "\"sampler\":\"dpm++2m\",\"cfg\":7",
           r->width, r->height, r->steps, r->threads, r->low_memory ? "true" : "false");
    fprintf(f, ",\"text_encoder_s\":%.4f,\"unet_step_s\":%.4f,\"unet_total_s\":%.4f,\"vae_s\":%.4f,"
           "\"total_s\":%.4f,\"hash_s\":%.4f",
           r->text_encoder_s, r->unet_step_s, r->unet_total_s, r->vae_s, r->total_s, r->hash_s);
    fprintf(f, ",\"peak_rss_mb\":%.1f,\"arena_mb\":%.1f", r->peak_rss_mb, r->arena_mb);
    fprintf(f, ",\"unet_step_gflop\":%.2f,\"unet_gflops\":%.2f,\"vae_gflop\":%.2f,\"vae_gflops\":%.2f",
           r->unet_step_flops / 1e9, ug, r->vae_flops / 1e9, gflops(r->vae_flops, r->vae_s));
    fprintf(f, ",\"peak_isa\":\"%s\",\"peak_gflops\":%.2f", pk->isa, pk->gflops);
    if (pk->avx2 > 0.0) fprintf(f, ",\"peak_gflops_avx2\":%.2f", pk->avx2);
    fprintf(f, ",\"unet_peak_ratio\":%.4f", pk->gflops > 0.0 ? ug / pk->gflops : 0.0);
    fprintf(f, ",\"ops\":{");
    for (int k = 0; k < N_KINDS; k++) {
        double s = r->steps ? r->kind_s[k] / r->steps : 0.0;
        fprintf(f, "%s\"%s\":{\"s\":%.4f,\"gflop\":%.2f,\"gflops\":%.2f}", k ? "," : "", kind_names[k], s,
               r->kind_flops[k] / 1e9, gflops(r->kind_flops[k], s));
    }
    fprintf(f, "}}\n");
}

static void print_table_header(const peak_info *pk) {
    printf("FP32 FMA peak: %.1f GFLOP/s (%s, the GEMM's ISA)", pk->gflops, pk->isa);
    if (pk->avx2 > 0.0) printf(", AVX2 %.1f GFLOP/s", pk->avx2);
    printf("\n%-9s %-6s %5s %4s %8s %9s %8s %8s %8s %9s %8s %6s\n", "size", "memory", "steps", "thr",
           "text_s", "unet_step", "vae_s", "total_s", "rss_MB", "unet_GF/s", "vae_GF/s", "%peak");
}

static void print_table_row(const run_result *r, const peak_info *pk) {
    char size[32];
    snprintf(size, sizeof size, "%dx%d", r->width, r->height);
    double ug = gflops(r->unet_step_flops, r->unet_step_s);
    printf("%-9s %-6s %5d %4d %8.3f %9.3f %8.3f %8.3f %8.0f %9.1f %8.1f %5.1f%%\n", size,
           r->low_memory ? "low" : "normal", r->steps, r->threads, r->text_encoder_s, r->unet_step_s,
           r->vae_s, r->total_s, r->peak_rss_mb, ug, gflops(r->vae_flops, r->vae_s),
           pk->gflops > 0.0 ? 100.0 * ug / pk->gflops : 0.0);
    printf("          UNet per step by op kind:");
    for (int k = 0; k < N_KINDS; k++) {
        double s = r->steps ? r->kind_s[k] / r->steps : 0.0;
        if (k < N_KINDS - 1)
            printf("  %s %.3f s %.1f GF/s (%.0f%%)", kind_names[k], s, gflops(r->kind_flops[k], s),
                   pk->gflops > 0.0 ? 100.0 * gflops(r->kind_flops[k], s) / pk->gflops : 0.0);
        else
            printf("  %s %.3f s", kind_names[k], s);
    }
    printf("\n");
}

/* ---------------------------------------------------------------- arguments */

static int parse_size(const char *s, int *w, int *h) {
    char *end;
    errno = 0;
    long a = strtol(s, &end, 10);
    if (errno || end == s || (*end != 'x' && *end != 'X')) return -1;
    const char *t = end + 1;
    long b = strtol(t, &end, 10);
    if (errno || end == t || *end) return -1;
    if (a < 8 || a > 2048 || a % 8 || b < 8 || b > 2048 || b % 8) return -1;
    *w = (int)a;
    *h = (int)b;
    return 0;
}

static int parse_sizes(const char *C, const char *list, int sizes[][2], int *n) {
    char buf[512];
    if (strlen(list) >= sizeof buf) return cli_fail(C, "--sizes: list too long");
    snprintf(buf, sizeof buf, "%s", list);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n >= MAX_SIZES) return cli_fail(C, "--sizes: at most %d sizes", MAX_SIZES);
        if (parse_size(tok, &sizes[*n][0], &sizes[*n][1]))
            return cli_fail(C, "--sizes: '%s' is not WxH with multiples of 8 in 8..2048", tok);
        (*n)++;
    }
    if (*n == 0) return cli_fail(C, "--sizes: no size given");
    return 0;
}

static int make_model(const char *C, const char *path) {
    struct stat st;
    if (stat(path, &st) == 0) return 0;
    fprintf(stderr, "sdc bench: writing the full-size random f16 model to %s (~2.1 GB)\n", path);
    sdc_mkmodel_params p = sdc_mkmodel_params_default();
    p.path = path;
    p.seed = 1;
    sdc_error e = {0};
    if (sdc_mkmodel(&p, &e) != SDC_OK) return cli_fail(C, "%s", e.msg);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    const char *C = "bench", *make_path = NULL, *sizes_arg = NULL, *memory = "normal", *json_out = NULL;
    bench_opts o = {.prompt = "a photograph of an astronaut riding a horse",
                    .negative = "blurry, low quality", .steps = 4, .seed = 1};
    int json = 0, width = 0, height = 0;
    long long seed = 1;
    enum { O_STEPS = 256, O_SIZES, O_MAKE, O_LOWMEM, O_MEMORY, O_JSON, O_SEED, O_JSON_OUT };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"make-model", required_argument, 0, O_MAKE},
        {"width", required_argument, 0, 'W'},   {"height", required_argument, 0, 'H'},
        {"sizes", required_argument, 0, O_SIZES}, {"steps", required_argument, 0, O_STEPS},
        {"threads", required_argument, 0, 't'}, {"low-memory", no_argument, 0, O_LOWMEM},
        {"memory", required_argument, 0, O_MEMORY}, {"prompt", required_argument, 0, 'p'},
        {"negative", required_argument, 0, 'n'}, {"seed", required_argument, 0, O_SEED},
        {"json", no_argument, 0, O_JSON},       {"json-out", required_argument, 0, O_JSON_OUT},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    CLI_GETOPT_RESET();
    int c;
    while ((c = getopt_long(argc, argv, ":m:W:H:t:p:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case O_MAKE: make_path = optarg; break;
        case 'W': if (cli_int_arg(C, "--width", optarg, 8, 2048, &width)) return 1; break;
        case 'H': if (cli_int_arg(C, "--height", optarg, 8, 2048, &height)) return 1; break;
        case O_SIZES: sizes_arg = optarg; break;
        case O_STEPS: if (cli_int_arg(C, "--steps", optarg, 1, MAX_STEPS, &o.steps)) return 1; break;
        case 't': if (cli_int_arg(C, "--threads", optarg, 1, 256, &o.threads)) return 1; break;
        case O_LOWMEM: memory = "low"; break;
        case O_MEMORY: memory = optarg; break;
        case 'p': o.prompt = optarg; break;
        case 'n': o.negative = optarg; break;
        case O_SEED:
            if (cli_parse_int(optarg, &seed) || seed < 0)
                return cli_fail(C, "--seed: '%s' is not a non-negative integer", optarg);
            break;
        case O_JSON: json = 1; break;
        case O_JSON_OUT: json_out = optarg; break;
        case 'h': usage(); return 0;
        case ':': return cli_fail(C, "option %s needs a value", argv[optind - 1]);
        default: return cli_fail(C, "unknown option %s (see sdc bench --help)", argv[optind - 1]);
        }
    }
    o.seed = (uint64_t)seed;
    if (optind < argc) return cli_fail(C, "unexpected argument '%s'", argv[optind]);
    int modes[2], n_modes = 0;
    if (!strcmp(memory, "normal") || !strcmp(memory, "both")) modes[n_modes++] = 0;
    if (!strcmp(memory, "low") || !strcmp(memory, "both")) modes[n_modes++] = 1;
    if (!n_modes) return cli_fail(C, "--memory: '%s' is not normal, low or both", memory);
    int sizes[MAX_SIZES][2], n_sizes = 0;
    if (sizes_arg && (width || height)) return cli_fail(C, "give either --sizes or -W/-H, not both");
    if (sizes_arg) {
        if (parse_sizes(C, sizes_arg, sizes, &n_sizes)) return 1;
    } else if (width || height) {
        sizes[0][0] = width ? width : 512;
        sizes[0][1] = height ? height : 512;
        if (sizes[0][0] % 8 || sizes[0][1] % 8)
            return cli_fail(C, "size %dx%d: width and height must be multiples of 8", sizes[0][0], sizes[0][1]);
        n_sizes = 1;
    } else {
        sizes[0][0] = sizes[0][1] = 512;
        sizes[1][0] = 320;
        sizes[1][1] = 480;
        n_sizes = 2;
    }
    if (o.model && make_path) return cli_fail(C, "give either -m or --make-model, not both");
    if (make_path) {
        if (make_model(C, make_path)) return 1;
        o.model = make_path;
    }
    if (!o.model)
        return cli_fail(C, "no model given: -m MODEL (make the benchmark's with `sdc mkmodel --full --dtype f16 "
                           "--seed 1 -o /tmp/sd15-full-f16.safetensors`, or pass --make-model PATH)");
    /* Check the model once here, so that a bad path fails before the probe, with one line. */
    sdc_model *m = NULL;
    if (cli_load_model(C, o.model, o.threads, &m)) return 1;
    sdc_model_free(m);

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nth = o.threads > 0 ? o.threads : (ncpu > 0 ? (int)ncpu : 1);
    sdc_isa isa = sdc_peak_engine_isa();
    peak_info pk = {sdc_isa_name(isa), sdc_peak_gflops(isa, nth, 0.3), -1.0};
    if (isa != SDC_ISA_AVX2 && sdc_isa_supported(SDC_ISA_AVX2)) pk.avx2 = sdc_peak_gflops(SDC_ISA_AVX2, nth, 0.3);
    else if (isa == SDC_ISA_AVX2) pk.avx2 = pk.gflops;
    FILE *jf = NULL;
    if (json_out && !(jf = fopen(json_out, "a")))
        return cli_fail(C, "%s: cannot open for writing: %s", json_out, strerror(errno));
    if (!json) print_table_header(&pk);
    for (int i = 0; i < n_sizes; i++)
        for (int k = 0; k < n_modes; k++) {
            run_result r;
            if (run_one(&o, sizes[i][0], sizes[i][1], modes[k], &r)) {
                if (jf) fclose(jf);
                return 1;
            }
            if (json) print_json(stdout, o.model, &r, &pk);
            else print_table_row(&r, &pk);
            if (jf) {
                print_json(jf, o.model, &r, &pk);
                fflush(jf);
            }
            fflush(stdout);
        }
    if (jf && fclose(jf) != 0) return cli_fail(C, "%s: write failed", json_out);
    return 0;
}
