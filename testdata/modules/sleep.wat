;; sleep: poll_oneoff with one relative clock subscription of 10 ms, the guest's sleep.
;; ok when it returns one event; exit 1 if poll_oneoff fails, 2 if it returns no event. In
;; the sandbox the wait runs on a Go timer after the seccomp filter is in place: the child
;; starts the netpoller before the filter (epoll_create1 is not allowed after it).
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; subscription at 0 (48 bytes): userdata 0, tag 0 (clock) at 8, clock id 1 (monotonic)
  ;; at 16, timeout 10,000,000 ns at 24, precision 0 at 32, flags 0 (relative) at 40.
  (data (i32.const 16) "\01\00\00\00\00\00\00\00\80\96\98\00\00\00\00\00")
  ;; the event is written at 64 (32 bytes), the count of events at 128.
  (func (export "_start")
    (if (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))
      (then (call $proc_exit (i32.const 1))))
    (if (i32.ne (i32.load (i32.const 128)) (i32.const 1))
      (then (call $proc_exit (i32.const 2))))))
