/*
 * vmm_blas: single-precision matrix products through the system's CBLAS (OpenBLAS), writing
 * straight into Float32Arrays that view the tfjs wasm heap (no copies); and a one-pass Adam update. Optional: built by
 * scripts/build_blas.mjs when a CBLAS is installed; src/runtime/blas.ts falls back to the wasm
 * kernels when this module is missing.
 *
 * gemm(a, b, out, batch, m, n, k, transA, transB, bias, relu)
 *   a    Float32Array holding batchA matrices, each [m, k] (or [k, m] when transA), batchA = 1 or batch
 *   b    Float32Array holding batchB matrices, each [k, n] (or [n, k] when transB), batchB = 1 or batch
 *   out  Float32Array of batch * m * n, row-major [batch, m, n]
 *   bias Float32Array of n added to every row, or null
 *   relu true: out = max(out, 0) after the bias
 *
 * conv2d(mode, a, b, out, dims): convolutions by im2col/col2im + sgemm (see below).
 * dense_grad(...): a dense layer's whole backward pass; colsum(...): a bias gradient;
 * bernoulli_logprob(...), bernoulli_logprob_grad(...): the decoder's log-density and its gradient
 * (src/families/fused.ts); serial_below(n): the size under which products stay on one thread;
 * threads(), corename(): OpenBLAS's thread count and kernel set, for the backend line.
 * Built with -fno-math-errno -fno-trapping-math (binding.gyp) so the elementwise loops vectorize.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A scratch buffer kept between calls and grown when a call needs more (NULL when out of memory). */
typedef struct {
  float *p;
  size_t n;
} scratch_buf;

static float *scratch_of(scratch_buf *b, size_t n) {
  if (n > b->n) {
    free(b->p);
    b->p = (float *)malloc(n * sizeof(float));
    b->n = b->p ? n : 0;
  }
  return b->p;
}

#define CHECK(call)                                                                 \
  do {                                                                              \
    if ((call) != napi_ok) {                                                        \
      napi_throw_error(env, NULL, "vmm_blas: N-API call failed: " #call);           \
      return NULL;                                                                  \
    }                                                                               \
  } while (0)

/*
 * Every product goes through here: on one thread when it is small. OpenBLAS 0.3.21 splits any
 * product above a tiny size over all its threads. Each product alone runs faster on two threads,
 * but a training step of the benchmark model does not: with its small products (the K samples'
 * layers, 128 rows) threaded, the rest of the step slows by more than they gain. Alternating the
 * threshold step by step in one process (2 vCPUs, hard/VIMCO, median ms per step):
 *   M = 8:   all threaded 28.8, all serial 26.1, serial below 2^26 multiply-adds 25.9
 *   M = 32:  34.3, 40.3, 34.0       M = 128: 56.6, 70.7, 53.6
 * and between 2^24 and 2^26: 2^24 is worse (M = 8: 26.6 against 21.8-25.4 ms, M = 32: 32.6
 * against 26.0-27.2), 2^25 and 2^26 are within the run-to-run noise of each other (+-3 ms). 2^25,
 * so that a lone mid-sized product (test-time addressing: 32 queries x 128 x 10,000 entries, 41M)
 * still gets both threads. VMM_BLAS_SERIAL_BELOW sets the threshold (0: OpenBLAS decides every
 * time), serial_below() changes it at run time.
 */
static long serial_below = -1;
static int max_threads = 0, cur_threads = 0;

static void serial_init(void) {
  if (serial_below >= 0) return;
  const char *env = getenv("VMM_BLAS_SERIAL_BELOW");
  serial_below = env ? atol(env) : 1L << 25;
  max_threads = cur_threads = openblas_get_num_threads();
}

static int sgemm_split(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);

static void sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  serial_init();
  if (sgemm_split(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)) return;
  const int want = (double)m * n * k < (double)serial_below ? 1 : max_threads;
  if (want != cur_threads) {
    openblas_set_num_threads(want);
    cur_threads = want;
  }
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}

/*
 * Two products at once, each on one thread, on the caller and a helper thread of our own.
 * Many calls hold two independent halves of equal work: a dense layer's backward pass (dw = x^T g
 * and dx = g w^T), a product split into two halves of its output's rows, the two halves of an Adam
 * update, of the Bernoulli log-density's rows, of the finiteness test. The second of such a pair
 * runs on the helper while the caller runs the first, each the same single-threaded call it would
 * be alone: dw, dx, Adam, the log-density and the test give the same bits, a product's half agrees
 * to float32 rounding (OpenBLAS blocks a half otherwise than the whole; test/runtime/blas_pair.test.ts).
 *
 * Modes (VMM_BLAS_PAIR, or pair() at run time): 0 off; 1 pairs for the products under the serial
 * threshold, OpenBLAS's threads above it; 2 the same even where OpenBLAS has one thread (tests);
 * 3 the pool: every product worth a wake-up in two halves (sgemm_split), so OpenBLAS's own
 * threads are never woken. The default is the pool where OpenBLAS has exactly two threads, else 0.
 * Why the pool: after each threaded product OpenBLAS 0.3.21's worker spins ~0.1 s (sched_yield in a
 * loop) before it sleeps, and a step has one every few milliseconds, so the worker held the second
 * core all the time while the caller did the step's other work; the pairs of mode 1 then shared
 * that core with it and gained 0-5%. With the pool (and the helper spinning only 2 ms), a training
 * step of the benchmark model runs 10-20% faster at M = 8-128 than with OpenBLAS's threads, and the
 * convolutional model's step as fast on a quarter less CPU (docs/benchmarks.md, "vmm's own two
 * threads"). OpenBLAS's single-threaded path may be entered from two threads at once (its buffers
 * are taken under a lock in the pthreads build).
 */
typedef struct {
  enum CBLAS_TRANSPOSE ta, tb;
  int m, n, k, lda, ldb, ldc;
  const float *a, *b;
  float beta;
  float *c;
  const float *bias; /* after the product: c += bias on every row, then relu when set */
  int relu;
} gemm_task;

/* c += bias on every row (bias not NULL), then c = max(c, 0) (relu): what a dense layer adds to its product. */
static void bias_relu(float *c, int m, int n, int ldc, const float *bias, int relu) {
  if (!bias && !relu) return;
  for (int r = 0; r < m; r++) {
    float *row = c + (size_t)r * ldc;
    for (int j = 0; j < n; j++) {
      float v = bias ? row[j] + bias[j] : row[j];
      row[j] = relu && v < 0.0f ? 0.0f : v;
    }
  }
}

/* One task on the calling thread, with OpenBLAS's thread count as it is. */
static void run_gemm_task(const void *arg) {
  const gemm_task *t = (const gemm_task *)arg;
  cblas_sgemm(CblasRowMajor, t->ta, t->tb, t->m, t->n, t->k, 1.0f, t->a, t->lda, t->b, t->ldb, t->beta, t->c, t->ldc);
  bias_relu(t->c, t->m, t->n, t->ldc, t->bias, t->relu);
}

/* Products under 2^20 multiply-adds (~0.1 ms on one core) stay on the caller: waking the helper
 * costs tens of microseconds. */
#define PAIR_ABOVE ((double)(1 << 20))

static int pair_mode = -1; /* -1: not decided yet; else the mode (above) */
static int pair_started = 0;
static pthread_t pair_thread;
static pthread_mutex_t pair_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pair_go = PTHREAD_COND_INITIALIZER;
/* The helper's next task: pair_fn and pair_arg are written, then pair_posted set to 1 (release);
 * the helper runs it and sets pair_posted back to 0 (release) when it has finished. */
