{
  "targets": [
    {
      "target_name": "vmm_blas",
      "sources": ["vmm_blas.c"],
      "cflags": ["-O2"],
      "libraries": ["-lopenblas", "-lm"]
    }
  ]
}
