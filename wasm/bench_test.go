package wasm

import (
	"context"
	"testing"

	"github.com/agentbox/agentbox/outcome"
)

// BenchmarkLoop measures what WithCloseOnContextDone costs a tight guest loop: count.wasm
// runs 1e8 iterations; compare ns/op of the two sub-benchmarks. Compilation is outside the
// timer.
func BenchmarkLoop(b *testing.B) {
	mod := load(b, "count.wasm")
	for _, tc := range []struct {
		name  string
		close bool
	}{
		{name: "closeOnContextDone=false", close: false},
		{name: "closeOnContextDone=true", close: true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			cfg := Config{CloseOnContextDone: tc.close, CacheDir: b.TempDir()}
			for b.Loop() {
				b.StopTimer()
				p, err := Compile(ctx, mod, cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res := p.Run(ctx)
				b.StopTimer()
				p.Close(ctx)
				b.StartTimer()
				if res.Outcome != outcome.OK {
					b.Fatalf("%s: %s", res.Outcome, res.Message)
				}
			}
		})
	}
}

// BenchmarkHello measures compile+run+close of hello.wasm, with and without a warm
// compilation cache.
func BenchmarkHello(b *testing.B) {
	mod := load(b, "hello.wasm")
	for _, tc := range []struct {
		name  string
		cache bool
	}{
		{name: "nocache", cache: false},
		{name: "cache", cache: true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			cfg := Config{}
			if tc.cache {
				cfg.CacheDir = b.TempDir()
				Run(ctx, mod, cfg) // warm it
			}
			for b.Loop() {
				if res := Run(ctx, mod, cfg); res.Outcome != outcome.OK {
					b.Fatalf("%s: %s", res.Outcome, res.Message)
				}
			}
		})
	}
}
