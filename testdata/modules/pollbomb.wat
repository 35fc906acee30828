;; pollbomb: poll_oneoff with 2^28+1 subscriptions. wazero multiplies the count by the
;; 48-byte subscription size in 32 bits, which wraps: the host function panics. A panic the
;; guest provokes in a host function is the guest's trap, never sandbox_error.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $poll_oneoff (i32.const 0) (i32.const 0) (i32.const 0x10000001) (i32.const 0)))))
