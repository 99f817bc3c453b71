{
  # Two builds of one module (scripts/build_blas.mjs sets the variable through the environment):
  #   source build (npm install): linked against the system's libopenblas.so;
  #   prebuild (npm pack): VMM_BLAS_STATIC=/path/to/libopenblas.a linked in statically, only the
  #     objects sgemm needs (--gc-sections), none of OpenBLAS's symbols exported (--exclude-libs,
  #     -fvisibility=hidden), stripped; pthread_* bound to glibc's oldest versions (glibc_compat.c).
  "variables": {
    "vmm_blas_static%": "<!(node -p \"process.env.VMM_BLAS_STATIC || ''\")"
  },
  "targets": [
    {
      "target_name": "vmm_blas",
      "sources": ["vmm_blas.c"],
      # -fno-math-errno and -fno-trapping-math (we never read errno or FP exception flags) let gcc
      # vectorize the loops around the products (the relu masks, Adam's sqrt and division): with
      # them it keeps `y > 0` a branch, 5 ms of mispredictions per million elements. Not
      # -ffast-math: NaN must propagate and sums must not be reassociated.
      "cflags": ["-O3", "-fno-math-errno", "-fno-trapping-math"],
      "conditions": [
        ["vmm_blas_static==''", {
          "libraries": ["-lopenblas", "-lm"]
        }, {
          "sources": ["glibc_compat.c"],
          "cflags": ["-fvisibility=hidden", "-ffunction-sections", "-fdata-sections"],
          "ldflags": [
            "-Wl,--gc-sections", "-Wl,--exclude-libs,ALL", "-s",
            "-Wl,--wrap=pthread_create", "-Wl,--wrap=pthread_join", "-Wl,--wrap=pthread_mutex_trylock",
            "-Wl,--wrap=pthread_getaffinity_np", "-Wl,--wrap=pthread_setaffinity_np"
          ],
          "libraries": ["<(vmm_blas_static)", "-lpthread", "-lm"]
        }]
      ]
    }
  ]
}
