;; holder: sleeps an hour in poll_oneoff on a relative monotonic clock, so that a load of
;; them holds its slots until the test cancels them (it never waits for a clock to run out:
;; the release is a state change the test makes, not a duration it guesses).
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; subscription at 0: userdata u64, tag u8 = 0 (clock) at 8, clock id u32 = 1 at 16,
  ;; timeout u64 = 3600e9 at 24, precision u64 at 32, flags u16 = 0 at 40. Event at 64.
  (data (i32.const 16) "\01\00\00\00\00\00\00\00\00\38\d6\c5\6d\34\00\00")
  (func (export "_start")
    (call $proc_exit (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))
