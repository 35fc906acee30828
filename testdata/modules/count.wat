;; count: a fixed loop of 100,000,000 iterations, then returns. Used by BenchmarkLoop to
;; measure what WithCloseOnContextDone costs per loop back-edge.
(module
  (memory (export "memory") 1)
  (global $sink (mut i32) (i32.const 0))
  (func (export "_start")
    (local $i i32)
    (local.set $i (i32.const 100000000))
    (loop $again
      (global.set $sink (i32.add (global.get $sink) (local.get $i)))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $again (local.get $i)))))
