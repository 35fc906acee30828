//go:build !linux

package bench

import "testing"

const crunKey, crunName = "crun", "crun, memory+pids cgroups"

type crunBench struct{}

func startCrun(*testing.B, int) (*crunBench, string) { return nil, "crun runs on Linux only" }

func (*crunBench) runner(int) *runner { return nil }

func crunLauncher() int { return 1 }
