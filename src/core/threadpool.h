/* src/core/threadpool.h: a fixed pool of worker threads for one session (after ggml's (ith, nth)).
 *
 * sdc_pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) once on each of the nth threads (the calling
 * thread is ith = 0) and returns when all have finished. Kernels partition their outer loop by
 * (ith, nth) so that every output element is computed by exactly one thread in a fixed order:
 * results are then bit-identical whatever the thread count. */
#ifndef SDC_CORE_THREADPOOL_H
#define SDC_CORE_THREADPOOL_H

typedef struct sdc_pool sdc_pool;
typedef void (*sdc_pool_fn)(void *ctx, int ith, int nth);

/* n_threads <= 0 means the number of online CPUs. Returns NULL when threads cannot be created. */
sdc_pool *sdc_pool_new(int n_threads);
void sdc_pool_free(sdc_pool *p);            /* NULL is a no-op */
int sdc_pool_size(const sdc_pool *p);       /* 1 for a NULL pool */
/* Runs fn on every thread; a NULL pool runs fn(ctx, 0, 1) on the caller. Not reentrant. */
void sdc_pool_run(sdc_pool *p, sdc_pool_fn fn, void *ctx);

#endif