static void (*pair_fn)(const void *) = NULL;
static const void *pair_arg = NULL;
static atomic_int pair_posted = 0;
/* Whether the helper sleeps on pair_go (after spinning pair_spin_ns without a task). */
static atomic_int pair_sleeping = 0;
/* How many tasks the helper has run (paired(), for the tests: that a mode really pairs). */
static atomic_long pair_tasks = 0;
/* How long the helper waits for its next task by spinning before it sleeps: waking a sleeping
 * thread costs a futex call and, on a VM, an interrupt to an idle vCPU (tens of microseconds,
 * several times a product of 1-4 ms), and a step posts a task every few hundred microseconds.
 * VMM_BLAS_SPIN_US sets it (default 2 ms; 0: sleep at once, as the helper did before). While it
 * spins it yields the core (sched_yield) to any other thread that wants it. */
static atomic_long pair_spin_ns = -1; /* atomic: spin() may change it while the helper reads it */

static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static void *pair_main(void *unused) {
  (void)unused;
  for (;;) {
    const long until = now_ns() + pair_spin_ns;
    for (unsigned i = 0; !atomic_load_explicit(&pair_posted, memory_order_acquire); i++) {
      if (i < 64) {
        cpu_relax();
        continue;
      }
      if ((i & 15) == 0 && now_ns() >= until) {
        /* Sleep. The poster stores pair_posted then reads pair_sleeping; we store pair_sleeping
         * then read pair_posted (both sequentially consistent), so one of us sees the other. */
        pthread_mutex_lock(&pair_mu);
        atomic_store(&pair_sleeping, 1);
        while (!atomic_load(&pair_posted)) pthread_cond_wait(&pair_go, &pair_mu);
        atomic_store(&pair_sleeping, 0);
        pthread_mutex_unlock(&pair_mu);
        break;
      }
      sched_yield();
    }
    pair_fn(pair_arg);
    atomic_fetch_add_explicit(&pair_tasks, 1, memory_order_relaxed);
    atomic_store_explicit(&pair_posted, 0, memory_order_release);
  }
  return NULL;
}

/* One caller at a time owns the helper (the module could be loaded by two worker threads). */
static pthread_mutex_t pair_owner = PTHREAD_MUTEX_INITIALIZER;

/* fa(a) on the caller and fb(b) on the helper, at once (one after the other on the caller when
 * another thread holds the helper); returns when both have finished. */
static void run_pair(void (*fa)(const void *), const void *a, void (*fb)(const void *), const void *b) {
  if (pthread_mutex_trylock(&pair_owner) != 0) {
    fa(a);
    fb(b);
    return;
  }
  pair_fn = fb;
  pair_arg = b;
  atomic_store(&pair_posted, 1);
  if (atomic_load(&pair_sleeping)) {
    pthread_mutex_lock(&pair_mu);
    pthread_cond_signal(&pair_go);
    pthread_mutex_unlock(&pair_mu);
  }
  fa(a);
  /* The halves are about equal, so the helper is near its end: spin, then yield (it may have
   * been preempted). */
  for (unsigned i = 0; atomic_load_explicit(&pair_posted, memory_order_acquire); i++) {
    if (i < 256) cpu_relax();
    else sched_yield();
  }
  pthread_mutex_unlock(&pair_owner);
}

/* The mode from VMM_BLAS_PAIR the first time it is asked (the default without it), and the spin. */
static void pair_decide(void) {
  if (pair_spin_ns < 0) {
    const char *spin = getenv("VMM_BLAS_SPIN_US");
    pair_spin_ns = (spin ? atol(spin) : 2000) * 1000L;
    if (pair_spin_ns < 0) pair_spin_ns = 0;
  }
  if (pair_mode >= 0) return;
  serial_init();
  const char *env = getenv("VMM_BLAS_PAIR");
  const int v = env && *env ? atoi(env) : -1;
  /* By default the pool where OpenBLAS has exactly two threads (two cores, or OPENBLAS_NUM_THREADS=2:
   * measured there, docs/benchmarks.md "vmm's own two threads"); with more, OpenBLAS's threads as before. */
  pair_mode = v < 0 ? (max_threads == 2 ? 3 : 0) : v > 3 ? 3 : v;
}

/* Whether two tasks can run at once: a mode on (mode 1 only where OpenBLAS has two threads or more), the helper started. */
static int pair_ready(void) {
  serial_init();
  pair_decide();
  if (!pair_mode || (max_threads < 2 && pair_mode == 1)) return 0; /* 2 and 3 set by hand run even then */
  if (!pair_started) {
    if (pthread_create(&pair_thread, NULL, pair_main, NULL) != 0) {
      pair_mode = 0;
      return 0;
    }
    pair_started = 1;
  }
  return 1;
}

/* One task alone, through sgemm (which threads it when it is large). */
static void gemm_one(const gemm_task *t) {
  sgemm(t->ta, t->tb, t->m, t->n, t->k, t->a, t->lda, t->b, t->ldb, t->beta, t->c, t->ldc);
  bias_relu(t->c, t->m, t->n, t->ldc, t->bias, t->relu);
}

/* Whether two parts of `part` multiply-adds each should run as a pair: the product they come
 * from (`product` multiply-adds: the whole forward product, or each of dw and dx) would run on
 * one thread, under the serial threshold, and each part is worth a wake-up (`above` multiply-adds;
 * PAIR_ABOVE for products). */
static int pair_pays_above(double product, double part, double above) {
  serial_init();
  pair_decide();
  return (product < (double)serial_below || pair_mode == 3) && part >= above && pair_ready();
}
static int pair_pays(double product, double part) { return pair_pays_above(product, part, PAIR_ABOVE); }

/* Runs a and b at once, a on the caller and b on the helper, both on one OpenBLAS thread
 * (the caller has checked pair_pays); else one after the other. */
static void gemm_pair(const gemm_task *a, const gemm_task *b, int at_once) {
  if (!at_once) {
    gemm_one(a);
    gemm_one(b);
    return;
  }
  if (cur_threads != 1) {
    openblas_set_num_threads(1);
    cur_threads = 1;
  }
  run_pair(run_gemm_task, a, run_gemm_task, b);
}

/* In the pool mode (pair mode 3) every product worth a wake-up runs as two halves of its output's
 * rows, one on the helper, each on one OpenBLAS thread (OpenBLAS's own threads are then never
 * woken, so its worker never spins); row r of c reads row r of a, or column r when a is
 * transposed. Returns whether it ran the product. */
static int sgemm_split(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  pair_decide();
  const int h = m / 2;
  if (pair_mode != 3 || h < 1 || !pair_pays((double)m * n * k, (double)h * n * k)) return 0;
  const gemm_task top = {.ta = ta, .tb = tb, .m = h, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc, .a = a, .b = b, .beta = beta, .c = c, .bias = NULL, .relu = 0};
  gemm_task bottom = top;
  bottom.m = m - h;
  bottom.a = a + (ta == CblasTrans ? (size_t)h : (size_t)h * lda);
  bottom.c = c + (size_t)h * ldc;
  gemm_pair(&top, &bottom, 1);
  return 1;
}

/*
 * Thin products: one of m, n, k is 1. A batch of them is what a memory per episode makes of the
 * address logits h(mem_b) @ u_b (src/lower/evaluate.ts, rowDot: n = 1), of a soft read
 * w_b @ g(mem_b) (weightedRows: m = 1) and of their gradients (outer products: k = 1). cblas_sgemm
 * sets up and packs for ~20 us a call, so 32 episodes of 128 x 256 took 0.8 ms for 1 M
 * multiply-adds (bench/profile.ts, M = 128); sgemv streams the matrix once, and an outer product
 * is one loop. On one OpenBLAS thread (sgemv would wake its threads above 9,216 entries), the
 * batch in two halves on the pair where that pays.
 */
