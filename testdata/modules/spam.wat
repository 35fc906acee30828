;; spam: writes a 64-byte line to stdout forever, ignoring fd_write's result.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: {buf=16, len=64}
  (data (i32.const 0) "\10\00\00\00\40\00\00\00")
  (data (i32.const 16) "spam spam spam spam spam spam spam spam spam spam spam spam spa\n")
  (func (export "_start")
    (loop $forever
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br $forever))))
