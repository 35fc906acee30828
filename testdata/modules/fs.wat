;; fs: exercises the first preopen (fd 3). Exit codes name the step that went wrong:
;;   13/14 reading in.txt failed, 20 "../escape.txt" opened, 21 a symlink to it opened,
;;   11/12 creating or writing out.txt failed. Exit 0: all as expected. The contents of
;;   in.txt go to stdout; out.txt gets "written by wasm\n".
(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; opened fd at 8; read iovec at 16 {1024, 4096}; nread at 32; nwritten at 40;
  ;; stdout iovec at 48 {1024, n}; out.txt iovec at 64 {336, 16}.
  (data (i32.const 16) "\00\04\00\00\00\10\00\00")
  (data (i32.const 48) "\00\04\00\00")
  (data (i32.const 64) "\50\01\00\00\10\00\00\00")
  (data (i32.const 256) "in.txt")
  (data (i32.const 272) "../escape.txt")
  (data (i32.const 304) "link")
  (data (i32.const 320) "out.txt")
  (data (i32.const 336) "written by wasm\n")
  ;; dirflags 1 = symlink_follow: a symlink is followed, as a libc open() would.
  (func $open (param $path i32) (param $len i32) (param $oflags i32) (param $rights i64) (result i32)
    (call $path_open (i32.const 3) (i32.const 1) (local.get $path) (local.get $len)
      (local.get $oflags) (local.get $rights) (i64.const 0) (i32.const 0) (i32.const 8)))
  (func $fail (param $code i32)
    (call $proc_exit (local.get $code)))
  (func (export "_start")
    ;; 1. read in.txt (rights: fd_read) and copy it to stdout
    (if (call $open (i32.const 256) (i32.const 6) (i32.const 0) (i64.const 2))
      (then (call $fail (i32.const 13))))
    (if (call $fd_read (i32.load (i32.const 8)) (i32.const 16) (i32.const 1) (i32.const 32))
      (then (call $fail (i32.const 14))))
    (i32.store (i32.const 52) (i32.load (i32.const 32)))
    (drop (call $fd_write (i32.const 1) (i32.const 48) (i32.const 1) (i32.const 40)))
    (drop (call $fd_close (i32.load (i32.const 8))))
    ;; 2. "../escape.txt" must not open
    (if (i32.eqz (call $open (i32.const 272) (i32.const 13) (i32.const 0) (i64.const 2)))
      (then (call $fail (i32.const 20))))
    ;; 3. nor may a symlink the guest points at it (creating the link may itself fail)
    (drop (call $path_symlink (i32.const 272) (i32.const 13) (i32.const 3) (i32.const 304) (i32.const 4)))
    (if (i32.eqz (call $open (i32.const 304) (i32.const 4) (i32.const 0) (i64.const 2)))
      (then (call $fail (i32.const 21))))
    ;; 4. create out.txt (oflags: creat|trunc, rights: fd_write) and write to it
    (if (call $open (i32.const 320) (i32.const 7) (i32.const 9) (i64.const 64))
      (then (call $fail (i32.const 11))))
    (if (call $fd_write (i32.load (i32.const 8)) (i32.const 64) (i32.const 1) (i32.const 40))
      (then (call $fail (i32.const 12))))
    (drop (call $fd_close (i32.load (i32.const 8))))))
