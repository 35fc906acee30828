;; loop: spins forever without calling the host; only an outside stop ends it.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever
      (br $forever))))
