package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

func newModuleCommand(code *int) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "module",
		Short: "Push, list or remove the modules agentboxd holds",
		Long: `agentboxd keeps modules by the sha256 digest of their bytes. A module is validated and
compiled, in a sandboxed child, when pushed: an invalid one is refused with the reason.
"agentbox submit FILE" pushes for you; push yourself to submit by digest.`,
	}
	f.register(cmd.PersistentFlags())
	cmd.AddCommand(newModulePushCommand(code, &f), newModuleLsCommand(code, &f), newModuleRmCommand(code, &f))
	return cmd
}

func newModulePushCommand(code *int, f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "push [flags] FILE.wasm...",
		Short: "Upload modules; prints each one's digest",
		RunE: clientRun(code, f, func(ctx context.Context, s session, args []string) int {
			if err := s.someArgs(args, "FILE"); err != nil {
				return s.fail(err)
			}
			var pushed []task.Module
			for _, p := range args {
				m, err := s.push(ctx, p)
				if err != nil {
					return s.fail(err)
				}
				pushed = append(pushed, m)
			}
			s.printModules(pushed, args)
			return exitOK
		}),
	}
}

// push uploads the module at path p.
func (s session) push(ctx context.Context, p string) (task.Module, error) {
	file, size, err := openModule(p)
	if err != nil {
		return task.Module{}, err
	}
	defer file.Close()
	m, err := s.c.PushModule(ctx, file, size)
	if err != nil {
		return m, moduleError(p, err)
	}
	return m, nil
}

// moduleError names the file a refusal of its upload is about.
func moduleError(p string, err error) error {
	var e *verdict.Error
	if !errors.As(err, &e) {
		return err
	}
	return &verdict.Error{Code: e.Code, Field: "MODULE", Value: p, Message: fmt.Sprintf("module %s: %s", p, e.Message)}
}

// openModule opens a module to stream to the daemon, refusing anything but a regular file
// as `agentbox run` does (a FIFO must not block, /dev/zero must not upload forever). The
// size bound is the daemon's to enforce: it may differ from this host's default.
func openModule(p string) (*os.File, int64, error) {
	file, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, verdict.Errorf(verdict.InvalidArgument, "MODULE", p, "cannot read module %s: %w", p, err)
	}
	st, err := file.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("it is %s, not a regular file: pass a .wasm file", fileKind(st.Mode()))
	}
	if err != nil {
		file.Close()
		return nil, 0, verdict.Errorf(verdict.InvalidArgument, "MODULE", p, "module %s: %w", p, err)
	}
	return file, st.Size(), nil
}

func newModuleLsCommand(code *int, f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "ls [flags]",
		Short: "List the modules agentboxd holds",
		RunE: clientRun(code, f, func(ctx context.Context, s session, args []string) int {
			ms, err := s.c.ListModules(ctx)
			if err != nil {
				return s.fail(err)
			}
			s.printModules(ms, nil)
			return exitOK
		}),
	}
}

// printModules prints modules, beside the files they came from when there are some.
func (s session) printModules(ms []task.Module, files []string) {
	switch s.format {
	case formatJSON:
		s.print(task.ModuleList{Modules: append([]task.Module{}, ms...)})
		return
	case formatJSONL:
		for _, m := range ms {
			s.print(m)
		}
		return
	}
	tw := table(s.out.stdout)
	fmt.Fprint(tw, "DIGEST\tSIZE\tCREATED")
	if files != nil {
		fmt.Fprint(tw, "\tFILE")
	}
	fmt.Fprintln(tw)
	for i, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s", m.Digest, approxSize(m.Bytes), timeText(m.CreatedAt))
		if files != nil {
			fmt.Fprintf(tw, "\t%s", files[i])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// removed is the JSON of `agentbox module rm`.
type removed struct {
	Removed []string `json:"removed"`
}

func newModuleRmCommand(code *int, f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm [flags] DIGEST...",
		Short: "Remove modules from agentboxd",
		RunE: clientRun(code, f, func(ctx context.Context, s session, args []string) int {
			if err := s.someArgs(args, "DIGEST"); err != nil {
				return s.fail(err)
			}
			r := removed{Removed: []string{}}
			for _, a := range args {
				d := strings.TrimPrefix(a, "sha256:")
				if err := s.c.DeleteModule(ctx, d); err != nil {
					return s.fail(err)
				}
				r.Removed = append(r.Removed, d)
				if s.format == formatTable {
					fmt.Fprintf(s.out.stdout, "removed %s\n", d)
				}
			}
			if s.format != formatTable {
				s.print(r)
			}
			return exitOK
		}),
	}
}

// moduleDigest says whether arg names a module by digest ("sha256:" optional) rather
// than by file; a file of that name wins, so that no file is ever mistaken for a digest.
func moduleDigest(arg string) (string, bool) {
	d := strings.TrimPrefix(arg, "sha256:")
	if !task.ValidDigest(d) {
		return "", false
	}
	if _, err := os.Stat(arg); !errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	return d, true
}
