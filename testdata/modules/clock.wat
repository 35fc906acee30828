;; clock: writes 32 raw bytes to stdout, four little-endian u64s: the resolution and the
;; time of the monotonic clock (id 1), then of the realtime clock (id 0).
(module
  (import "wasi_snapshot_preview1" "clock_res_get" (func $res (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $time (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; values at 64..95; iovec at 0: {64, 32}
  (data (i32.const 0) "\40\00\00\00\20\00\00\00")
  (func (export "_start")
    (if (call $res (i32.const 1) (i32.const 64)) (then (call $proc_exit (i32.const 1))))
    (if (call $time (i32.const 1) (i64.const 0) (i32.const 72)) (then (call $proc_exit (i32.const 2))))
    (if (call $res (i32.const 0) (i32.const 80)) (then (call $proc_exit (i32.const 3))))
    (if (call $time (i32.const 0) (i64.const 0) (i32.const 88)) (then (call $proc_exit (i32.const 4))))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
