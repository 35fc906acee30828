package cgroups

import "testing"

func TestParseMountLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want map[string]mount
	}{
		{
			name: "memory",
			line: "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
			want: map[string]mount{"memory": {point: "/sys/fs/cgroup/memory", root: "/"}},
		},
		{
			name: "co-mounted cpu,cpuacct with optional tag",
			line: "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct",
			want: map[string]mount{
				"cpu":     {point: "/sys/fs/cgroup/cpu,cpuacct", root: "/"},
				"cpuacct": {point: "/sys/fs/cgroup/cpu,cpuacct", root: "/"},
			},
		},
		{
			name: "container view with a non-root mount root",
			line: "40 31 0:36 /kubepods/pod1 /sys/fs/cgroup/pids ro - cgroup cgroup rw,pids",
			want: map[string]mount{"pids": {point: "/sys/fs/cgroup/pids", root: "/kubepods/pod1"}},
		},
		{name: "other controllers ignored", line: "34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset"},
		{name: "cgroup2 is not v1", line: "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw"},
		{name: "tmpfs", line: "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755"},
		{name: "garbage", line: "nonsense"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]mount{}
			parseMountLine(tt.line, got)
			if len(got) != len(tt.want) {
				t.Fatalf("parseMountLine(%q) = %v, want %v", tt.line, got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("controller %s: got %+v, want %+v", k, got[k], v)
				}
			}
		})
	}
}

func TestMountDirFor(t *testing.T) {
	tests := []struct {
		name string
		m    mount
		path string
		want string
	}{
		{name: "host root", m: mount{point: "/sys/fs/cgroup/memory", root: "/"}, path: "/process_api/x", want: "/sys/fs/cgroup/memory/process_api/x"},
		{name: "own is root", m: mount{point: "/sys/fs/cgroup/cpu", root: "/"}, path: "/", want: "/sys/fs/cgroup/cpu"},
		{name: "mount root stripped", m: mount{point: "/sys/fs/cgroup/pids", root: "/pod"}, path: "/pod/c1", want: "/sys/fs/cgroup/pids/c1"},
		{name: "prefix is not a parent", m: mount{point: "/sys/fs/cgroup/pids", root: "/pod"}, path: "/pod2/c1", want: "/sys/fs/cgroup/pids/pod2/c1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.dirFor(tt.path); got != tt.want {
				t.Errorf("dirFor(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}
