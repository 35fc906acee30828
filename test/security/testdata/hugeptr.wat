;; hugeptr: hands WASI buffers that lie far outside linear memory. First fd_write with an
;; iovec {ptr 0xffff0000, len 0x7fffffff}, then fd_read with the iovec array itself at
;; 0xfffffff8. Exit code: the first errno that is not 21 (EFAULT), else 21. The host must
;; answer EFAULT, never read or write outside the guest's memory, never crash.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\00\ff\ff\ff\ff\ff\7f")
  (func (export "_start")
    (local $e i32)
    (local.set $e (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
    (if (i32.ne (local.get $e) (i32.const 21)) (then (call $proc_exit (local.get $e))))
    (call $proc_exit (call $fd_read (i32.const 0) (i32.const 0xfffffff8) (i32.const 1) (i32.const 16)))))
