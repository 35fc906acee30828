;; threadspawn: asks for wasi-threads' thread-spawn, which the sandbox does not offer
;; (invariants 5 and 6: no guest threads). Must be refused at link time.
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $spawn (i32.const 0)))))
