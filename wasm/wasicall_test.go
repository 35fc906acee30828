package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/agentbox/agentbox/outcome"
)

// wasiDefinitions returns wazero's WASI functions, sorted by name.
func wasiDefinitions(t testing.TB) []api.FunctionDefinition {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	compiled, err := wasi_snapshot_preview1.NewBuilder(r).Compile(ctx)
	if err != nil {
		t.Fatalf("compiling WASI: %v", err)
	}
	defs := compiled.ExportedFunctions()
	var out []api.FunctionDefinition
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		out = append(out, defs[name])
	}
	return out
}

// wasiDefinition returns the WASI function called name.
func wasiDefinition(t testing.TB, name string) api.FunctionDefinition {
	t.Helper()
	return wasiDefinitionIn(t, wasiDefinitions(t), name)
}

// appendS64 appends v as signed LEB128, the encoding of i32.const and i64.const.
func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// appendName appends a length-prefixed string.
func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}

// valueTypes encodes a vector of value types.
func valueTypes(ts []api.ValueType) []byte {
	return append(appendU32(nil, uint32(len(ts))), ts...)
}

// wasiCall is one call in a test module: def with args. If deref is above zero, parameter
// deref-1 is an i32 loaded from the address args[deref-1] (an fd a previous call wrote).
type wasiCall struct {
	def   api.FunctionDefinition
	args  []uint64
	deref int
}

// wasiCallModule builds a module whose _start calls the WASI function def once with args
// (i32 parameters take the low 32 bits) and then proc_exit(errno) with the errno it
// returned, so Result.ExitCode is the errno. It has one page of memory, exported as
// "memory", which starts with mem.
func wasiCallModule(def api.FunctionDefinition, args []uint64, mem []byte) []byte {
	return wasiCallsModule([]wasiCall{{def: def, args: args}}, mem)
}

// wasiCallsModule is wasiCallModule for a sequence of calls: the errnos of all but the
// last are dropped. Function i is calls[i]'s import, then proc_exit, then _start.
func wasiCallsModule(calls []wasiCall, mem []byte) []byte {
	n := byte(len(calls))
	var types, imports []byte
	for i, c := range calls {
		types = cat(types, bs(0x60), valueTypes(c.def.ParamTypes()), valueTypes(c.def.ResultTypes()))
		imports = append(appendName(appendName(imports, wasi_snapshot_preview1.ModuleName), c.def.Name()), 0x00, byte(i))
	}
	types = cat(bs(n+2), types, bs(0x60, 1, byte(api.ValueTypeI32), 0), bs(0x60, 0, 0))
	imports = append(appendName(appendName(cat(bs(n+1), imports), wasi_snapshot_preview1.ModuleName), "proc_exit"), 0x00, n)
	exports := appendName(bs(2), "_start")
	exports = appendName(append(exports, 0x00, n+1), "memory")
	exports = append(exports, 0x02, 0)
	code := []byte{0} // no locals
	for i, c := range calls {
		code = callCode(code, byte(i), c, i == len(calls)-1)
	}
	code = append(code, opEnd)
	sections := [][]byte{
		section(sectionType, types...),
		section(sectionImport, imports...),
		section(sectionFunction, 1, n+1),
		section(sectionMemory, 1, limitsMin, 1),
		section(sectionExport, exports...),
		section(sectionCode, cat(bs(1), appendU32(nil, uint32(len(code))), code)...),
	}
	if mem = mem[:min(len(mem), pageSize)]; len(mem) > 0 {
		sections = append(sections, section(sectionData, cat(bs(1, 0), i32Zero, appendU32(nil, uint32(len(mem))), mem)...))
	}
	return module(sections...)
}

// callCode appends one call to function fn: push its args, call it, then drop its errno,
// or if last pass it to proc_exit (function index len(calls)). proc_exit itself returns
// nothing.
func callCode(code []byte, fn byte, c wasiCall, last bool) []byte {
	for i, t := range c.def.ParamTypes() {
		switch {
		case t == api.ValueTypeI64:
			code = appendS64(append(code, opI64Const), int64(c.args[i]))
		case i == c.deref-1:
			code = append(appendS64(append(code, opI32Const), int64(int32(c.args[i]))), 0x28, 2, 0) // i32.load
		default:
			code = appendS64(append(code, opI32Const), int64(int32(c.args[i])))
		}
	}
	code = append(code, 0x10, fn) // call
	if len(c.def.ResultTypes()) == 0 {
		return code
	}
	if !last {
		return append(code, 0x1a) // drop
	}
	return append(code, 0x10, fn+1) // call proc_exit, the import after the last call's
}

