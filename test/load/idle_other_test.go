//go:build !linux

package load

// idleSyscalls is empty off Linux, where the load test cannot run (no /proc).
var idleSyscalls = map[string]bool{}
