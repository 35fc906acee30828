package seccomp

//go:generate env CGO_ENABLED=1 go run ./internal/gen

// Sandboxed returns the policy every sandbox child runs under: Default with signals
// confined to the child's own process. The child is the init of its own pid namespace, so
// its pid is always 1, and the program can be compiled once, ahead of time.
func Sandboxed() Policy { return Default().SignalSelfOnly(1) }

// Filter returns the classic BPF program compiled from Sandboxed by `make generate` (with
// libseccomp, through Compile) and embedded in the binary. Embedding it keeps the production
// binary free of cgo, so it links statically and the child can exec it inside an empty root;
// a test compiles the policy again and fails if the embedded program is stale. Nil on an
// architecture without a policy.
func Filter() []byte { return embeddedFilter }

// NoNewExecFilter returns the classic BPF program compiled from NoNewExec by `make generate`
// and embedded beside Filter's. Stage two stacks it with Stack after the guest's code is
// mapped and before any guest instruction runs. Nil on an architecture without a policy.
func NoNewExecFilter() []byte { return embeddedNoNewExec }