// clockSubscription is one poll_oneoff subscription: a relative clock timeout of ns.
func clockSubscription(ns uint64) []byte {
	sub := make([]byte, 48) // userdata, type 0 (clock) at 8, clock id at 16, timeout at 24
	binary.LittleEndian.PutUint64(sub[24:], ns)
	return sub
}

func TestHostFunctionPanics(t *testing.T) {
	tests := []struct {
		name     string
		function string
		args     []uint64
		mem      []byte
		msg      string
	}{
		// nsubscriptions*48 wraps to 48 in uint32: one subscription's buffer for 2^28+1.
		{name: "poll_oneoff with 2^28+1 subscriptions", function: "poll_oneoff", args: []uint64{0, 1024, 1<<28 + 1, 2048},
			msg: "guest made host function wasi_snapshot_preview1.poll_oneoff panic: runtime error: index out of range"},
		// The same wrap with a different remainder: 2^28+2 subscriptions, a 96-byte buffer.
		{name: "poll_oneoff with 2^28+2 subscriptions", function: "poll_oneoff", args: []uint64{0, 1024, 1<<28 + 2, 2048},
			msg: "guest made host function wasi_snapshot_preview1.poll_oneoff panic: runtime error"},
		// Found by FuzzWASICalls: stdio files cannot set times, and the path fallback
		// dereferences the file system they do not have.
		{name: "fd_filestat_set_times on stdin", function: "fd_filestat_set_times", args: []uint64{0, 0, 0, 0},
			msg: "guest made host function wasi_snapshot_preview1.fd_filestat_set_times panic: runtime error: invalid memory address or nil pointer dereference"},
		{name: "fd_filestat_set_times on stdout", function: "fd_filestat_set_times", args: []uint64{1, 0, 0, 0},
			msg: "guest made host function wasi_snapshot_preview1.fd_filestat_set_times panic"},
		{name: "fd_filestat_set_times on stderr", function: "fd_filestat_set_times", args: []uint64{2, 0, 0, 0},
			msg: "guest made host function wasi_snapshot_preview1.fd_filestat_set_times panic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := wasiCallModule(wasiDefinition(t, tt.function), tt.args, tt.mem)
			got := Run(context.Background(), m, Config{})
			if got.Outcome != outcome.Trap || !strings.Contains(got.Message, tt.msg) {
				t.Fatalf("got %s %q; want trap with %q", got.Outcome, got.Message, tt.msg)
			}
		})
	}
}

func TestHostArgumentLimits(t *testing.T) {
	open := wasiCall{def: wasiDefinition(t, "path_open"), args: []uint64{3, 0, 0, 1, 1, 1<<64 - 1, 1<<64 - 1, 0, 16}} // create "f", fd at 16
	renumber := wasiDefinition(t, "fd_renumber")
	tests := []struct {
		name  string
		to    uint64
		errno uint32 // the exit code: fd_renumber's errno
	}{
		// Without the limit wazero grows its fd table to 2^31 entries: 16 GiB of Go heap.
		{name: "to 2^31-1 is refused", to: 1<<31 - 1, errno: errnoBadf},
		{name: "just over the limit", to: maxRenumberTarget + 1, errno: errnoBadf},
		{name: "negative, refused by wazero too", to: 1<<32 - 1, errno: errnoBadf},
		{name: "at the limit", to: maxRenumberTarget, errno: 0},
		{name: "a small fd", to: 9, errno: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := wasiCallsModule([]wasiCall{open, {def: renumber, args: []uint64{16, tt.to}, deref: 1}}, []byte("f"))
			got := Run(context.Background(), m, Config{Preopens: []Preopen{{HostPath: t.TempDir(), GuestPath: "/"}}})
			if got.ExitCode != tt.errno || (got.Outcome != outcome.Exit && got.Outcome != outcome.OK) {
				t.Fatalf("got %s (exit %d) %q; want fd_renumber's errno %d", got.Outcome, got.ExitCode, got.Message, tt.errno)
			}
		})
	}
}

