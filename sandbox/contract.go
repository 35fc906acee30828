package sandbox

import "fmt"

// The contract between the supervisor (spawn_linux.go) and the child (init_linux.go),
// stated once and read by both sides: the child's descriptors, its stages, and where each
// directory it is handed is attached. runc's processComm names each end of each channel the
// same way. Nothing else is inherited: stage one closes every other descriptor (runc
// CVE-2024-21626).

// The child's file descriptors.
const (
	fdSpec   = 3 // stage one: pipe from the supervisor (also the sync point); stage two: sealed memfd
	fdResult = 4 // to the supervisor: stage one's posture line (wirePosture), then the result JSON
	fdModule = 5 // sealed memfd with the module bytes
	fdExe    = 6 // sealed memfd with this binary, for the second exec
	// fdBinds onward: detached mount trees, in the order of wireSpec.bindPoints. Every
	// descriptor after those is closed at once.
	fdBinds = 7
)

// childArgs is the argv of a re-executed child: [childName, initArg, stage].
func childArgs(stage string) []string { return []string{childName, initArg, stage} }

const (
	childName = "agentbox-sandbox"
	initArg   = "__agentbox_init__"
)

// The child's stages (argv[2]).
const (
	stageSetup = "1"     // root of the new user namespace: mounts, rlimits, capabilities dropped
	stageGuest = "2"     // no capabilities: seccomp, then wazero (or a test payload)
	stageProbe = "probe" // `agentbox check`: the namespaces were created; exit at once
	// `agentbox check`: restrict speculation as stage one does, print what the kernel shows
	stageSpeculation = "speculation"
)

// Where stage one mounts things inside the new root.
const (
	newRootDir = "/tmp" // any existing directory: the tmpfs on it is private to the child's mount namespace
	dirsMount  = "/dirs"
	cacheMount = "/cache"
)

// bindPoint is one directory the supervisor hands the child as a detached mount tree.
type bindPoint struct {
	fd       int    // the child's descriptor for the tree
	host     string // the supervisor's path to it
	mount    string // where the child attaches it beneath its new root
	readOnly bool
	// idmap: a read-write --dir, whose owner appears inside as the task (idmap_linux.go).
	idmap bool
}

// bindPoints lists every directory of s in descriptor order: its dirs, then the cache.
func (s wireSpec) bindPoints() []bindPoint {
	points := make([]bindPoint, 0, s.bindCount())
	for i, d := range s.Dirs {
		points = append(points, bindPoint{fd: fdBinds + i, host: d.HostPath, mount: dirMount(i),
			readOnly: d.ReadOnly, idmap: !d.ReadOnly})
	}
	if s.CacheMode != cacheNone {
		points = append(points, bindPoint{fd: fdBinds + len(s.Dirs), host: s.CacheDir, mount: cacheMount,
			readOnly: s.CacheMode == cacheRO})
	}
	return points
}

// dirMount is where the i-th --dir is attached, and what wazero preopens for it.
func dirMount(i int) string { return fmt.Sprintf("%s/%d", dirsMount, i) }
