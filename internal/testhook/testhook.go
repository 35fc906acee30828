// Package testhook carries the switches that take a wall of the sandbox down, for the
// negative controls and posture tests of the security suite. It is internal, so no program
// outside this module can import it, and no production code in this module does: the CLI
// and the daemon build their specs without it (TestNoProductionImport checks that).
//
// The hooks travel in the context given to sandbox.Run, not in sandbox.Spec, so that the
// public Spec has no field that can switch a wall off.
package testhook

import "context"

// Unsafe switches each remove one wall, so a test can show the attack that wall stops
// getting through without it.
type Unsafe struct {
	NoSeccomp        bool `json:"no_seccomp"`         // no seccomp filter (no_new_privs still set)
	NoPidsLimit      bool `json:"no_pids_limit"`      // cgroup without pids.max
	NoMemoryLimit    bool `json:"no_memory_limit"`    // cgroup without a memory limit
	NoNetNamespace   bool `json:"no_net_namespace"`   // share the host's network namespace
	KeepCapabilities bool `json:"keep_capabilities"`  // stage two keeps root's capabilities in the user namespace
	KeepInheritedFDs bool `json:"keep_inherited_fds"` // stage one leaves descriptors beyond the contract's open
	NoLandlock       bool `json:"no_landlock"`        // no Landlock domain for the task
	NoExecSeal       bool `json:"no_exec_seal"`       // no stacked no-new-exec filter: the allowlist alone
}

// Hooks are what a test may add to one run.
type Hooks struct {
	// Payload names a native payload registered with sandbox.Init in a test binary; it runs
	// in place of wazero after the full sandbox setup, standing for a guest that already
	// escaped. Production binaries register none, so a run naming one fails.
	Payload string
	// Unsafe takes single walls down.
	Unsafe Unsafe
	// OnStart, when set, is called with the child's host pid once it is inside its cgroup
	// and before it may run anything (posture tests inspect it from outside).
	OnStart func(pid int)
	// Hot runs the task in a hot child made for it there and then, as the daemon's would be
	// made after the module's second run, with the task's payload and Unsafe walls: the
	// security suite's third mode (AGENTBOX_TEST_HOT), so that every wall is shown in a
	// hot child too. A task with --dirs never runs in one, and runs as without the hook.
	Hot bool
}

type key struct{}

// With returns ctx carrying h for the sandbox.Run it is passed to.
func With(ctx context.Context, h Hooks) context.Context { return context.WithValue(ctx, key{}, h) }

// From returns the hooks ctx carries; the zero Hooks (every wall up) if none.
func From(ctx context.Context) Hooks {
	h, _ := ctx.Value(key{}).(Hooks)
	return h
}
