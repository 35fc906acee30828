//go:build !linux

package main

// hostLacks: the sandbox runs on Linux only, so no wall can show here.
func hostLacks(string) string { return "the sandbox runs on Linux only" }
