;; sleeper: poll_oneoff on a relative monotonic clock of 60 s; the suite stops it from
;; outside (timeout) to check that nothing of the task remains.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; subscription at 0: userdata u64, tag u8 = 0 (clock) at 8, clock id u32 = 1 at 16,
  ;; timeout u64 = 60e9 at 24, precision u64 at 32, flags u16 = 0 at 40. Event at 64.
  (data (i32.const 16) "\01\00\00\00\00\00\00\00\00\58\47\f8\0d\00\00\00")
  (func (export "_start")
    (call $proc_exit (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))
