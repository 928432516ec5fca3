/* src/backend/cpu.h: runs an sdc_graph on the CPU.
 *
 * Planning (once per graph): every activation gets an offset in one arena, found by liveness
 * (a value's buffer is reused after its last consumer ran) and first-fit placement; inputs and
 * outputs keep their buffers for the plan's lifetime, so inputs set once stay valid. Running
 * (any number of times): fill the inputs, call sdc_cpu_run, read the outputs. Nothing is
 * allocated per run except the GEMM/conv pack buffers inside the kernels (attention's scratch
 * is kept in the plan, sized by the first run).
 *
 * An observer, when set, is called after every node with its output: this is how per-op timing,
 * activation dumps and calibration statistics hook in without touching model code. */
#ifndef SDC_BACKEND_CPU_H
#define SDC_BACKEND_CPU_H

#include "core/threadpool.h"
#include "graph/graph.h"

typedef void (*sdc_observer_fn)(void *user, const sdc_graph *g, int node, const float *out,
                                double seconds);

typedef struct sdc_cpu_plan {
    const sdc_graph *g;
    size_t *offset;        /* [n_nodes] arena offset in floats of each activation, SIZE_MAX for leaves */
    size_t arena_floats;   /* arena size */
    float *arena;
    sdc_observer_fn observer;
    void *observer_user;
    /* Weights read on demand (low-memory mode): when release_hi is set, a weight whose data lies
     * in [release_lo, release_hi), a read-only file mapping, has its pages dropped from memory
     * (sdc_pages_release) right after each op that read it; the next run faults them back in. */
    const char *release_lo, *release_hi;
    /* Kernel scratch (attention): reserved by the first run that needs it, for that run's thread
     * count, and reused by later runs; freed with the plan. */
    float *scratch;
    size_t scratch_floats;
} sdc_cpu_plan;

/* Plans memory for g and allocates the arena. */
sdc_status sdc_cpu_plan_new(const sdc_graph *g, sdc_cpu_plan *p, sdc_error *err);
void sdc_cpu_plan_free(sdc_cpu_plan *p);

/* Pointer to a value's f32 buffer (inputs: write before a run; outputs: read after a run). */
float *sdc_cpu_value(const sdc_cpu_plan *p, int v);

/* Runs every node in order. */
sdc_status sdc_cpu_run(sdc_cpu_plan *p, sdc_pool *pool, sdc_error *err);

#endif
