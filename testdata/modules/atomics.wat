;; wat2wasm-flags: --enable-threads
;; atomics: uses an atomic instruction on an ordinary memory; the threads feature is off,
;; so this must not validate.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (i32.atomic.load (i32.const 0)))))
