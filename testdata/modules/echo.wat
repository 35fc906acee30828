;; echo: copies stdin to stdout in 4 KiB chunks until fd_read reads 0 bytes.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; read iovec at 0: {buf=64, len=4096}; write iovec at 16: {buf=64, len=n}; n at 32.
  (data (i32.const 0) "\40\00\00\00\00\10\00\00")
  (data (i32.const 16) "\40\00\00\00")
  (func (export "_start")
    (loop $copy
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 32))
        (then (call $proc_exit (i32.const 1))))
      (if (i32.eqz (i32.load (i32.const 32)))
        (then return))
      (i32.store (i32.const 20) (i32.load (i32.const 32)))
      (if (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 40))
        (then (call $proc_exit (i32.const 2))))
      (br $copy))))
