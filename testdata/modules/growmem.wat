;; growmem: grows memory 1 MiB (16 pages) at a time, writing to every new page, until
;; memory.grow returns -1; then executes unreachable.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (local $old i32)
    (local $addr i32)
    (local $end i32)
    (loop $grow
      (local.set $old (memory.grow (i32.const 16)))
      (if (i32.eq (local.get $old) (i32.const -1))
        (then unreachable))
      ;; touch one byte in each new 64 KiB page
      (local.set $addr (i32.mul (local.get $old) (i32.const 65536)))
      (local.set $end (i32.add (local.get $addr) (i32.const 1048576)))
      (loop $touch
        (i32.store8 (local.get $addr) (i32.const 1))
        (local.set $addr (i32.add (local.get $addr) (i32.const 65536)))
        (br_if $touch (i32.lt_u (local.get $addr) (local.get $end))))
      (br $grow))))