// TestHostCallsStillWork: the guarded re-export keeps WASI's behaviour, the deliberate
// panics (proc_exit, the output cap) included, and a sleep ends with the deadline.
func TestHostCallsStillWork(t *testing.T) {
	hello := []byte("hi\n")
	iov := make([]byte, 8) // one iovec at 16 pointing at the text at 0
	binary.LittleEndian.PutUint32(iov[4:], uint32(len(hello)))
	fdWriteMem := cat(hello, make([]byte, 16-len(hello)), iov)
	tests := []struct {
		name     string
		function string
		args     []uint64
		mem      []byte
		cfg      Config
		deadline bool
		want     outcome.Outcome
		exitCode uint32
		stdout   string
	}{
		{name: "fd_write prints", function: "fd_write", args: []uint64{1, 16, 1, 32}, mem: fdWriteMem, want: outcome.OK, stdout: "hi\n"},
		{name: "fd_write past the cap", function: "fd_write", args: []uint64{1, 16, 1, 32}, mem: fdWriteMem, cfg: Config{OutputLimit: 2}, want: outcome.OutputLimit, stdout: "hi"},
		{name: "proc_exit 7", function: "proc_exit", args: []uint64{7}, want: outcome.Exit, exitCode: 7},
		{name: "sched_yield", function: "sched_yield", want: outcome.OK},
		{name: "poll_oneoff sleeps until the deadline", function: "poll_oneoff", args: []uint64{0, 1024, 1, 2048}, mem: clockSubscription(1 << 62),
			cfg: Config{CloseOnContextDone: true}, deadline: true, want: outcome.Timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.deadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
				defer cancel()
			}
			var stdout bytes.Buffer
			tt.cfg.Stdout = &stdout
			got := Run(ctx, wasiCallModule(wasiDefinition(t, tt.function), tt.args, tt.mem), tt.cfg)
			if got.Outcome != tt.want || got.ExitCode != tt.exitCode || stdout.String() != tt.stdout {
				t.Fatalf("got %s (exit %d) %q, stdout %q; want %s (exit %d), stdout %q",
					got.Outcome, got.ExitCode, got.Message, stdout.String(), tt.want, tt.exitCode, tt.stdout)
			}
		})
	}
}

// TestClassifyPanics: a panic is the guest's only if a host function raised it.
func TestClassifyPanics(t *testing.T) {
	var runtimeErr runtime.Error
	func() {
		defer func() { runtimeErr = recover().(runtime.Error) }()
		var s []int
		_ = s[len(s)] // index out of range, as wazero's WASI code does
	}()
	limit := &outputLimitError{stream: "stdout", limit: 5}
	tests := []struct {
		name string
		err  error
		want outcome.Outcome
		msg  string
	}{
		{name: "runtime error in a host function", err: fmt.Errorf("%w (recovered by wazero)\nwasm stack trace: ...", &hostPanic{function: "wasi_snapshot_preview1.fd_read", value: runtimeErr}),
			want: outcome.Trap, msg: "guest made host function wasi_snapshot_preview1.fd_read panic: runtime error: index out of range [0] with length 0"},
		{name: "string panic in a host function, first line only", err: &hostPanic{function: "m.f", value: "boom\nmore"},
			want: outcome.Trap, msg: "guest made host function m.f panic: boom"},
		{name: "runtime error outside host functions is ours", err: fmt.Errorf("%w (recovered by wazero)", runtimeErr),
			want: outcome.SandboxError, msg: "running the guest failed: runtime error"},
		{name: "output cap still wins", err: fmt.Errorf("%w (recovered by wazero)", limit), want: outcome.OutputLimit},
		{name: "output cap wins even if wrapped", err: &hostPanic{function: "m.f", value: limit}, want: outcome.OutputLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := classifier{mem: newMemoryCap(pageSize), ctx: context.Background()}
			got := c.classify(tt.err)
			if got.outcome != tt.want || !strings.Contains(got.message, tt.msg) {
				t.Fatalf("got %s %q; want %s with %q", got.outcome, got.message, tt.want, tt.msg)
			}
			if errors.Is(tt.err, ErrOutputLimit) != (tt.want == outcome.OutputLimit) {
				t.Errorf("errors.Is(err, ErrOutputLimit) disagrees with the outcome")
			}
		})
	}
}

// fuzzInteresting are argument values that have broken wazero's arithmetic or bounds: zero,
// -1, 2^28+1 (x48 wraps in uint32), 2^29+1 (x8 wraps), 2^31-1 and 2^31 (the sign), and
// the page's edges.
var fuzzInteresting = []uint64{0, 1<<64 - 1, 1<<28 + 1, 1<<29 + 1, 1<<31 - 1, 1 << 31, pageSize - 1, pageSize}

