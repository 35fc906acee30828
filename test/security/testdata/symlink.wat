;; symlink: path_symlink("../../../etc/passwd", fd 3, "link") in the first preopen, the
;; wazero#2321 plant: a link the host would later follow out of the directory. Exit code:
;; the errno (0 = the link was made).
(module
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "../../../etc/passwd")
  (data (i32.const 48) "link")
  (func (export "_start")
    (call $proc_exit (call $path_symlink (i32.const 16) (i32.const 19) (i32.const 3) (i32.const 48) (i32.const 4)))))
