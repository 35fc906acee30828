package cgroups

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// mount is one cgroup v1 hierarchy's mount: where it is mounted and which
// cgroup path its mountpoint shows (not "/" inside a container).
type mount struct {
	point string
	root  string
}

// v1Mounts maps each v1 controller to its first mount, from
// /proc/self/mountinfo (cpu and cpuacct may share one mount).
func v1Mounts(mountinfo string) (map[string]mount, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", mountinfo, err)
	}
	defer f.Close()
	mounts := map[string]mount{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		parseMountLine(s.Text(), mounts)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", mountinfo, err)
	}
	return mounts, nil
}

// parseMountLine adds the agentbox controllers (v1Controllers) of one
// mountinfo line, if it is a v1 cgroup mount. Format: id parent maj:min root point opts [tags] - fstype src superopts.
func parseMountLine(line string, mounts map[string]mount) {
	before, after, ok := strings.Cut(line, " - ")
	if !ok {
		return
	}
	pre, post := strings.Fields(before), strings.Fields(after)
	if len(pre) < 5 || len(post) < 3 || post[0] != "cgroup" {
		return
	}
	for _, opt := range strings.Split(post[2], ",") {
		if _, seen := mounts[opt]; !seen && slices.Contains(v1Controllers, opt) {
			mounts[opt] = mount{point: unescape(pre[4]), root: unescape(pre[3])}
		}
	}
}

// unescape undoes mountinfo's octal escapes for space, tab, newline, backslash.
func unescape(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// dirFor is the directory of cgroup path p in this mount: the mountpoint
// shows the hierarchy from m.root down.
func (m mount) dirFor(p string) string {
	rel := p
	if m.root != "/" && (p == m.root || strings.HasPrefix(p, m.root+"/")) {
		rel = strings.TrimPrefix(p, m.root)
	}
	return filepath.Join(m.point, rel)
}

// sortedUnique returns the distinct values of m, sorted.
func sortedUnique(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
