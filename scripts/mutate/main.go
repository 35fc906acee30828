// Command mutate holds the mutants of `make mutate` (mutants.go) and applies them; the
// harness, scripts/mutate.sh, copies the tree, applies one, runs the suite and expects it
// to fail. Each mutant removes exactly one wall of docs/SECURITY.md, so a mutant the suite
// survives is a wall no test guards.
//
//	mutate list [NAME...]          one line per mutant: name, packages, regen, skip, wall
//	mutate check -dir TREE         every mutant's snippet occurs exactly once in TREE
//	mutate apply -dir TREE NAME    applies one mutant to TREE (a copy, never the checkout)
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// mutant removes one wall by replacing one exact snippet of one file.
type mutant struct {
	Name  string   // what `make mutate MUTANTS=...` names it by: lower case, digits, dashes
	Wall  string   // the wall it removes, as docs/SECURITY.md and DESIGN.md name it
	File  string   // relative to the repository's root
	Old   string   // exact text; must occur exactly once in File
	New   string   // its replacement; the mutated tree must still build
	Pkgs  []string // the packages whose tests must catch it; nil: defaultPkgs (seccompPkgs with Regen)
	Regen bool     // a seccomp policy change: regenerate the embedded BPF programs (cgo, libseccomp)
	Needs string   // a host feature without which the wall cannot show here ("": none)
}

// Host features a wall may need (host_linux.go tells whether this host has them).
const (
	needTimeNS          = "time namespaces"
	needSpeculationCtrl = "per-task speculation control"
	needLandlock        = "Landlock ABI 2 or later"
	needCgroupV1        = "cgroup v1"
	needCgroupV2        = "cgroup v2"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "list":
		err = list(os.Args[2:])
	case "check":
		err = check(os.Args[2:])
	case "apply":
		err = apply(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mutate list [NAME...] | check -dir TREE | apply -dir TREE NAME")
	os.Exit(2)
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// validate refuses a malformed table: a row the harness could not run honestly.
func validate() error {
	seen := map[string]bool{}
	for _, m := range mutants {
		switch {
		case !nameRE.MatchString(m.Name):
			return fmt.Errorf("mutant %q: name must be lower case, digits and dashes", m.Name)
		case seen[m.Name]:
			return fmt.Errorf("mutant %q: listed twice", m.Name)
		case m.Wall == "" || m.File == "" || m.Old == "":
			return fmt.Errorf("mutant %q: empty Wall, File or Old", m.Name)
		case m.Old == m.New:
			return fmt.Errorf("mutant %q: New equals Old, it would change nothing", m.Name)
		case strings.ContainsAny(m.Wall, "\t\n"):
			return fmt.Errorf("mutant %q: Wall holds a tab or newline", m.Name)
		}
		seen[m.Name] = true
	}
	return nil
}

// selected is the mutants named (every one if none), in the table's order; an unknown
// name is an error, not an empty run.
func selected(names []string) ([]mutant, error) {
	if err := validate(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return mutants, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []mutant
	for _, m := range mutants {
		if want[m.Name] {
			out = append(out, m)
			delete(want, m.Name)
		}
	}
	if len(want) > 0 {
		var unknown []string
		for n := range want {
			unknown = append(unknown, n)
		}
		return nil, fmt.Errorf("no mutant named %s (mutate list shows them)", strings.Join(unknown, ", "))
	}
	return out, nil
}

// packages is what the harness runs for m.
func (m mutant) packages() []string {
	switch {
	case m.Pkgs != nil:
		return m.Pkgs
	case m.Regen:
		return seccompPkgs
	}
	return defaultPkgs
}

// list prints the mutants for the harness, tab-separated and never empty (bash's read
// would merge empty fields): name, packages (space-separated), regen (0/1), why this host
// cannot show the wall ("-" if it can), wall.
func list(args []string) error {
	ms, err := selected(args)
	if err != nil {
		return err
	}
	for _, m := range ms {
		regen, skip := "0", "-"
		if m.Regen {
			regen = "1"
		}
		if m.Needs != "" {
			if why := hostLacks(m.Needs); why != "" {
				skip = "needs " + m.Needs + ": " + why
			}
		}
		fmt.Printf("%s\t%s\t%s\t%s\t%s\n", m.Name, strings.Join(m.packages(), " "), regen, skip, m.Wall)
	}
	return nil
}

// check finds every mutant's snippet exactly once in the tree at -dir, so that a stale row
// fails the run before any slow suite, loudly.
func check(args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	dir := fs.String("dir", ".", "the tree to check against")
	fs.Parse(args)
	ms, err := selected(nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range ms {
		if _, err := mutated(*dir, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// apply writes one mutant into the tree at -dir.
func apply(args []string) error {
	fs := flag.NewFlagSet("apply", flag.ExitOnError)
	dir := fs.String("dir", "", "the copy of the tree to mutate")
	fs.Parse(args)
	if *dir == "" || fs.NArg() != 1 {
		usage()
	}
	ms, err := selected(fs.Args())
	if err != nil {
		return err
	}
	m := ms[0]
	text, err := mutated(*dir, m)
	if err != nil {
		return err
	}
	path := filepath.Join(*dir, m.File)
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(text), st.Mode().Perm())
}

// mutated is m.File under dir with m applied, or why it cannot be.
func mutated(dir string, m mutant) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, m.File))
	if err != nil {
		return "", fmt.Errorf("mutant %s: %w", m.Name, err)
	}
	text := string(b)
	if n := strings.Count(text, m.Old); n != 1 {
		return "", fmt.Errorf("mutant %s: its snippet occurs %d times in %s, want exactly once (did the code change? update scripts/mutate/mutants.go):\n%s",
			m.Name, n, m.File, indent(m.Old))
	}
	return strings.Replace(text, m.Old, m.New, 1), nil
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }
