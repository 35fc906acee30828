package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
)

// TestPreopen runs fs.wasm against a temp dir. fs.wasm reads in.txt to stdout, tries
// "../escape.txt" and a symlink it makes to it (both must fail), then writes out.txt; its
// exit code names the first step that went wrong (see testdata/modules/fs.wat).
func TestPreopen(t *testing.T) {
	tests := []struct {
		name     string
		readOnly bool
		want     outcome.Outcome
		exitCode uint32
		wrote    bool // out.txt written
	}{
		{name: "read-write", want: outcome.OK, wrote: true},
		{name: "read-only refuses the write", readOnly: true, want: outcome.Exit, exitCode: 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			box := filepath.Join(parent, "box")
			mustWrite(t, filepath.Join(parent, "escape.txt"), "secret outside the preopen\n")
			mustWrite(t, filepath.Join(box, "in.txt"), "hello from the host\n")
			var stdout bytes.Buffer
			got := Run(context.Background(), load(t, "fs.wasm"), Config{
				Stdout:   &stdout,
				Preopens: []Preopen{{HostPath: box, GuestPath: "/data", ReadOnly: tt.readOnly}},
			})
			if got.Outcome != tt.want || got.ExitCode != tt.exitCode {
				t.Fatalf("got %s (exit %d): %s; want %s (exit %d)", got.Outcome, got.ExitCode, got.Message, tt.want, tt.exitCode)
			}
			if stdout.String() != "hello from the host\n" {
				t.Errorf("stdout %q, want the contents of in.txt", stdout.String())
			}
			out, err := os.ReadFile(filepath.Join(box, "out.txt"))
			if tt.wrote && (err != nil || string(out) != "written by wasm\n") {
				t.Errorf("out.txt = %q (%v), want the guest's line", out, err)
			}
			if !tt.wrote && err == nil {
				t.Errorf("out.txt exists in a read-only preopen")
			}
			if _, err := os.Lstat(filepath.Join(box, "link")); err == nil {
				t.Errorf("the guest created a symlink")
			}
		})
	}
}

func TestPreopenMissingIsOurError(t *testing.T) {
	got := Run(context.Background(), load(t, "fs.wasm"), Config{
		Preopens: []Preopen{{HostPath: filepath.Join(t.TempDir(), "absent"), GuestPath: "/data"}},
	})
	if got.Outcome != outcome.SandboxError {
		t.Fatalf("got %s: %s; want sandbox_error", got.Outcome, got.Message)
	}
}

// TestGuestClock checks the guest sees the configured resolution and quantised readings.
func TestGuestClock(t *testing.T) {
	const res = 10 * time.Millisecond
	var stdout bytes.Buffer
	got := Run(context.Background(), load(t, "clock.wasm"), Config{Stdout: &stdout, ClockResolution: res})
	if got.Outcome != outcome.OK || stdout.Len() != 32 {
		t.Fatalf("got %s: %s, %d bytes of stdout; want ok and 32 bytes", got.Outcome, got.Message, stdout.Len())
	}
	b := stdout.Bytes()
	for i, name := range []string{"monotonic", "realtime"} {
		r := binary.LittleEndian.Uint64(b[16*i:])
		v := binary.LittleEndian.Uint64(b[16*i+8:])
		if time.Duration(r) != res {
			t.Errorf("%s resolution %d ns, want %v", name, r, res)
		}
		if v%uint64(res) != 0 {
			t.Errorf("%s time %d ns is not a multiple of %v", name, v, res)
		}
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