typedef struct {
  int b0, b1; /* the batch entries [b0, b1) */
  int m, n, k, ta, tb, batch_a, batch_b;
  const float *a, *b, *bias;
  float *c;
  int relu;
} thin_task;

/* c = op(a) op(b) for one batch entry (m, n > 0, k > 0). */
static void thin_one(const float *a, const float *b, float *c, int m, int n, int k, int ta, int tb) {
  if (k == 1) {
    /* c[i, j] = a_i b_j: op(a) is a column of m and op(b) a row of n, contiguous either way. */
    for (int i = 0; i < m; i++) {
      const float ai = a[i];
      float *restrict row = c + (size_t)i * n;
      for (int j = 0; j < n; j++) row[j] = ai * b[j];
    }
  } else if (n == 1) {
    /* c [m] = op(a) [m, k] b [k] (b contiguous whether transposed or not) */
    if (ta) cblas_sgemv(CblasRowMajor, CblasTrans, k, m, 1.0f, a, m, b, 1, 0.0f, c, 1);
    else cblas_sgemv(CblasRowMajor, CblasNoTrans, m, k, 1.0f, a, k, b, 1, 0.0f, c, 1);
  } else {
    /* m == 1: c [n] = a [k] op(b) [k, n] */
    if (tb) cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, b, k, a, 1, 0.0f, c, 1);
    else cblas_sgemv(CblasRowMajor, CblasTrans, k, n, 1.0f, b, n, a, 1, 0.0f, c, 1);
  }
}

static void run_thin_task(const void *arg) {
  const thin_task *t = (const thin_task *)arg;
  const size_t sa = (size_t)t->m * t->k, sb = (size_t)t->k * t->n, sc = (size_t)t->m * t->n;
  for (int i = t->b0; i < t->b1; i++) {
    float *ci = t->c + (size_t)i * sc;
    thin_one(t->a + (t->batch_a == 1 ? 0 : (size_t)i * sa), t->b + (t->batch_b == 1 ? 0 : (size_t)i * sb), ci, t->m, t->n, t->k, t->ta, t->tb);
    bias_relu(ci, t->m, t->n, t->n, t->bias, t->relu);
  }
}

/* Halves of thin products pay from 2^18 multiply-adds, a quarter of a product's threshold: they
 * stream their matrix once, so two threads read it at twice the bandwidth ([32, 128, 256] . [32, 256]:
 * 0.60 ms on one thread, 0.26-0.40 in halves). */
#define THIN_PAIR_ABOVE ((double)(1 << 18))

static void thin_products(const thin_task *whole, int batch) {
  serial_init();
  if (cur_threads != 1) {
    openblas_set_num_threads(1);
    cur_threads = 1;
  }
  const double total = (double)batch * whole->m * whole->n * whole->k;
  const int h = batch / 2;
  if (h > 0 && pair_pays_above(total, total / 2, THIN_PAIR_ABOVE)) {
    thin_task lo = *whole, hi = *whole;
    lo.b1 = h;
    hi.b0 = h;
    run_pair(run_thin_task, &lo, run_thin_task, &hi);
  } else {
    run_thin_task(whole);
  }
}

static int float_array(napi_env env, napi_value v, float **data, size_t *length) {
  bool is_typed = false;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, v, &type, length, &ptr, NULL, NULL) != napi_ok) return 0;
  if (type != napi_float32_array) return 0;
  *data = (float *)ptr;
  return 1;
}

/* Exactly `n` arguments into `args`; else a TypeError with `usage` and 0. */
static int get_args(napi_env env, napi_callback_info info, size_t n, napi_value *args, const char *usage) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != n) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return 1;
}

static napi_value gemm(napi_env env, napi_callback_info info) {
  napi_value args[11];
  if (!get_args(env, info, 11, args, "vmm_blas.gemm: expected 11 arguments")) return NULL;
  float *a, *b, *c, *bias = NULL;
  size_t la, lb, lc, lbias = 0;
  if (!float_array(env, args[0], &a, &la) || !float_array(env, args[1], &b, &lb) || !float_array(env, args[2], &c, &lc)) {
    napi_throw_type_error(env, NULL, "vmm_blas.gemm: a, b and out must be Float32Arrays");
    return NULL;
  }
  int32_t batch, m, n, k;
  bool ta, tb, relu;
  CHECK(napi_get_value_int32(env, args[3], &batch));
  CHECK(napi_get_value_int32(env, args[4], &m));
  CHECK(napi_get_value_int32(env, args[5], &n));
  CHECK(napi_get_value_int32(env, args[6], &k));
  CHECK(napi_get_value_bool(env, args[7], &ta));
  CHECK(napi_get_value_bool(env, args[8], &tb));
  napi_valuetype bias_type;
  CHECK(napi_typeof(env, args[9], &bias_type));
  if (bias_type != napi_null && !float_array(env, args[9], &bias, &lbias)) {
    napi_throw_type_error(env, NULL, "vmm_blas.gemm: bias must be a Float32Array or null");
    return NULL;
  }
  CHECK(napi_get_value_bool(env, args[10], &relu));
  if (batch < 1 || m < 0 || n < 0 || k < 0) {
    napi_throw_range_error(env, NULL, "vmm_blas.gemm: bad sizes");
    return NULL;
  }
  const size_t sa = (size_t)m * k, sb = (size_t)k * n, sc = (size_t)m * n;
  const int batch_a = la == sa ? 1 : (int)(sa ? la / sa : 1);
  const int batch_b = lb == sb ? 1 : (int)(sb ? lb / sb : 1);
  if (la != (size_t)batch_a * sa || lb != (size_t)batch_b * sb || (batch_a != 1 && batch_a != batch) ||
      (batch_b != 1 && batch_b != batch) || lc != (size_t)batch * sc || (bias && lbias != (size_t)n)) {
    napi_throw_range_error(env, NULL, "vmm_blas.gemm: array lengths do not match the sizes");
    return NULL;
  }
  if (k > 0 && m > 0 && n > 0 && (m == 1 || n == 1 || k == 1)) {
    const thin_task whole = {.b0 = 0, .b1 = batch, .m = m, .n = n, .k = k, .ta = ta, .tb = tb, .batch_a = batch_a, .batch_b = batch_b, .a = a, .b = b, .bias = bias, .c = c, .relu = relu};
    thin_products(&whole, batch);
    return NULL;
  }
  for (int32_t i = 0; i < batch; i++) {
    const float *ai = a + (batch_a == 1 ? 0 : (size_t)i * sa);
    const float *bi = b + (batch_b == 1 ? 0 : (size_t)i * sb);
    float *ci = c + (size_t)i * sc;
    if (k == 0) {
      for (size_t j = 0; j < sc; j++) ci[j] = 0.0f;
      bias_relu(ci, m, n, n, bias, relu);
      continue;
    }
    /* The output's rows in two halves, run at once where that pays (gemm_pair): row r of the
     * output reads row r of a, or column r when a is transposed. */
    const int h = m / 2;
    const gemm_task top = {.ta = ta ? CblasTrans : CblasNoTrans, .tb = tb ? CblasTrans : CblasNoTrans, .m = h, .n = n, .k = k,
                           .lda = ta ? m : k, .ldb = tb ? k : n, .ldc = n, .a = ai, .b = bi, .beta = 0.0f, .c = ci, .bias = bias, .relu = relu};
    gemm_task bottom = top;
    bottom.m = m - h;
    bottom.a = ai + (ta ? (size_t)h : (size_t)h * k);
    bottom.c = ci + (size_t)h * n;
    if (h > 0 && pair_pays((double)m * n * k, (double)h * n * k)) {
      gemm_pair(&top, &bottom, 1);
    } else {
      gemm_task whole = top;
      whole.m = m;
      gemm_one(&whole);
    }
  }
  return NULL;
}

