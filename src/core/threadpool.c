/* src/core/threadpool.c: the persistent worker pool behind sdc_pool_run (contract in threadpool.h).
 *
 * n threads in all: the caller is ith = 0 and n - 1 pthreads are workers. One run is one
 * "generation": the caller publishes (fn, ctx), sets `pending` to n - 1 and bumps `gen`; each worker
 * notices the new generation, runs fn(ctx, ith, n) and decrements `pending`; the caller runs its own
 * share and then waits for `pending` to reach 0.
 *
 * Waiting is spin-then-sleep on both sides. sdc_pool_run is called thousands of times per UNet
 * step with little work between calls, so a worker first polls `gen` for about SPIN_NS (cheap
 * hand-off, no syscalls), then sleeps on a condition variable, so an idle pool costs no CPU. The
 * caller does the same while waiting for stragglers. Lost wake-ups are impossible because every
 * sleeper re-checks its condition under the mutex, and every waker changes the condition before
 * taking the mutex to signal.
 *
 * A nested or concurrent sdc_pool_run on a pool that is already running does not deadlock: it
 * runs fn(ctx, 0, 1) on its own thread (kernels are partition-invariant, so results are the same). */
#define _GNU_SOURCE
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_NS 200000 /* 0.2 ms of polling before a thread goes to sleep */
#define MAX_THREADS 512

typedef struct worker {
    struct sdc_pool *pool;
    int ith;
} worker;

struct sdc_pool {
    int n;
    pthread_t *threads; /* [n - 1] */
    worker *workers;    /* [n - 1] */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* workers: a new generation was published */
    pthread_cond_t done; /* caller: pending reached 0 */
    atomic_uint gen;
    atomic_int pending;
    atomic_int busy; /* 1 while a run is in progress (guards against reentrance) */
    sdc_pool_fn fn;
    void *ctx;
    int stop;
};

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One step of a bounded busy-wait: returns 0 while the caller should keep polling, 1 once it has
 * polled for about SPIN_NS and should sleep. The first polls only pause (a hand-off within a
 * microsecond or two is the common case); later ones yield, so that a thread we wait for that
 * shares our core (more threads than free cores) gets to run. */
static int spin_step(unsigned i, long long *t0) {
    if (i < 256) {
        cpu_relax();
        return 0;
    }
    sched_yield();
    if ((i & 15) == 0) { /* read the clock rarely: it costs ~20 ns */
        long long t = now_ns();
        if (!*t0) *t0 = t;
        else if (t - *t0 > SPIN_NS) return 1;
    }
    return 0;
}

/* Polls *gen until it differs from seen, for at most about SPIN_NS; returns the last value read. */
static unsigned spin_gen(atomic_uint *gen, unsigned seen) {
    long long t0 = 0;
    for (unsigned i = 0;; i++) {
        unsigned g = atomic_load_explicit(gen, memory_order_acquire);
        if (g != seen || spin_step(i, &t0)) return g;
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    struct sdc_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g = spin_gen(&p->gen, seen);
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen)
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (p->stop) break; /* written before the generation bump that announced it */
        p->fn(p->ctx, w->ith, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu); /* the caller may be asleep on `done` */
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Publishes a new generation and wakes sleeping workers. */
static void publish(struct sdc_pool *p) {
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

sdc_pool *sdc_pool_new(int n_threads) {
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    struct sdc_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->busy, 0);
    if (n_threads == 1) return p; /* everything runs on the caller */
    p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
    p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
    if (!p->threads || !p->workers) goto fail_alloc;
    if (pthread_mutex_init(&p->mu, NULL)) goto fail_alloc;
    if (pthread_cond_init(&p->wake, NULL)) goto fail_mu;
    if (pthread_cond_init(&p->done, NULL)) goto fail_wake;
    int started = 0;
    for (; started < n_threads - 1; started++) {
        p->workers[started] = (worker){p, started + 1};
        if (pthread_create(&p->threads[started], NULL, worker_main, &p->workers[started])) break;
    }
    if (started == n_threads - 1) return p;
    /* partial start: stop the ones that did start */
    p->stop = 1;
    p->n = started + 1;
    publish(p);
    for (int i = 0; i < started; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->done);
fail_wake:
    pthread_cond_destroy(&p->wake);
fail_mu:
    pthread_mutex_destroy(&p->mu);
fail_alloc:
    free(p->threads);
    free(p->workers);
    free(p);
    return NULL;
}

void sdc_pool_free(sdc_pool *p) {
    if (!p) return;
    if (p->n > 1) {
        p->stop = 1;
        publish(p);
        for (int i = 0; i < p->n - 1; i++) pthread_join(p->threads[i], NULL);
        pthread_cond_destroy(&p->done);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
    }
    free(p->threads);
    free(p->workers);
    free(p);
}

int sdc_pool_size(const sdc_pool *p) { return p ? p->n : 1; }

void sdc_pool_run(sdc_pool *p, sdc_pool_fn fn, void *ctx) {
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    if (atomic_exchange_explicit(&p->busy, 1, memory_order_acquire)) {
        fn(ctx, 0, 1); /* nested or concurrent use: run serially rather than deadlock */
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    publish(p);
    fn(ctx, 0, p->n);
    /* wait for the workers: spin briefly, then sleep */
    long long t0 = 0;
    for (unsigned i = 0; atomic_load_explicit(&p->pending, memory_order_acquire) != 0; i++) {
        if (spin_step(i, &t0)) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
                pthread_cond_wait(&p->done, &p->mu);
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
    atomic_store_explicit(&p->busy, 0, memory_order_release);
}
