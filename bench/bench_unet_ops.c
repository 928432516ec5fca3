/* bench/bench_unet_ops.c: where a UNet call spends its time, per op type.
 *
 *   bench_unet_ops MODEL [THREADS] [LATENT_H LATENT_W]
 *
 * Builds the batch-2 (CFG) UNet graph once, runs it twice (the first run pages the weights in)
 * and prints, for the second run, seconds and share of the total for each op type, through the
 * CPU backend's observer hook. */
#include "core/threadpool.h"
#include "pipeline/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double op_seconds[SDC_OP_COUNT];
static int op_count[SDC_OP_COUNT];

static void observe(void *user, const sdc_graph *g, int node, const float *out, double seconds) {
    (void)user;
    (void)out;
    op_seconds[g->nodes[node].op] += seconds;
    op_count[g->nodes[node].op]++;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_unet_ops MODEL [THREADS] [LATENT_H LATENT_W]\n");
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 0;
    int h = argc > 4 ? atoi(argv[3]) : 64, w = argc > 4 ? atoi(argv[4]) : 64;
    char err[512];
    sdc_model_params mp = sdc_model_params_default();
    mp.path = argv[1];
    sdc_model *m;
    if (sdc_model_load(&mp, &m, err, sizeof err) != SDC_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    sdc_runner r;
    sdc_error e = {0};
    if (sdc_runner_unet(&r, m, 2, h, w, 77, 0, 0, &e) != SDC_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    size_t nx = (size_t)2 * 4 * h * w, nc = (size_t)2 * 77 * m->unet.ctx_dim;
    for (size_t i = 0; i < nx; i++) sdc_runner_input(&r, 0)[i] = (float)((i * 7919) % 2000) / 1000.0f - 1.0f;
    sdc_runner_input(&r, 1)[0] = sdc_runner_input(&r, 1)[1] = 500.0f;
    for (size_t i = 0; i < nc; i++) sdc_runner_input(&r, 2)[i] = (float)((i * 104729) % 2000) / 1000.0f - 1.0f;
    sdc_pool *pool = sdc_pool_new(threads);
    double t0 = now_s();
    if (sdc_runner_run(&r, pool, &e) != SDC_OK) return 1;
    double cold = now_s() - t0;
    r.plan.observer = observe;
    t0 = now_s();
    if (sdc_runner_run(&r, pool, &e) != SDC_OK) return 1;
    double warm = now_s() - t0;
    printf("UNet batch 2, latent %dx%d, %d threads: first run %.3f s, second run %.3f s, arena %.1f MB\n", w, h,
           sdc_pool_size(pool), cold, warm, (double)r.plan.arena_floats * 4 / 1e6);
    printf("%-16s %6s %10s %7s\n", "op", "count", "seconds", "share");
    for (int op = 0; op < SDC_OP_COUNT; op++)
        if (op_count[op])
            printf("%-16s %6d %10.3f %6.1f%%\n", sdc_op_names[op], op_count[op], op_seconds[op],
                   100.0 * op_seconds[op] / warm);
    sdc_pool_free(pool);
    sdc_runner_free(&r);
    sdc_model_free(m);
    return 0;
}
