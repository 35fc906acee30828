;; wat2wasm-flags: --enable-threads
;; sharedmem: declares a shared memory (threads proposal), which agentbox refuses.
(module
  (memory (export "memory") 1 1 shared)
  (func (export "_start")))
