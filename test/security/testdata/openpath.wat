;; openpath: opens argv[1] beneath the first preopen (fd 3), following symlinks, and copies
;; up to 4 KiB of it to stdout. Exit code: the WASI errno of the first call that failed
;; (0 = opened and read), 98/99 for bad argv. The suite points it at "../", at host-made
;; symlinks that lead outside the preopen, and at absolute paths.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; 0 argc, 4 argv buf size, 8 opened fd, 12 nread, 16 read iovec {4096, 4096},
  ;; 24 stdout iovec {4096, nread}, 32 nwritten, 1024 argv pointers, 2048 argv bytes,
  ;; 4096 read buffer.
  (data (i32.const 16) "\00\10\00\00\00\10\00\00")
  (data (i32.const 24) "\00\10\00\00")
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))
  (func (export "_start")
    (local $path i32)
    (call $check (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (if (i32.lt_u (i32.load (i32.const 0)) (i32.const 2)) (then (call $proc_exit (i32.const 99))))
    (if (i32.or (i32.gt_u (i32.load (i32.const 0)) (i32.const 256))
                (i32.gt_u (i32.load (i32.const 4)) (i32.const 2048)))
      (then (call $proc_exit (i32.const 98))))
    (call $check (call $args_get (i32.const 1024) (i32.const 2048)))
    (local.set $path (i32.load (i32.const 1028)))
    ;; dirflags 1 = symlink_follow; oflags 0; rights fd_read (2)
    (call $check (call $path_open (i32.const 3) (i32.const 1) (local.get $path) (call $strlen (local.get $path))
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 8)))
    (call $check (call $fd_read (i32.load (i32.const 8)) (i32.const 16) (i32.const 1) (i32.const 12)))
    (i32.store (i32.const 28) (i32.load (i32.const 12)))
    (call $check (call $fd_write (i32.const 1) (i32.const 24) (i32.const 1) (i32.const 32)))))
