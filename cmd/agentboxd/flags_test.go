package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"slots": 7, "memory_budget": "1Gi", "max_queued": 50}`), 0o600)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"memory_budget": "1M"}`), 0o600)
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" = accepted
	}{
		{name: "defaults", args: nil},
		{name: "tcp without tokens", args: []string{"--listen", "127.0.0.1:8080"}, wantErr: "needs --tokens"},
		{name: "cert without key", args: []string{"--tls-cert", "c.pem"}, wantErr: "go together"},
		{name: "bad size", args: []string{"--memory-budget", "lots"}, wantErr: "--memory-budget"},
		{name: "zero size", args: []string{"--jetstream-max-store", "0"}, wantErr: "--jetstream-max-store"},
		{name: "bad mode", args: []string{"--socket-mode", "999"}, wantErr: "--socket-mode"},
		{name: "stray argument", args: []string{"run"}, wantErr: "unexpected argument"},
		{name: "unknown flag", args: []string{"--slotz", "3"}, wantErr: "unknown flag"},
		{name: "config file", args: []string{"--config", good}},
		{name: "config below a task's least", args: []string{"--config", bad}, wantErr: "memory_budget"},
		{name: "missing config", args: []string{"--config", filepath.Join(dir, "none.json")}, wantErr: "--config"},
		{name: "no hot children", args: []string{"--hot-modules", "0"}},
		{name: "hot modules not a number", args: []string{"--hot-modules", "many"}, wantErr: "--hot-modules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one naming %q", err, tt.wantErr)
			case tt.wantErr == "" && c == nil:
				t.Fatal("no config")
			}
		})
	}
	if c, _ := parseFlags(nil); c.sandbox.HotModules != defaultHotModules || c.sandbox.WarmPool != defaultWarmPool {
		t.Errorf("defaults: hot modules %d, warm pool %d; want %d and %d", c.sandbox.HotModules, c.sandbox.WarmPool, defaultHotModules, defaultWarmPool)
	}
	if c, _ := parseFlags([]string{"--hot-modules", "9"}); c.sandbox.HotModules != 9 {
		t.Errorf("--hot-modules 9: sandbox.Config.HotModules %d", c.sandbox.HotModules)
	}
	c, _ := parseFlags([]string{"--config", good, "--slots", "3"})
	if c.service.Slots != 7 || c.service.MemoryBudget != 1<<30 || c.service.MaxQueued != 50 {
		t.Errorf("--config not applied over the flags: %+v", c.service)
	}
}
