package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/syncbuf"
)

// crun is run from a launcher: this test binary re-executed in a private mount namespace
// of its own (Go marks / private in it before the exec), where the cgroup2 mount of this
// host's hybrid layout (/sys/fs/cgroup/unified) is detached, since crun 1.8 refuses a hybrid
// layout ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"). The
// host's mounts are never touched. The launcher runs each `crun run` it is asked for and
// times it itself, so a sample is crun's own fork/exec, as from the host.

const crunKey, crunName = "crun", "crun, memory+pids cgroups"

// crunBench is a running launcher and the bundles it runs.
type crunBench struct {
	bundles []string
	in      io.WriteCloser
	mu      sync.Mutex
	next    int
	waiting map[int]chan crunReply
}

type crunReply struct {
	wall, cpu time.Duration
	err       error
}

// startCrun writes n bundles (one per concurrent run: each has its own cgroup) and starts
// the launcher. It returns why crun cannot run here instead, for the report.
func startCrun(b *testing.B, n int) (*crunBench, string) {
	b.Helper()
	if _, err := exec.LookPath("crun"); err != nil {
		return nil, "crun is not installed (scripts/setup.sh bench installs it)"
	}
	dir := b.TempDir()
	bundles, err := crunBundles(dir, n)
	if err != nil {
		return nil, fmt.Sprintf("writing the OCI bundles: %v", err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+helperCrun, "AGENTBOX_BENCH_CRUN_ROOT="+filepath.Join(dir, "state"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	stderr := &syncbuf.Buffer{}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Sprintf("starting the crun launcher in a private mount namespace: %v", err)
	}
	b.Cleanup(func() { in.Close(); cmd.Wait() })
	out := bufio.NewScanner(outPipe)
	if !out.Scan() || out.Text() != "ready" {
		return nil, fmt.Sprintf("crun launcher: %s %s", out.Text(), strings.TrimSpace(stderr.String()))
	}
	c := &crunBench{bundles: bundles, in: in, waiting: map[int]chan crunReply{}}
	go c.replies(out)
	return c, ""
}

// crunBundles writes n bundles (one per concurrent run: crun writes into a rootfs it is
// given, /dev/ptmx among others, so runs at once need one each), each a rootfs holding only
// a static true, with memory (256 MiB, agentbox's default) and pids (64) limits in a cgroup
// of its own and every namespace but the user namespace (crun runs as root here).
func crunBundles(dir string, n int) ([]string, error) {
	var out []string
	for i := range n {
		bundle := filepath.Join(dir, fmt.Sprintf("bundle-%d", i))
		rootfs := filepath.Join(bundle, "rootfs")
		for _, d := range []string{"dev", "proc"} {
			if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
				return nil, err
			}
		}
		if _, err := staticTrue(rootfs); err != nil {
			return nil, err
		}
		cfg, err := json.MarshalIndent(crunConfig(rootfs, fmt.Sprintf("/agentbox-bench-%d-%d", os.Getpid(), i)), "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644); err != nil {
			return nil, err
		}
		out = append(out, bundle)
	}
	return out, nil
}

func crunConfig(rootfs, cgroup string) map[string]any {
	ns := []map[string]string{}
	for _, t := range []string{"pid", "network", "ipc", "uts", "mount", "cgroup"} {
		ns = append(ns, map[string]string{"type": t})
	}
	return map[string]any{
		"ociVersion": "1.0.0",
		"process": map[string]any{"terminal": false, "user": map[string]int{"uid": 0, "gid": 0},
			"args": []string{"/true"}, "env": []string{}, "cwd": "/", "noNewPrivileges": true},
		"root":     map[string]any{"path": rootfs, "readonly": true},
		"hostname": "crun",
		"mounts":   []any{},
		"linux": map[string]any{
			"resources":   map[string]any{"memory": map[string]int64{"limit": 256 << 20}, "pids": map[string]int64{"limit": 64}},
			"cgroupsPath": cgroup,
			"namespaces":  ns,
		},
	}
}

// runner is a series of crun runs of bundle i.
func (c *crunBench) runner(i int) *runner {
	return &runner{series: &series{key: crunKey, name: crunName}, run: func() (time.Duration, time.Duration, error) {
		return c.run(i)
	}}
}

// run asks the launcher for one `crun run` of bundle i and waits for its timing.
func (c *crunBench) run(i int) (time.Duration, time.Duration, error) {
	ch := make(chan crunReply, 1)
	c.mu.Lock()
	id := c.next
	c.next++
	c.waiting[id] = ch
	_, err := fmt.Fprintf(c.in, "%d %s\n", id, c.bundles[i])
	c.mu.Unlock()
	if err != nil {
		return 0, 0, fmt.Errorf("crun launcher: %w", err)
	}
	r := <-ch
	return r.wall, r.cpu, r.err
}

// replies hands each of the launcher's answers to its caller.
func (c *crunBench) replies(out *bufio.Scanner) {
	for out.Scan() {
		f := strings.SplitN(out.Text(), " ", 4)
		id, _ := strconv.Atoi(f[0])
		var r crunReply
		switch {
		case len(f) == 4 && f[1] == "ok":
			w, _ := strconv.ParseInt(f[2], 10, 64)
			cpu, _ := strconv.ParseInt(f[3], 10, 64)
			r = crunReply{wall: time.Duration(w), cpu: time.Duration(cpu)}
		default:
			msg, _ := strconv.Unquote(strings.Join(f[2:], " "))
			r = crunReply{err: errors.New(msg)}
		}
		c.mu.Lock()
		ch := c.waiting[id]
		delete(c.waiting, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, ch := range c.waiting {
		ch <- crunReply{err: errors.New("crun launcher exited")}
		delete(c.waiting, id)
	}
}

// crunLauncher is the launcher's side: hide the cgroup2 mount in this (private) mount
// namespace, say ready, then run `crun run` for every request line, concurrently, and
// answer each with its wall and CPU time.
func crunLauncher() int {
	if err := hideUnified(); err != nil {
		fmt.Println("fail", err)
		return 1
	}
	crun, err := exec.LookPath("crun")
	if err != nil {
		fmt.Println("fail", err)
		return 1
	}
	root := os.Getenv("AGENTBOX_BENCH_CRUN_ROOT")
	fmt.Println("ready")
	var mu sync.Mutex
	var wg sync.WaitGroup
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		id, bundle, _ := strings.Cut(sc.Text(), " ")
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("agentbox-bench-%d-%s", os.Getpid(), id)
			wall, cpu, err := execTimed("", crun, "--root", root, "run", "--bundle", bundle, name)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fmt.Printf("%s err %s\n", id, strconv.Quote(err.Error()))
				return
			}
			fmt.Printf("%s ok %d %d\n", id, wall, cpu)
		}()
	}
	wg.Wait()
	return 0
}

const cgroup2Magic = 0x63677270

// hideUnified detaches the cgroup2 mount of a hybrid layout (cgroup v1 controllers at
// /sys/fs/cgroup/*, cgroup2 at /sys/fs/cgroup/unified), but only in a mount namespace that
// is not the parent's: the host's mounts are never changed.
func hideUnified() error {
	self, err1 := os.Readlink("/proc/self/ns/mnt")
	parent, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	if err1 != nil || err2 != nil || self == parent {
		return fmt.Errorf("not in a mount namespace of its own (%s, parent %s; %v %v): refusing to unmount anything", self, parent, err1, err2)
	}
	var root, unified syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &root); err != nil {
		return err
	}
	if root.Type == cgroup2Magic {
		return nil // unified: nothing to hide
	}
	if err := syscall.Statfs("/sys/fs/cgroup/unified", &unified); err != nil || unified.Type != cgroup2Magic {
		return nil // pure v1
	}
	if err := syscall.Unmount("/sys/fs/cgroup/unified", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("detach /sys/fs/cgroup/unified in the launcher's mount namespace: %w", err)
	}
	return nil
}
