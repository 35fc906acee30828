;; bigmin: declares 512 pages (32 MiB) of initial memory; over a 16 MiB cap it cannot start.
(module
  (memory (export "memory") 512)
  (func (export "_start")))