/*
 * adam(w, g, m, v, w1, m1, v1, beta1, beta2, stepSize, sqrtBc2, eps): one Adam update
 * (Kingma & Ba 2014, arXiv:1412.6980, Algorithm 1, in the form of src/runtime/optimizer.ts)
 *   m1 = beta1 m + (1 - beta1) g;  v1 = beta2 v + (1 - beta2) g^2
 *   w1 = w - stepSize m1 / (sqrt(v1) / sqrtBc2 + eps)
 * over seven Float32Arrays of one length, in one pass (tfjs ops take 13 passes); w1, m1, v1 may
 * be w, m, v themselves (an update in place: each element is read before it is written). Not BLAS, but
 * it lives here because this is vmm's one native module.
 */
typedef struct {
  float b1, b2, ob1, ob2, step, bc2, eps;
} adam_consts;

/* One element of the update; the three loops below differ only in what they promise about aliasing,
 * which is what lets gcc vectorize the first two (with 7 arrays that may alias it gives up: too
 * many run-time alias checks). */
#define ADAM_ELEMENT(w, g, m, v, w1, m1, v1)                       \
  do {                                                              \
    const float gi = (g)[i];                                        \
    const float mi = k->b1 * (m)[i] + k->ob1 * gi;                  \
    const float vi = k->b2 * (v)[i] + k->ob2 * gi * gi;             \
    const float wi = (w)[i];                                        \
    (m1)[i] = mi;                                                   \
    (v1)[i] = vi;                                                   \
    (w1)[i] = wi - k->step * mi / (sqrtf(vi) / k->bc2 + k->eps);    \
  } while (0)

/* w, m, v updated in place; g apart from them. */
static void adam_in_place(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, size_t n, const adam_consts *k) {
  for (size_t i = 0; i < n; i++) ADAM_ELEMENT(w, g, m, v, w, m, v);
}

/* Seven arrays, no two overlapping. */
static void adam_apart(const float *restrict w, const float *restrict g, const float *restrict m, const float *restrict v, float *restrict w1, float *restrict m1,
                       float *restrict v1, size_t n, const adam_consts *k) {
  for (size_t i = 0; i < n; i++) ADAM_ELEMENT(w, g, m, v, w1, m1, v1);
}

/* Anything else (each element is read before it is written, so any aliasing element-to-element is fine). */
static void adam_any(const float *w, const float *g, const float *m, const float *v, float *w1, float *m1, float *v1, size_t n, const adam_consts *k) {
  for (size_t i = 0; i < n; i++) ADAM_ELEMENT(w, g, m, v, w1, m1, v1);
}

static int overlaps(const float *a, const float *b, size_t n) {
  return a < b + n && b < a + n;
}

static int distinct(float *const *p, size_t n) {
  for (int i = 0; i < 7; i++)
    for (int j = i + 1; j < 7; j++)
      if (overlaps(p[i], p[j], n)) return 0;
  return 1;
}

typedef struct {
  int kind; /* 0: w, m, v in place; 1: seven distinct arrays; 2: anything else */
  float *p[7];
  size_t n;
  const adam_consts *k;
} adam_task;

static void run_adam_task(const void *arg) {
  const adam_task *t = (const adam_task *)arg;
  float *const *p = t->p;
  if (t->kind == 0) {
    adam_in_place(p[0], p[1], p[2], p[3], t->n, t->k);
  } else if (t->kind == 1) {
    adam_apart(p[0], p[1], p[2], p[3], p[4], p[5], p[6], t->n, t->k);
  } else {
    adam_any(p[0], p[1], p[2], p[3], p[4], p[5], p[6], t->n, t->k);
  }
}

/* Arrays under 2^16 elements are updated on the caller alone (a wake-up of the helper would cost more than half of it). */
#define ADAM_PAIR_ABOVE ((size_t)1 << 16)

static napi_value adam(napi_env env, napi_callback_info info) {
  napi_value args[12];
  if (!get_args(env, info, 12, args, "vmm_blas.adam: expected 12 arguments")) return NULL;
  float *p[7];
  size_t len[7];
  for (int i = 0; i < 7; i++) {
    if (!float_array(env, args[i], &p[i], &len[i]) || len[i] != len[0]) {
      napi_throw_type_error(env, NULL, "vmm_blas.adam: w, g, m, v, w1, m1, v1 must be Float32Arrays of one length");
      return NULL;
    }
  }
  double h[5];
  for (int i = 0; i < 5; i++) CHECK(napi_get_value_double(env, args[7 + i], &h[i]));
  const float b1 = (float)h[0], b2 = (float)h[1], step = (float)h[2], bc2 = (float)h[3], eps = (float)h[4];
  // 1 - beta in double before rounding: 1.0f - 0.999f is 1.3e-5 (relative) away from 0.001.
  const float ob1 = (float)(1.0 - h[0]), ob2 = (float)(1.0 - h[1]);
  const adam_consts k = {b1, b2, ob1, ob2, step, bc2, eps};
  const int kind = p[4] == p[0] && p[5] == p[2] && p[6] == p[3] && !overlaps(p[1], p[0], len[0]) && !overlaps(p[1], p[2], len[0]) && !overlaps(p[1], p[3], len[0])
                       ? 0
                       : distinct(p, len[0]) ? 1 : 2;
  adam_task whole = {kind, {p[0], p[1], p[2], p[3], p[4], p[5], p[6]}, len[0], &k};
  /* Elementwise, so the two halves of a large array can run at once (the pair helper, above): the
   * update of a 400 x 784 layer is memory-bound and ~0.4 ms on one core. Any aliasing is element
   * to element, so the halves never touch each other's elements. */
  if (len[0] >= ADAM_PAIR_ABOVE && pair_ready()) {
    adam_task top = whole, bottom = whole;
    top.n = len[0] / 2;
    bottom.n = len[0] - top.n;
    for (int i = 0; i < 7; i++) bottom.p[i] += top.n;
    run_pair(run_adam_task, &top, run_adam_task, &bottom);
  } else {
    run_adam_task(&whole);
  }
  return NULL;
}


/*
 * conv2d(mode, a, b, out, dims): 2-D convolutions in NHWC through im2col / col2im and sgemm, the
 * way Caffe and PyTorch's CPU path do them (Chellapilla, Puri & Simard 2006, "High performance
 * convolutional neural networks for document processing"). Layouts are tfjs's:
 *   x [N, H, W, Cin], filter [kh, kw, Cin, Cout] (read as a [kh*kw*Cin, Cout] matrix),
 *   y [N, Ho, Wo, Cout] (read as [N*Ho*Wo, Cout]); dilation 1.
 * dims: Int32Array [N, H, W, Cin, Ho, Wo, Cout, kh, kw, strideH, strideW, padTop, padLeft].
 *   mode 0 (Conv2D):              a = x,  b = filter, out = y       y  = im2col(x) @ F
 *   mode 1 (Conv2DBackpropInput): a = dy, b = filter, out = dx      dx = col2im(dy @ F^T)
 *   mode 2 (Conv2DBackpropFilter):a = x,  b = dy,     out = dF      dF = im2col(x)^T @ dy
 * The column matrix is built for a chunk of images at a time (at most CHUNK_FLOATS floats unless
 * one image needs more), in a scratch buffer that is kept and grown between calls.
 */
