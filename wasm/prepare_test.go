package wasm

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/agentbox/agentbox/outcome"
)

// TestPrepare: a program compiled without its guest's world runs with the one Prepare
// gives it, and Prepare refuses what would change the compiled program.
func TestPrepare(t *testing.T) {
	ctx := context.Background()
	compiled := Config{MemoryLimit: 16 << 20}
	tests := []struct {
		name    string
		module  string
		cfg     Config
		wantErr error
		stdout  string
	}{
		{name: "args arrive", module: "args.wasm", cfg: Config{MemoryLimit: 16 << 20, Args: []string{"p", "x"}}, stdout: "p\nx\n"},
		{name: "env arrives", module: "env.wasm", cfg: Config{MemoryLimit: 16 << 20, Env: []string{"K=v"}}, stdout: "K=v\n"},
		{name: "another memory limit", module: "hello.wasm", cfg: Config{MemoryLimit: 32 << 20}, wantErr: ErrConfig},
		{name: "preopens", module: "hello.wasm", cfg: Config{MemoryLimit: 16 << 20, Preopens: []Preopen{{HostPath: "/", GuestPath: "/h"}}}, wantErr: ErrConfig},
		{name: "a cache", module: "hello.wasm", cfg: Config{MemoryLimit: 16 << 20, CacheDir: t.TempDir()}, wantErr: ErrConfig},
		{name: "bad env", module: "env.wasm", cfg: Config{MemoryLimit: 16 << 20, Env: []string{"NOEQUALS"}}, wantErr: ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(ctx, load(t, tt.module), compiled)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			var out bytes.Buffer
			tt.cfg.Stdout = &out
			err = p.Prepare(tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Prepare = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if r := p.Run(ctx); r.Outcome != outcome.OK || out.String() != tt.stdout {
				t.Errorf("Run = %+v with stdout %q, want ok and %q", r, out.String(), tt.stdout)
			}
			if err := p.Prepare(tt.cfg); !errors.Is(err, ErrAlreadyRan) {
				t.Errorf("Prepare after Run = %v, want %v", err, ErrAlreadyRan)
			}
		})
	}
}
