//go:build !linux

package sandbox

import (
	"context"
	"fmt"
	"runtime"
)

// This file keeps the package's API buildable off Linux (go vet on a laptop), in step with
// the _linux.go files: the same exported names and shapes, every call failing with
// ErrUnsupported. Shared types and defaults live in the untagged files (spec.go,
// config.go, errors.go); what is declared here mirrors types still declared in _linux.go
// files (Payload, CheckItem, Report, CacheEntry). TestOtherStubsInStep fails on Linux when
// the two drift apart.

// errNotLinux is ErrUnsupported naming this OS.
var errNotLinux = fmt.Errorf("%w: %s (agentbox needs Linux namespaces, cgroups and seccomp)", ErrUnsupported, runtime.GOOS)

// Init returns at once: there is no sandbox child off Linux.
func Init(...InitOption) {}

// Sandbox is unavailable off Linux.
type Sandbox struct{}

// New fails: the sandbox needs Linux namespaces, cgroups and seccomp.
func New(Config) (*Sandbox, error) { return nil, errNotLinux }

// Close does nothing.
func (*Sandbox) Close() error { return nil }

// CgroupMode reports no hierarchy.
func (*Sandbox) CgroupMode() string { return "" }

// CacheWarning says the cache is not in use: nothing is.
func (*Sandbox) CacheWarning() string { return "" }

// TimeNamespaces reports none.
func TimeNamespaces() bool { return false }

// Run fails.
func (*Sandbox) Run(context.Context, Spec) (Result, error) { return Result{}, errNotLinux }

// PoolStats reports no pool.
func (*Sandbox) PoolStats() PoolStats { return PoolStats{} }

// Swept is 0: nothing was swept.
func (*Sandbox) Swept() int { return 0 }

// Prepare fails.
func (*Sandbox) Prepare(context.Context, []byte) (Result, error) { return Result{}, errNotLinux }

// LocateChild finds no child: there is no sandbox off Linux.
func LocateChild() (path, why string) { return "", errNotLinux.Error() }

// ListCache fails: there is no compile cache off Linux.
func ListCache(string) ([]CacheEntry, error) { return nil, errNotLinux }

// PruneCache fails: there is no compile cache off Linux.
func PruneCache(string, uint64) ([]CacheEntry, error) { return nil, errNotLinux }

// Check reports that this OS cannot run the sandbox.
func Check() Report { return CheckConfig(Config{}) }

// CheckConfig reports that this OS cannot run the sandbox, whatever the config.
func CheckConfig(Config) Report {
	return Report{Items: []CheckItem{{Name: "os", Required: true, Detail: runtime.GOOS + " is not Linux", Fix: "run agentbox on Linux"}}}
}

// CheckPrivileges fails: no privilege makes this OS able to run the sandbox.
func CheckPrivileges() error { return errNotLinux }