#define CHUNK_FLOATS ((size_t)1 << 23) /* 32 MB */

static scratch_buf cols_buf; /* im2col's column matrix */

typedef struct {
  int n, h, w, cin, ho, wo, cout, kh, kw, sh, sw, pt, pl;
} conv_dims;

/* cols[r, (ky*kw + kx)*cin + c] = x[img, oy*sh - pt + ky, ox*sw - pl + kx, c] (0 outside), for images [i0, i0+nb). */
static void im2col(const float *x, float *cols, const conv_dims *d, int i0, int nb) {
  const size_t row = (size_t)d->kh * d->kw * d->cin;
  const size_t cb = (size_t)d->cin * sizeof(float);
  for (int i = 0; i < nb; i++) {
    const float *xi = x + (size_t)(i0 + i) * d->h * d->w * d->cin;
    for (int oy = 0; oy < d->ho; oy++) {
      for (int ox = 0; ox < d->wo; ox++) {
        float *dst = cols + (((size_t)i * d->ho + oy) * d->wo + ox) * row;
        for (int ky = 0; ky < d->kh; ky++) {
          const int iy = oy * d->sh - d->pt + ky;
          for (int kx = 0; kx < d->kw; kx++, dst += d->cin) {
            const int ix = ox * d->sw - d->pl + kx;
            if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w) memset(dst, 0, cb);
            else memcpy(dst, xi + ((size_t)iy * d->w + ix) * d->cin, cb);
          }
        }
      }
    }
  }
}

/* dx[img, iy, ix, c] += cols[r, (ky*kw + kx)*cin + c]: the adjoint of im2col (dx zeroed by the caller). */
static void col2im(const float *cols, float *dx, const conv_dims *d, int i0, int nb) {
  const size_t row = (size_t)d->kh * d->kw * d->cin;
  for (int i = 0; i < nb; i++) {
    float *xi = dx + (size_t)(i0 + i) * d->h * d->w * d->cin;
    for (int oy = 0; oy < d->ho; oy++) {
      for (int ox = 0; ox < d->wo; ox++) {
        const float *src = cols + (((size_t)i * d->ho + oy) * d->wo + ox) * row;
        for (int ky = 0; ky < d->kh; ky++) {
          const int iy = oy * d->sh - d->pt + ky;
          for (int kx = 0; kx < d->kw; kx++, src += d->cin) {
            const int ix = ox * d->sw - d->pl + kx;
            if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w) continue;
            float *dst = xi + ((size_t)iy * d->w + ix) * d->cin;
            for (int c = 0; c < d->cin; c++) dst[c] += src[c];
          }
        }
      }
    }
  }
}

static napi_value conv2d(napi_env env, napi_callback_info info) {
  napi_value args[5];
  if (!get_args(env, info, 5, args, "vmm_blas.conv2d: expected 5 arguments (mode, a, b, out, dims)")) return NULL;
  int32_t mode;
  CHECK(napi_get_value_int32(env, args[0], &mode));
  float *a, *b, *out;
  size_t la, lb, lo;
  if (!float_array(env, args[1], &a, &la) || !float_array(env, args[2], &b, &lb) || !float_array(env, args[3], &out, &lo)) {
    napi_throw_type_error(env, NULL, "vmm_blas.conv2d: a, b and out must be Float32Arrays");
    return NULL;
  }
  bool is_typed = false;
  napi_typedarray_type type;
  size_t ndims = 0;
  void *pd = NULL;
  CHECK(napi_is_typedarray(env, args[4], &is_typed));
  if (!is_typed || napi_get_typedarray_info(env, args[4], &type, &ndims, &pd, NULL, NULL) != napi_ok || type != napi_int32_array || ndims != 13) {
    napi_throw_type_error(env, NULL, "vmm_blas.conv2d: dims must be an Int32Array of 13");
    return NULL;
  }
  const int32_t *v = (const int32_t *)pd;
  conv_dims d = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
  for (int i = 0; i < 13; i++) {
    if (v[i] < 0 || (i < 11 && v[i] == 0 && i != 0)) {
      napi_throw_range_error(env, NULL, "vmm_blas.conv2d: bad sizes");
      return NULL;
    }
  }
  const size_t xs = (size_t)d.n * d.h * d.w * d.cin, ys = (size_t)d.n * d.ho * d.wo * d.cout;
  const size_t kk = (size_t)d.kh * d.kw * d.cin, fs = kk * d.cout;
  size_t ea, eb, eo;
  if (mode == 0) ea = xs, eb = fs, eo = ys;
  else if (mode == 1) ea = ys, eb = fs, eo = xs;
  else if (mode == 2) ea = xs, eb = ys, eo = fs;
  else {
    napi_throw_range_error(env, NULL, "vmm_blas.conv2d: mode must be 0, 1 or 2");
    return NULL;
  }
  if (la != ea || lb != eb || lo != eo) {
    napi_throw_range_error(env, NULL, "vmm_blas.conv2d: array lengths do not match the sizes");
    return NULL;
  }
  if (mode == 1) memset(out, 0, eo * sizeof(float));
  if (mode == 2 && d.n == 0) memset(out, 0, eo * sizeof(float));
  if (d.n == 0) return NULL;
  const size_t per_image = (size_t)d.ho * d.wo * kk;
  int nb = per_image ? (int)(CHUNK_FLOATS / per_image) : d.n;
  if (nb < 1) nb = 1;
  if (nb > d.n) nb = d.n;
  float *cols = scratch_of(&cols_buf, (size_t)nb * per_image);
  if (!cols) {
    napi_throw_error(env, NULL, "vmm_blas.conv2d: out of memory for the column buffer");
    return NULL;
  }
  const int rows_per_image = d.ho * d.wo;
  for (int i0 = 0; i0 < d.n; i0 += nb) {
    const int cnt = d.n - i0 < nb ? d.n - i0 : nb;
    const int rows = cnt * rows_per_image;
    const size_t yoff = (size_t)i0 * rows_per_image * d.cout;
    if (mode == 0) {
      im2col(a, cols, &d, i0, cnt);
      sgemm(CblasNoTrans, CblasNoTrans, rows, d.cout, (int)kk, cols, (int)kk, b, d.cout, 0.0f, out + yoff, d.cout);
    } else if (mode == 1) {
      sgemm(CblasNoTrans, CblasTrans, rows, (int)kk, d.cout, a + yoff, d.cout, b, d.cout, 0.0f, cols, (int)kk);
      col2im(cols, out, &d, i0, cnt);
    } else {
      im2col(a, cols, &d, i0, cnt);
      sgemm(CblasTrans, CblasNoTrans, (int)kk, d.cout, rows, cols, (int)kk, b + yoff, d.cout, i0 == 0 ? 0.0f : 1.0f, out, d.cout);
    }
  }
  return NULL;
}

/*
 * colsum(x, out, rows, cols): out[c] = sum_r x[r, c] (double accumulators), the sum over the
 * leading axes of a row-major array: the gradient of a bias added to an [N, H, W, C] image
 * (wasm's Sum transposes the reduced axes last first, which costs more than the sum).
 */
