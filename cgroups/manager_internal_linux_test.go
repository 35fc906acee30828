package cgroups

import "testing"

func TestOwnUnified(t *testing.T) {
	tests := []struct {
		name string
		path string
		want string
	}{
		{name: "root", path: "/", want: "/"},
		{name: "service", path: "/system.slice/agentboxd.service", want: "/system.slice/agentboxd.service"},
		{name: "already moved to the leaf", path: "/system.slice/agentboxd.service/supervisor", want: "/system.slice/agentboxd.service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ownUnified(tt.path); got != tt.want {
				t.Errorf("ownUnified(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}
