package sandbox

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	"github.com/agentbox/agentbox/internal/testhook"
	"github.com/agentbox/agentbox/outcome"
)

// The spawn spec and the result cross the boundary between supervisor and child as JSON on
// pipes. Both sides treat the other's bytes as untrusted: sizes are capped, the version is
// checked, and every field is validated before use (FuzzDecodeSpec, FuzzDecodeResult).
const (
	wireVersion    = 2 // 2: the spec socket's frames, and hot children
	maxSpecBytes   = 1 << 20
	maxResultBytes = 64 << 10
	// maxPostureBytes caps stage one's posture line (about 150 bytes).
	maxPostureBytes = 1 << 10
)

// Cache modes for the compiled-code cache mounted at cacheMount in the child.
const (
	cacheNone = ""
	cacheRO   = "ro" // later runs of a digest: the cache is read-only
	cacheRW   = "rw" // the sandboxed compile that writes the entry for its own digest
)

// wireSpec is what the child needs to set itself up and run the guest.
type wireSpec struct {
	Version     int             `json:"version"`
	Args        []string        `json:"args"`
	Env         []string        `json:"env"`
	Dirs        []Dir           `json:"dirs"`
	Limits      Limits          `json:"limits"`
	Filter      []byte          `json:"filter"` // classic BPF compiled once by the supervisor
	Payload     string          `json:"payload,omitempty"`
	Unsafe      testhook.Unsafe `json:"unsafe"`
	CacheDir    string          `json:"cache_dir,omitempty"` // host path bound at cacheMount
	CacheMode   string          `json:"cache_mode,omitempty"`
	CompileOnly bool            `json:"compile_only,omitempty"`
	// AllowSpeculation leaves speculative execution to the kernel's default policy
	// (Config.AllowSpeculation); otherwise stage one force-disables what it can.
	AllowSpeculation bool `json:"allow_speculation,omitempty"`
	// Hot: stage one execs stageHot, which loads the module from the cache and then waits
	// on fdSpec for its task's spec (contract.go, readyByte).
	Hot bool `json:"hot,omitempty"`
}

// wireResult is what the child reports. The supervisor's own facts (its kills, the cgroup's
// OOM count) outrank it: a guest that escaped could write anything here.
type wireResult struct {
	Outcome         outcome.Outcome `json:"outcome"`
	ExitCode        uint32          `json:"exit_code"`
	Message         string          `json:"message"`
	StdoutTruncated bool            `json:"stdout_truncated"`
	StderrTruncated bool            `json:"stderr_truncated"`
}

// bindCount is how many directory descriptors travel with the spec (fdBinds onward).
func (s wireSpec) bindCount() int {
	if s.CacheMode != cacheNone {
		return len(s.Dirs) + 1
	}
	return len(s.Dirs)
}

func encodeSpec(s wireSpec) ([]byte, error) {
	s.Version = wireVersion
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode spawn spec: %w", err)
	}
	if len(b) > maxSpecBytes {
		return nil, fmt.Errorf("%w: %d bytes encoded, limit %d (too many args, env or dirs)", ErrBadSpec, len(b), maxSpecBytes)
	}
	return b, nil
}

func decodeSpec(b []byte) (wireSpec, error) {
	var s wireSpec
	if len(b) > maxSpecBytes {
		return s, fmt.Errorf("%w: %d bytes, limit %d", ErrBadSpec, len(b), maxSpecBytes)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%w: %w", ErrBadSpec, err)
	}
	return s, s.check()
}

// check validates a decoded spec field by field.
func (s wireSpec) check() error {
	switch {
	case s.Version != wireVersion:
		return fmt.Errorf("%w: version %d, this binary speaks %d", ErrBadSpec, s.Version, wireVersion)
	case len(s.Args) > MaxArgs || len(s.Env) > MaxArgs:
		return fmt.Errorf("%w: %d args and %d env entries, limit %d each", ErrBadSpec, len(s.Args), len(s.Env), MaxArgs)
	case len(s.Dirs) > MaxDirs:
		return fmt.Errorf("%w: %d dirs, limit %d", ErrBadSpec, len(s.Dirs), MaxDirs)
	case s.CacheMode != cacheNone && s.CacheMode != cacheRO && s.CacheMode != cacheRW:
		return fmt.Errorf("%w: cache mode %q", ErrBadSpec, s.CacheMode)
	case (s.CacheMode == cacheNone) != (s.CacheDir == ""):
		return fmt.Errorf("%w: cache mode %q with cache dir %q", ErrBadSpec, s.CacheMode, s.CacheDir)
	}
	if s.Hot && (len(s.Dirs) > 0 || s.CompileOnly || (s.CacheMode != cacheRO && s.Payload == "")) {
		return fmt.Errorf("%w: a hot child runs a module's compiled code (or a test's payload) with no dirs, not %d dirs, cache mode %q, compile only %t",
			ErrBadSpec, len(s.Dirs), s.CacheMode, s.CompileOnly)
	}
	for _, d := range s.Dirs {
		if d.HostPath == "" || d.GuestPath == "" {
			return fmt.Errorf("%w: dir %+v needs both a host and a guest path", ErrBadSpec, d)
		}
	}
	return s.Limits.validate()
}

