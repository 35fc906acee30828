;; args: prints each argument (argv[0] included) on its own line.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; argc at 0, buffer size at 4, iovec at 16, nwritten at 24, argv pointers at 64, strings at 8192.
  (func (export "_start")
    (local $i i32)
    (if (call $sizes (i32.const 0) (i32.const 4)) (then (call $proc_exit (i32.const 1))))
    (if (i32.gt_u (i32.load (i32.const 0)) (i32.const 2000)) (then (call $proc_exit (i32.const 2))))
    (if (i32.gt_u (i32.load (i32.const 4)) (i32.const 57344)) (then (call $proc_exit (i32.const 2))))
    (if (call $get (i32.const 64) (i32.const 8192)) (then (call $proc_exit (i32.const 3))))
    (block $done
      (loop $scan
        (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 4))))
        (if (i32.eqz (i32.load8_u (i32.add (i32.const 8192) (local.get $i))))
          (then (i32.store8 (i32.add (i32.const 8192) (local.get $i)) (i32.const 10))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $scan)))
    (i32.store (i32.const 16) (i32.const 8192))
    (i32.store (i32.const 20) (i32.load (i32.const 4)))
    (if (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))
      (then (call $proc_exit (i32.const 4))))))
