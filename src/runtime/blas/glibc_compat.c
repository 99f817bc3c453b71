/*
 * Linked into the prebuilt module only (binding.gyp, VMM_BLAS_STATIC): the statically linked
 * OpenBLAS calls pthread_create, pthread_join and pthread_{get,set}affinity_np (and vmm_blas.c's
 * pair helper pthread_create and pthread_mutex_trylock), which a build on
 * glibc >= 2.34 binds to their 2.34 symbol versions (when libpthread moved into libc), so the
 * module would not load on older systems (Ubuntu 20.04, Debian 11, RHEL 8). The linker's --wrap
 * sends those calls here, and these bind to the oldest versions of the same functions, which
 * every glibc since 2.3.4 exports (on 2.34+ they are the same code). Not glibc on x86-64 or
 * aarch64: straight through to the symbol the linker would have used.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>

#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))
#if defined(__x86_64__)
#define V_CREATE "GLIBC_2.2.5"
#define V_AFFINITY "GLIBC_2.3.4"
#else
#define V_CREATE "GLIBC_2.17"
#define V_AFFINITY "GLIBC_2.17"
#endif
__asm__(".symver vmm_pthread_create, pthread_create@" V_CREATE);
__asm__(".symver vmm_pthread_join, pthread_join@" V_CREATE);
__asm__(".symver vmm_pthread_mutex_trylock, pthread_mutex_trylock@" V_CREATE);
__asm__(".symver vmm_pthread_getaffinity_np, pthread_getaffinity_np@" V_AFFINITY);
__asm__(".symver vmm_pthread_setaffinity_np, pthread_setaffinity_np@" V_AFFINITY);
#define REAL(f) vmm_##f
#else
#define REAL(f) __real_##f
#endif

extern int REAL(pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
extern int REAL(pthread_join)(pthread_t, void **);
extern int REAL(pthread_mutex_trylock)(pthread_mutex_t *);
extern int REAL(pthread_getaffinity_np)(pthread_t, size_t, cpu_set_t *);
extern int REAL(pthread_setaffinity_np)(pthread_t, size_t, const cpu_set_t *);

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*start)(void *), void *arg) {
  return REAL(pthread_create)(t, attr, start, arg);
}
int __wrap_pthread_join(pthread_t t, void **ret) { return REAL(pthread_join)(t, ret); }
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m) { return REAL(pthread_mutex_trylock)(m); }
int __wrap_pthread_getaffinity_np(pthread_t t, size_t n, cpu_set_t *set) { return REAL(pthread_getaffinity_np)(t, n, set); }
int __wrap_pthread_setaffinity_np(pthread_t t, size_t n, const cpu_set_t *set) { return REAL(pthread_setaffinity_np)(t, n, set); }