// hotFor refuses a task's spec that the hot child made from warm could not run as its
// own stage two would: a child is made for one filter, one module's cache entry and
// memory limit (the compile vets against it), and the walls it has up (every one, but in
// the security suite's hot mode, testhook.Hooks.Hot).
func (s wireSpec) hotFor(warm wireSpec) error {
	switch {
	case !s.Hot:
		return fmt.Errorf("%w: a hot child's task must be a hot spec", ErrBadSpec)
	case !bytes.Equal(s.Filter, warm.Filter):
		return fmt.Errorf("%w: the task's seccomp filter is not the one this hot child installed", ErrBadSpec)
	case s.Limits.MemoryBytes != warm.Limits.MemoryBytes:
		return fmt.Errorf("%w: memory limit %d bytes, the hot child was made for %d", ErrBadSpec, s.Limits.MemoryBytes, warm.Limits.MemoryBytes)
	case s.CacheDir != warm.CacheDir:
		return fmt.Errorf("%w: cache entry %s, the hot child holds %s", ErrBadSpec, s.CacheDir, warm.CacheDir)
	case s.Unsafe != warm.Unsafe || s.Payload != warm.Payload || s.AllowSpeculation != warm.AllowSpeculation:
		return fmt.Errorf("%w: the task's walls, payload or speculation policy are not the ones this hot child was made with", ErrBadSpec)
	}
	return nil
}

func encodeResult(r wireResult) []byte {
	if len(r.Message) > maxResultBytes/2 {
		r.Message = r.Message[:maxResultBytes/2] + "…"
	}
	b, _ := json.Marshal(r) // cannot fail: plain strings and numbers
	return b
}

func decodeResult(b []byte) (wireResult, error) {
	var r wireResult
	if len(b) > maxResultBytes {
		return r, fmt.Errorf("child result: %d bytes, limit %d", len(b), maxResultBytes)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("child result: %w", err)
	}
	if !r.Outcome.Valid() {
		return r, fmt.Errorf("child result: outcome %q is not in the closed set", r.Outcome)
	}
	return r, nil
}

// wirePosture is the line stage one writes on fdResult just before the exec into stage
// two: the first thing in the pipe whenever a guest ran, since the guest's code starts only
// after it. The guest can append to the pipe but not take back what is already there, so
// what it writes is at most the result that follows.
type wirePosture struct {
	Posture *Posture `json:"posture"`
}

func encodePosture(p Posture) []byte {
	b, _ := json.Marshal(wirePosture{Posture: &p}) // cannot fail: plain strings and numbers
	return append(b, '\n')
}

// readReport reads the child's result pipe: stage one's posture line, then the result. A
// stream whose first line is not a posture comes from a stage one that failed before it,
// which ran no guest: all of it is the result. The posture is read apart from the result's
// cap, so that a guest flooding the pipe cannot take the posture down with its result.
func readReport(r io.Reader) (*Posture, []byte, error) {
	br := bufio.NewReaderSize(r, maxPostureBytes)
	line, err := br.ReadSlice('\n')
	if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
		return nil, nil, err
	}
	var p wirePosture
	if bytes.HasSuffix(line, []byte("\n")) && json.Unmarshal(line, &p) == nil && p.Posture != nil {
		rest, err := readCapped(br, maxResultBytes)
		return p.Posture, rest, err
	}
	head := bytes.Clone(line)
	rest, err := readCapped(br, maxResultBytes-int64(len(head)))
	if err != nil {
		return nil, nil, err
	}
	return nil, append(head, rest...), nil
}

// appendFrame appends b to buf as one frame of the spec socket: its length as 4 bytes,
// big-endian, then b.
func appendFrame(buf, b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(buf, uint32(len(b))), b...)
}

// readFrame reads one frame from r, refusing one longer than limit before reading it.
func readFrame(r io.Reader, limit uint32) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, fmt.Errorf("frame length: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > limit {
		return nil, fmt.Errorf("frame of %d bytes, limit %d", size, limit)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("frame of %d bytes: %w", size, err)
	}
	return b, nil
}

// readCapped reads all of r, failing when it holds more than limit bytes.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than %d bytes", limit)
	}
	return b, nil
}