// The fuzzed call's file descriptors: the preopen, and a file opened before the call.
const (
	fuzzDirFD  = 3
	fuzzFileFD = 4
	// fuzzName is where the opened file's name ("f") sits, past the fuzzer's memory; the
	// fd is written after it.
	fuzzName = pageSize - 8
)

// FuzzWASICalls calls one WASI function (fn picks it, in name order) with arguments and a
// first page of memory from the input, after opening a file in a fresh writable preopen
// so that fds 3 (the directory) and 4 (the file) mean something. However the guest calls
// the function, the run must end in the guest's outcome: never sandbox_error, never a
// crash or a hang of the host.
func FuzzWASICalls(f *testing.F) {
	defs := wasiDefinitions(f)
	for i := range defs {
		for _, v := range fuzzInteresting {
			f.Add(uint8(i), v, v, v, v, v, v, v, v, v, []byte(nil))
			f.Add(uint8(i), uint64(fuzzFileFD), v, v, v, v, v, v, v, v, []byte(nil))
		}
	}
	open := wasiCall{def: wasiDefinitionIn(f, defs, "path_open"), args: []uint64{fuzzDirFD, 0, fuzzName, 1, 1, 1<<64 - 1, 1<<64 - 1, 0, fuzzName + 4}}
	f.Fuzz(func(t *testing.T, fn uint8, a0, a1, a2, a3, a4, a5, a6, a7, a8 uint64, mem []byte) {
		call := wasiCall{def: defs[int(fn)%len(defs)], args: []uint64{a0, a1, a2, a3, a4, a5, a6, a7, a8}}
		if len(call.def.ParamTypes()) > len(call.args) {
			t.Fatalf("%s takes %d parameters, the fuzzer gives %d", call.def.Name(), len(call.def.ParamTypes()), len(call.args))
		}
		mem = fuzzMemory(mem)
		got := runWASICall(t, wasiCallsModule([]wasiCall{open, call}, mem), mem)
		if got.Outcome == outcome.SandboxError {
			t.Fatalf("%s%v: %s: %s", call.def.Name(), call.args[:len(call.def.ParamTypes())], got.Outcome, got.Message)
		}
	})
}

// TestFuzzHarness: the file FuzzWASICalls opens before each call is fd 4, so that calls
// on it reach a real file.
func TestFuzzHarness(t *testing.T) {
	defs := wasiDefinitions(t)
	open := wasiCall{def: wasiDefinitionIn(t, defs, "path_open"), args: []uint64{fuzzDirFD, 0, fuzzName, 1, 1, 1<<64 - 1, 1<<64 - 1, 0, fuzzName + 4}}
	stat := wasiCall{def: wasiDefinitionIn(t, defs, "fd_filestat_get"), args: []uint64{fuzzFileFD, 0}}
	mem := fuzzMemory(nil)
	if got := runWASICall(t, wasiCallsModule([]wasiCall{open, stat}, mem), mem); got.Outcome != outcome.OK {
		t.Fatalf("fd_filestat_get(4) after path_open: %s (errno %d) %q; want ok", got.Outcome, got.ExitCode, got.Message)
	}
}

// wasiDefinitionIn returns the function called name from defs.
func wasiDefinitionIn(t testing.TB, defs []api.FunctionDefinition, name string) api.FunctionDefinition {
	t.Helper()
	i := slices.IndexFunc(defs, func(d api.FunctionDefinition) bool { return d.Name() == name })
	if i < 0 {
		t.Fatalf("wazero has no WASI function %s", name)
	}
	return defs[i]
}

// fuzzMemory is the guest's first page: the fuzzer's bytes, then the file name at fuzzName.
func fuzzMemory(in []byte) []byte {
	mem := make([]byte, pageSize)
	copy(mem[:fuzzName], in)
	mem[fuzzName] = 'f'
	return mem
}

// runWASICall runs m as the fuzzer does: small memory and output caps, mem as stdin, a
// fresh writable preopen, and a short deadline that wazero watches.
func runWASICall(t *testing.T, m, mem []byte) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	return Run(ctx, m, Config{
		MemoryLimit:        1 << 20,
		OutputLimit:        1024,
		Stdin:              bytes.NewReader(mem),
		Preopens:           []Preopen{{HostPath: t.TempDir(), GuestPath: "/"}},
		CloseOnContextDone: true,
	})
}