static napi_value colsum(napi_env env, napi_callback_info info) {
  napi_value args[4];
  if (!get_args(env, info, 4, args, "vmm_blas.colsum: expected 4 arguments (x, out, rows, cols)")) return NULL;
  float *x, *out;
  size_t lx, lo;
  if (!float_array(env, args[0], &x, &lx) || !float_array(env, args[1], &out, &lo)) {
    napi_throw_type_error(env, NULL, "vmm_blas.colsum: x and out must be Float32Arrays");
    return NULL;
  }
  int32_t rows, cols;
  CHECK(napi_get_value_int32(env, args[2], &rows));
  CHECK(napi_get_value_int32(env, args[3], &cols));
  if (rows < 0 || cols < 1 || lx != (size_t)rows * cols || lo != (size_t)cols) {
    napi_throw_range_error(env, NULL, "vmm_blas.colsum: array lengths do not match the sizes");
    return NULL;
  }
  double *acc = (double *)calloc((size_t)cols, sizeof(double));
  if (!acc) {
    napi_throw_error(env, NULL, "vmm_blas.colsum: out of memory");
    return NULL;
  }
  for (int32_t r = 0; r < rows; r++) {
    const float *row = x + (size_t)r * cols;
    for (int32_t c = 0; c < cols; c++) acc[c] += row[c];
  }
  for (int32_t c = 0; c < cols; c++) out[c] = (float)acc[c];
  free(acc);
  return NULL;
}

/*
 * dense_grad(dy, y, x, w, dx, dw, db, n, k, m): the whole backward pass of one dense layer
 * `y = act(x w + b)` (x [n, k], w [k, m], dy and y [n, m], act = relu when y is given, else the
 * identity) in one call:
 *   g  = dy * (y > 0)  (relu)  or  dy
 *   dw = x^T g   [k, m];   db = sum_rows g   [m] (double accumulators);   dx = g w^T   [n, k] (when dx is not null)
 * With a relu, g is formed CHUNK_ROWS_FLOATS at a time in a scratch buffer kept between calls,
 * so the backward pass of a layer over a whole memory never holds an [n, m] temporary (tfjs's
 * ops hold two: the mask and the product); dw accumulates over the chunks (beta = 1).
 */
#define DENSE_CHUNK_FLOATS ((size_t)1 << 20) /* 4 MB */

static scratch_buf mask_buf; /* the relu-masked gradient, one chunk of rows */

/*
 * g = dy * (y > 0) and acc += column sums of g, over `rows` rows of `m`, in one pass. Written as a
 * product with the 0/1 mask over restrict pointers so the compiler vectorizes it: as a branch
 * (gcc 12 -O3 kept `y > 0 ? dy : 0` one, and the relu pattern is random) it cost 5 ms of
 * mispredictions per million elements, half the product it feeds (bench/profile.ts, M = 128).
 * dy * step(y) is also exactly tfjs's relu gradient (NaN in dy stays NaN).
 */
static void mask_rows(const float *restrict dy, const float *restrict y, float *restrict g, double *restrict acc, int rows, int32_t m) {
  for (int r = 0; r < rows; r++) {
    const float *restrict dr = dy + (size_t)r * m, *restrict yr = y + (size_t)r * m;
    float *restrict gr = g + (size_t)r * m;
    for (int32_t c = 0; c < m; c++) {
      const float v = dr[c] * (float)(yr[c] > 0.0f);
      gr[c] = v;
      acc[c] += v;
    }
  }
}

static void sum_rows(const float *restrict x, double *restrict acc, int rows, int32_t m) {
  for (int r = 0; r < rows; r++) {
    const float *restrict xr = x + (size_t)r * m;
    for (int32_t c = 0; c < m; c++) acc[c] += xr[c];
  }
}

static napi_value dense_grad(napi_env env, napi_callback_info info) {
  napi_value args[10];
  if (!get_args(env, info, 10, args, "vmm_blas.dense_grad: expected 10 arguments (dy, y, x, w, dx, dw, db, n, k, m)")) return NULL;
  float *dy, *y = NULL, *x, *w, *dx = NULL, *dw, *db;
  size_t ldy, ly = 0, lx, lw, ldx = 0, ldw, ldb;
  napi_valuetype ty, tdx;
  CHECK(napi_typeof(env, args[1], &ty));
  CHECK(napi_typeof(env, args[4], &tdx));
  if (!float_array(env, args[0], &dy, &ldy) || (ty != napi_null && !float_array(env, args[1], &y, &ly)) || !float_array(env, args[2], &x, &lx) ||
      !float_array(env, args[3], &w, &lw) || (tdx != napi_null && !float_array(env, args[4], &dx, &ldx)) || !float_array(env, args[5], &dw, &ldw) ||
      !float_array(env, args[6], &db, &ldb)) {
    napi_throw_type_error(env, NULL, "vmm_blas.dense_grad: dy, x, w, dw, db must be Float32Arrays, y and dx Float32Arrays or null");
    return NULL;
  }
  int32_t n, k, m;
  CHECK(napi_get_value_int32(env, args[7], &n));
  CHECK(napi_get_value_int32(env, args[8], &k));
  CHECK(napi_get_value_int32(env, args[9], &m));
  if (n < 0 || k < 1 || m < 1 || ldy != (size_t)n * m || (y && ly != (size_t)n * m) || lx != (size_t)n * k || lw != (size_t)k * m ||
      (dx && ldx != (size_t)n * k) || ldw != (size_t)k * m || ldb != (size_t)m) {
    napi_throw_range_error(env, NULL, "vmm_blas.dense_grad: array lengths do not match the sizes");
    return NULL;
  }
  double *acc = (double *)calloc((size_t)m, sizeof(double));
  if (!acc) {
    napi_throw_error(env, NULL, "vmm_blas.dense_grad: out of memory");
    return NULL;
  }
  int rows = y ? (int)(DENSE_CHUNK_FLOATS / (size_t)m) : n;
  if (rows < 1) rows = 1;
  if (rows > n) rows = n;
  float *gscratch = y ? scratch_of(&mask_buf, (size_t)rows * m) : NULL;
  if (y && !gscratch) {
    free(acc);
    napi_throw_error(env, NULL, "vmm_blas.dense_grad: out of memory for the scratch buffer");
    return NULL;
  }
  if (n == 0) memset(dw, 0, (size_t)k * m * sizeof(float));
  for (int32_t r0 = 0; r0 < n; r0 += rows) {
    const int cnt = n - r0 < rows ? n - r0 : rows;
    const float *dyc = dy + (size_t)r0 * m;
    const float *g = dyc;
    if (y) {
      mask_rows(dyc, y + (size_t)r0 * m, gscratch, acc, cnt, m);
      g = gscratch;
    } else {
      sum_rows(dyc, acc, cnt, m);
    }
    const gemm_task tdw = {.ta = CblasTrans, .tb = CblasNoTrans, .m = k, .n = m, .k = cnt, .lda = k, .ldb = m, .ldc = m,
                           .a = x + (size_t)r0 * k, .b = g, .beta = r0 == 0 ? 0.0f : 1.0f, .c = dw, .bias = NULL, .relu = 0};
    if (dx) {
      /* dw and dx are independent: at once where that pays (gemm_pair) */
      const gemm_task tdx = {.ta = CblasNoTrans, .tb = CblasTrans, .m = cnt, .n = k, .k = m, .lda = m, .ldb = m, .ldc = k,
                             .a = g, .b = w, .beta = 0.0f, .c = dx + (size_t)r0 * k, .bias = NULL, .relu = 0};
      gemm_pair(&tdx, &tdw, pair_pays((double)cnt * k * m, (double)cnt * k * m));
    } else {
      gemm_one(&tdw);
    }
  }
  for (int32_t c = 0; c < m; c++) db[c] = (float)acc[c];
  free(acc);
  return NULL;
}

