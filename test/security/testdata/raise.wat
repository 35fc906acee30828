;; raise: proc_raise(SIGKILL = 9). WASI preview 1 deprecated it; the guest must get an errno,
;; never a signal to anything. Exit code: the errno.
(module
  (import "wasi_snapshot_preview1" "proc_raise" (func $proc_raise (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $proc_exit (call $proc_raise (i32.const 9)))))
