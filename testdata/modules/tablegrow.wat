;; tablegrow: asks table.grow for 4,000,000,000 entries on a table with no declared maximum.
;; A refused grow (-1) returns normally; a grow that succeeds executes unreachable.
(module
  (table $t 0 funcref)
  (memory (export "memory") 1)
  (func (export "_start")
    (if (i32.ne (table.grow $t (ref.null func) (i32.const 4000000000)) (i32.const -1))
      (then unreachable))))