static napi_value threads(napi_env env, napi_callback_info info) {
  napi_value out;
  CHECK(napi_create_int32(env, max_threads ? max_threads : openblas_get_num_threads(), &out)); /* not the serial products' 1 */
  return out;
}

/*
 * The Bernoulli log-density of logits l [rows, d] at values x (x repeats over l's leading rows:
 * x holds xlen = a multiple of d floats, row r reads x[(r d) mod xlen ...]), and its gradient; the
 * loops of src/families/fused.ts in C, where scalar expf/log1pf cost a third of JavaScript's
 * Math.exp/Math.log1p with their double rounding.
 *   bernoulli_logprob(l, x, out):          out[r] = sum_j x l - softplus(l)  (double accumulator)
 *   bernoulli_logprob_grad(dy, l, x, out): out[r, j] = dy[r] (x - sigmoid(l))
 * softplus(l) = max(l, 0) + log1p(exp(-|l|)) never overflows; sigmoid likewise by the sign of l.
 */
static int bernoulli_args(napi_env env, napi_callback_info info, size_t n, napi_value *args, float **p, size_t *len, const char *usage) {
  if (!get_args(env, info, n, args, usage)) return 0;
  for (size_t i = 0; i < n; i++) {
    if (!float_array(env, args[i], &p[i], &len[i])) {
      napi_throw_type_error(env, NULL, usage);
      return 0;
    }
  }
  return 1;
}

/*
 * exp(a) for a <= 0 and log1p(t) for 0 <= t <= 1 in single precision, written so gcc vectorizes the
 * loops that use them (no calls, no branches; glibc's expf/log1pf are scalar calls, 60% of the
 * log-density's time). Cephes' single-precision algorithms (S. L. Moshier, "Methods and Programs
 * for Mathematical Functions", 1989: expf.c, logf.c): range reduction by powers of 2 with ln 2 split
 * in two, then a degree-6 (exp) or degree-9 (log) polynomial, about 1 ulp; log1p by Goldberg's
 * correction log1p(t) = log(u) t / (u - 1), u = 1 + t rounded ("What every computer scientist
 * should know about floating-point arithmetic", 1991, Theorem 4). Tested against double precision
 * in test/runtime/blas_math.test.ts.
 */
