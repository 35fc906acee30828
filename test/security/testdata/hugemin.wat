;; hugemin: declares the whole 4 GiB wasm32 address space as its initial memory.
(module
  (memory (export "memory") 65536)
  (func (export "_start")))
