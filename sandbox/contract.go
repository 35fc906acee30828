package sandbox

import "fmt"

// The contract between the supervisor (spawn_linux.go) and the child (init_linux.go),
// stated once and read by both sides: the child's descriptors, its stages, and where each
// directory it is handed is attached. runc's processComm names each end of each channel the
// same way. Nothing else is inherited: stage one closes every other descriptor (runc
// CVE-2024-21626).

// The child's file descriptors.
const (
	// stage one: a unix socket from the supervisor, which is also the sync point (the task
	// comes on it: see taskByte); stage two: a sealed memfd with the spec, or in a hot
	// child the same socket, which its task comes on (stageHot)
	fdSpec   = 3
	fdResult = 4 // to the supervisor: stage one's posture line (wirePosture), then the result JSON
	fdModule = 5 // sealed memfd with the module bytes (held by a placeholder until the handoff)
	fdExe    = 6 // the binary for the second exec: a sealed memfd, or the file (ExecInPlace)
	// Every descriptor after fdExe is closed at the exec into stage two.
)

// taskByte is the one byte of the handoff message on fdSpec. Its SCM_RIGHTS carry the
// module memfd, then one detached mount tree per wireSpec.bindPoints, in that order; the
// spec bytes follow, then EOF. A child waits for it in stage one before anything of the
// task exists, which is what lets the warm pool start children ahead of their tasks.
const taskByte = 'T'

// A hot child (wireSpec.Hot) gets three frames on fdSpec: stage one's spec and stage two's
// (the same bytes) at the handoff, then, once its stage two has written readyByte back
// (the module's compiled code is loaded), the task's spec. Each frame is a 4-byte
// big-endian length and that many bytes (wire.go); a child that is not hot gets the first.
const readyByte = 'R'

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
	stageHot   = "hot"   // as stageGuest, but the module is loaded before the task comes (hot_linux.go)
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
	fd       int    // the child's descriptor for the tree, as it arrived (set by stage one)
	host     string // the supervisor's path to it
	mount    string // where the child attaches it beneath its new root
	readOnly bool
	// idmap: a read-write --dir, whose owner appears inside as the task (idmap_linux.go).
	idmap bool
}

// bindPoints lists every directory of s in the handoff's order: its dirs, then the cache.
func (s wireSpec) bindPoints() []bindPoint {
	points := make([]bindPoint, 0, s.bindCount())
	for i, d := range s.Dirs {
		points = append(points, bindPoint{fd: -1, host: d.HostPath, mount: dirMount(i),
			readOnly: d.ReadOnly, idmap: !d.ReadOnly})
	}
	if s.CacheMode != cacheNone {
		points = append(points, bindPoint{fd: -1, host: s.CacheDir, mount: cacheMount,
			readOnly: s.CacheMode == cacheRO})
	}
	return points
}

// dirMount is where the i-th --dir is attached, and what wazero preopens for it.
func dirMount(i int) string { return fmt.Sprintf("%s/%d", dirsMount, i) }