static inline float exp_nonpos(float a) {
  a = a < -87.0f ? -87.0f : a; /* e^-87 = 1.6e-38: the smallest normal scale 2^-126 keeps it exact enough; log1p of it is itself */
  const float nf = (a * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest (|a log2 e| < 2^22) */
  const float r = (a - nf * 0.693359375f) + nf * 2.12194440e-4f;
  const float r2 = r * r;
  const float p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
  const int32_t bits = ((int32_t)nf + 127) << 23; /* 2^n as a float's bits */
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return (p * r2 + r + 1.0f) * scale;
}

static inline float log1p_unit(float t) {
  const float u = 1.0f + t;
  const int big = u > 1.41421356f;
  const float x = (big ? 0.5f * u : u) - 1.0f; /* u = 2^e (1 + x), e in {0, 1}, x in (-0.293, 0.414] */
  const float e = big ? 1.0f : 0.0f;
  const float z = x * x;
  const float p = ((((((((7.0376836292e-2f * x - 1.1514610310e-1f) * x + 1.1676998740e-1f) * x - 1.2420140846e-1f) * x + 1.4249322787e-1f) * x -
                       1.6668057665e-1f) * x + 2.0000714765e-1f) * x - 2.4999993993e-1f) * x + 3.3333331174e-1f);
  const float logu = x + (x * z * p - 0.5f * z - 2.12194440e-4f * e) + 0.693359375f * e;
  const float d = u - 1.0f;
  return d == 0.0f ? t : logu * (t / d); /* the quotient is 0/0 only where it is not selected */
}

/* terms[j] = x l - softplus(l) over one row; softplus(l) = max(l, 0) + log1p(exp(-|l|)) never overflows. */
static void logprob_terms(const float *restrict l, const float *restrict x, float *restrict terms, int d) {
  for (int j = 0; j < d; j++) {
    const float li = l[j];
    terms[j] = x[j] * li - ((li > 0.0f ? li : 0.0f) + log1p_unit(exp_nonpos(-fabsf(li))));
  }
}

/* out[j] = g (x - sigmoid(l)) over one row, sigmoid by the sign of l so exp never overflows. */
static void logprob_grad_row(const float *restrict l, const float *restrict x, float *restrict out, float g, int d) {
  for (int j = 0; j < d; j++) {
    const float e = exp_nonpos(-fabsf(l[j]));
    const float sig = l[j] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    out[j] = g * (x[j] - sig);
  }
}

/* Rows [r0, r1) of the log-density (terms: a scratch of d floats, one per thread) or of its gradient. */
typedef struct {
  const float *l, *x, *dy;
  float *out, *terms;
  size_t r0, r1, d, xlen;
} bernoulli_task;

static void run_logprob_rows(const void *arg) {
  const bernoulli_task *t = (const bernoulli_task *)arg;
  for (size_t r = t->r0; r < t->r1; r++) {
    logprob_terms(t->l + r * t->d, t->x + (r * t->d) % t->xlen, t->terms, (int)t->d);
    double acc = 0.0; /* in order, in double: as the JavaScript loop sums */
    for (size_t j = 0; j < t->d; j++) acc += t->terms[j];
    t->out[r] = (float)acc;
  }
}

static void run_logprob_grad_rows(const void *arg) {
  const bernoulli_task *t = (const bernoulli_task *)arg;
  for (size_t r = t->r0; r < t->r1; r++) logprob_grad_row(t->l + r * t->d, t->x + (r * t->d) % t->xlen, t->out + r * t->d, t->dy[r], (int)t->d);
}

/* Rows in two halves at once where the helper runs and the work is worth a wake-up (each row is
 * computed alone, so the halves give the same bits as the whole). */
#define BERNOULLI_PAIR_ABOVE ((size_t)1 << 15)
static void bernoulli_rows(void (*fn)(const void *), bernoulli_task whole, float *terms2) {
  if (whole.r1 * whole.d >= BERNOULLI_PAIR_ABOVE && whole.r1 >= 2 && (!whole.terms || terms2) && pair_ready()) {
    bernoulli_task top = whole, bottom = whole;
    top.r1 = bottom.r0 = whole.r1 / 2;
    bottom.terms = terms2;
    run_pair(fn, &top, fn, &bottom);
  } else {
    fn(&whole);
  }
}

static scratch_buf terms_buf, terms_buf2; /* one row's log-density terms, for the caller and the helper */

static napi_value bernoulli_logprob(napi_env env, napi_callback_info info) {
  napi_value args[3];
  float *p[3];
  size_t len[3];
  if (!bernoulli_args(env, info, 3, args, p, len, "vmm_blas.bernoulli_logprob: expected Float32Arrays (l, x, out)")) return NULL;
  const size_t rows = len[2], xlen = len[1];
  const size_t d = rows ? len[0] / rows : 0;
  if (rows == 0 || d == 0 || len[0] != rows * d || xlen == 0 || xlen % d != 0 || len[0] % xlen != 0) {
    napi_throw_range_error(env, NULL, "vmm_blas.bernoulli_logprob: l must be rows x d and x a multiple of d dividing it");
    return NULL;
  }
  float *terms = scratch_of(&terms_buf, d);
  if (!terms) {
    napi_throw_error(env, NULL, "vmm_blas.bernoulli_logprob: out of memory");
    return NULL;
  }
  const bernoulli_task whole = {.l = p[0], .x = p[1], .dy = NULL, .out = p[2], .terms = terms, .r0 = 0, .r1 = rows, .d = d, .xlen = xlen};
  bernoulli_rows(run_logprob_rows, whole, scratch_of(&terms_buf2, d));
  return NULL;
}

static napi_value bernoulli_logprob_grad(napi_env env, napi_callback_info info) {
  napi_value args[4];
  float *p[4];
  size_t len[4];
  if (!bernoulli_args(env, info, 4, args, p, len, "vmm_blas.bernoulli_logprob_grad: expected Float32Arrays (dy, l, x, out)")) return NULL;
  const float *dy = p[0], *l = p[1], *x = p[2];
  float *out = p[3];
  const size_t rows = len[0], xlen = len[2];
  const size_t d = rows ? len[1] / rows : 0;
  if (rows == 0 || d == 0 || len[1] != rows * d || len[3] != len[1] || xlen == 0 || xlen % d != 0 || len[1] % xlen != 0) {
    napi_throw_range_error(env, NULL, "vmm_blas.bernoulli_logprob_grad: l and out must be rows x d (rows = dy's length) and x a multiple of d dividing it");
    return NULL;
  }
  const bernoulli_task whole = {.l = l, .x = x, .dy = dy, .out = out, .terms = NULL, .r0 = 0, .r1 = rows, .d = d, .xlen = xlen};
  bernoulli_rows(run_logprob_grad_rows, whole, NULL);
  return NULL;
}

/* finite(a): whether every entry of the Float32Array a is finite (no NaN, no infinity). The
 * trainer asks it of every gradient before an update (src/runtime/trainer.ts): a test of the
 * exponent bits, OR-ed over the array, which gcc vectorizes (one pass at memory speed, no branch;
 * the sum of tfjs kernels it replaces cost ~3% of a step). */
typedef struct {
  const float *a;
  size_t n;
  uint32_t bad;
} finite_task;

static void run_finite_task(const void *arg) {
  finite_task *t = (finite_task *)arg;
  uint32_t bad = 0;
  for (size_t i = 0; i < t->n; i++) {
    uint32_t bits;
    memcpy(&bits, t->a + i, sizeof bits); /* the bits of a float, without breaking aliasing rules */
    bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
  }
  t->bad = bad;
}
#define FINITE_PAIR_ABOVE ((size_t)1 << 17)

static napi_value all_finite(napi_env env, napi_callback_info info) {
  napi_value args[1], out;
  if (!get_args(env, info, 1, args, "vmm_blas.finite: expected 1 argument (a Float32Array)")) return NULL;
  float *a;
  size_t n;
  if (!float_array(env, args[0], &a, &n)) {
    napi_throw_type_error(env, NULL, "vmm_blas.finite: expected a Float32Array");
    return NULL;
  }
  finite_task whole = {a, n, 0}, top = whole, bottom = whole;
  if (n >= FINITE_PAIR_ABOVE && pair_ready()) { /* two halves at once: memory-bound */
    top.n = n / 2;
    bottom.a = a + top.n;
    bottom.n = n - top.n;
    run_pair(run_finite_task, &top, run_finite_task, &bottom);
    whole.bad = top.bad | bottom.bad;
  } else {
    run_finite_task(&whole);
  }
  CHECK(napi_get_boolean(env, whole.bad == 0, &out));
  return out;
}

/* serial_below(n): products under n multiply-adds run on one thread from now on (n < 0: leave it);
 * returns the threshold before. */
/* The one number argument of a setting (serial_below, spin); 0 with a TypeError naming `usage` otherwise. */
static int setting_arg(napi_env env, napi_callback_info info, const char *usage, double *v) {
  napi_value args[1];
  if (!get_args(env, info, 1, args, usage)) return 0;
  if (napi_get_value_double(env, args[0], v) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return 1;
}

static napi_value set_serial_below(napi_env env, napi_callback_info info) {
  napi_value out;
  double n;
  if (!setting_arg(env, info, "vmm_blas.serial_below: expected 1 number (n)", &n)) return NULL;
  serial_init();
  CHECK(napi_create_double(env, (double)serial_below, &out));
  if (n >= 0) serial_below = (long)n;
  return out;
}

/* pair(mode): whether two products may run at once from now on: 0 no, 1 those of serial size where
 * OpenBLAS has two threads or more (OPENBLAS_NUM_THREADS=1 means one core: then not), 2 even
 * then (the tests), 3 the pool (every product worth it; see above); -1 leaves it. Returns the mode before. */
static napi_value set_pair(napi_env env, napi_callback_info info) {
  napi_value args[1], out;
  if (!get_args(env, info, 1, args, "vmm_blas.pair: expected 1 argument (0, 1, 2, 3 or -1)")) return NULL;
  int32_t on;
  CHECK(napi_get_value_int32(env, args[0], &on));
  pair_decide();
  CHECK(napi_create_int32(env, pair_mode, &out));
  if (on >= 0) pair_mode = on > 3 ? 3 : on;
  return out;
}

/* spin(us): how long the pair helper spins for its next task before it sleeps, from now on
 * (us < 0: leave it); returns the setting before, in microseconds (tests use 0 to make it sleep
 * between every two tasks). */
static napi_value set_spin(napi_env env, napi_callback_info info) {
  napi_value out;
  double us;
  if (!setting_arg(env, info, "vmm_blas.spin: expected 1 number (microseconds)", &us)) return NULL;
  pair_decide();
  CHECK(napi_create_double(env, (double)(pair_spin_ns / 1000), &out));
  if (us >= 0) pair_spin_ns = (long)(us * 1000.0);
  return out;
}

/* paired(): how many tasks the pair helper has run since the module loaded. */
static napi_value paired(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  CHECK(napi_create_double(env, (double)atomic_load(&pair_tasks), &out));
  return out;
}

/* The name of the kernels OpenBLAS chose for this CPU ("Haswell", "SkylakeX", ...). */
static napi_value corename(napi_env env, napi_callback_info info) {
  napi_value out;
  const char *name = openblas_get_corename();
  CHECK(napi_create_string_utf8(env, name ? name : "", NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"gemm", NULL, gemm, NULL, NULL, NULL, napi_default, NULL},
      {"adam", NULL, adam, NULL, NULL, NULL, napi_default, NULL},
      {"conv2d", NULL, conv2d, NULL, NULL, NULL, napi_default, NULL},
      {"colsum", NULL, colsum, NULL, NULL, NULL, napi_default, NULL},
      {"dense_grad", NULL, dense_grad, NULL, NULL, NULL, napi_default, NULL},
      {"corename", NULL, corename, NULL, NULL, NULL, napi_default, NULL},
      {"serial_below", NULL, set_serial_below, NULL, NULL, NULL, napi_default, NULL},
      {"pair", NULL, set_pair, NULL, NULL, NULL, napi_default, NULL},
      {"bernoulli_logprob", NULL, bernoulli_logprob, NULL, NULL, NULL, napi_default, NULL},
      {"bernoulli_logprob_grad", NULL, bernoulli_logprob_grad, NULL, NULL, NULL, napi_default, NULL},
      {"threads", NULL, threads, NULL, NULL, NULL, napi_default, NULL},
      {"finite", NULL, all_finite, NULL, NULL, NULL, napi_default, NULL},
      {"spin", NULL, set_spin, NULL, NULL, NULL, napi_default, NULL},
      {"paired", NULL, paired, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
