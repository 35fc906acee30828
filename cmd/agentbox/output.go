package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/verdict"
)

// output is where a command says how it ended: one JSON object on stdout (--json), the
// same object in a verdict file (--verdict-file, run only), and lines on stderr for people.
type output struct {
	json           bool
	verdictFile    string
	stdout, stderr io.Writer
}

// fail reports a request refused before anything ran, and returns its exit code (2).
func (o output) fail(err error) int {
	e := apiError(err)
	fmt.Fprintf(o.stderr, "agentbox: %s\n", e.Message)
	body := verdict.ErrorBody{Error: e}
	if o.verdictFile != "" {
		if werr := writeFileAtomic(o.verdictFile, encodeJSON(body)); werr != nil {
			fmt.Fprintf(o.stderr, "agentbox: --verdict-file: %v\n", werr)
		}
	}
	if o.json {
		o.stdout.Write(encodeJSON(body))
	}
	return exitUsage
}

// apiError returns err as the wire error: as is when it already is one, else as an
// invalid argument (cobra's own errors: unknown command, and the like).
func apiError(err error) *verdict.Error {
	var e *verdict.Error
	if errors.As(err, &e) {
		return e
	}
	return verdict.Errorf(verdict.InvalidArgument, "", "", "%w", err)
}

// verdict reports a task's verdict and returns the exit code for it. A verdict file that
// cannot be written after the run is our fault during a run: sandbox_error's code.
func (o output) verdict(res sandbox.Result) int {
	v := res.Verdict()
	o.warn(v.Warnings)
	if !o.json && res.Outcome != outcome.OK {
		fmt.Fprintf(o.stderr, "agentbox: %s: %s\n", res.Outcome, res.Message)
	}
	code := exitCodeFor(res.Outcome, res.ExitCode)
	if o.verdictFile != "" {
		if err := writeFileAtomic(o.verdictFile, encodeJSON(v.WithoutOutput())); err != nil {
			fmt.Fprintf(o.stderr, "agentbox: the task ended (%s) but its verdict file is not written: %v\n", res.Outcome, err)
			code = exitSandboxError
		}
	}
	if o.json {
		o.stdout.Write(encodeJSON(v))
	}
	return code
}

// warn prints problems of ours that did not stop the command.
func (o output) warn(warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(o.stderr, "agentbox: warning: %s\n", w)
	}
}

// encodeJSON renders v indented, with a final newline. The wire types always encode.
func encodeJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return append(b, '\n')
}

// checkVerdictFile makes sure the verdict can be written to path before the task runs:
// a verdict lost after the run would cost the caller the run.
func checkVerdictFile(path string) error {
	if err := replaceable(path); err != nil {
		return verdict.Errorf(verdict.InvalidArgument, "--verdict-file", path, "--verdict-file %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".agentbox-verdict-*")
	if err != nil {
		return verdict.Errorf(verdict.InvalidArgument, "--verdict-file", path, "--verdict-file %s: cannot create a file in its directory: %w", path, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// replaceable refuses a path that a rename would wrongly replace: anything but a regular
// file or nothing. A symlink is refused, not followed: renaming over it replaces the
// link, and following /dev/stdout or /dev/fd/N would replace the file behind one of our
// own descriptors while the guest's output still streams into it.
func replaceable(path string) error {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symlink: name a regular file (the verdict is written to a new file and renamed into place; for a stream, use --json)", path)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is %s, not a regular file (the verdict is written to a new file and renamed into place; for a stream, use --json)", path, fileKind(st.Mode()))
	}
	return nil
}

// writeFileAtomic writes data to path so that a reader sees the old file or the whole new
// one, never a part: a temporary file in the same directory, synced, then renamed.
func writeFileAtomic(path string, data []byte) error {
	if err := replaceable(path); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644) // CreateTemp's 0600 would hide the verdict from a non-root reader
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
