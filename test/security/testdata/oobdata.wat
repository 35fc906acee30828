;; oobdata: an active data segment that ends one byte past its one-page memory.
(module
  (memory (export "memory") 1)
  (data (i32.const 65535) "ab")
  (func (export "_start")))
