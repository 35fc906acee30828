;; exitmax: calls proc_exit(0xffffffff), the code wazero also uses for "context cancelled";
;; with no context done it must still read as a plain non-zero exit.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $proc_exit (i32.const -1))))
