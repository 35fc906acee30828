package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agentbox/agentbox/supervisor/client"
	"github.com/agentbox/agentbox/verdict"
)

// The commands in this file and its siblings (submit.go, tasks.go, modules.go) are the
// CLI as a client of agentboxd: they run nothing here, they ask the daemon.

// newClientCommands returns every command that talks to agentboxd.
func newClientCommands(code *int) []*cobra.Command {
	return []*cobra.Command{newSubmitCommand(code), newGetCommand(code), newWaitCommand(code),
		newCancelCommand(code), newLsCommand(code), newLogsCommand(code), newEventsCommand(code),
		newModuleCommand(code)}
}

// format is how a client command prints what it got.
type format int

const (
	formatTable format = iota // for people: aligned columns
	formatJSON                // one JSON object, indented, as `agentbox run --json`
	formatJSONL               // one compact JSON object per line, for streams and jq
)

// clientFlags are the flags of every client command.
type clientFlags struct {
	host, tokenFile, output string
	json                    bool
}

func (f *clientFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.host, "host", "", "agentboxd's `ADDRESS`: unix:///PATH, /PATH, https://HOST:PORT or http://127.0.0.1:PORT\n(default $AGENTBOX_HOST, else "+client.DefaultHost+")")
	fs.StringVar(&f.tokenFile, "token-file", "", "read the API token from `FILE` (default $AGENTBOX_TOKEN)")
	fs.StringVarP(&f.output, "output", "o", "table", "`FORMAT`: table, json (one object) or jsonl (one object per line)")
	fs.BoolVar(&f.json, "json", false, "same as -o json")
}

// session is one client command at work: where it prints, how, and its daemon.
type session struct {
	out    output // errors go through out.fail, as every command's do
	format format
	c      *client.Client
	stdin  io.Reader
	use    string // the command's usage line, for errors about its arguments
}

// clientRun adapts a client command's body to cobra: it connects, stops on SIGINT or
// SIGTERM (ctx ends), and sets the exit code body returns.
func clientRun(code *int, f *clientFlags, body func(ctx context.Context, s session, args []string) int) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		s, err := connect(cmd, f)
		if err != nil {
			*code = s.out.fail(err)
			return nil
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		*code = body(ctx, s, args)
		return nil
	}
}

// connect reads the client flags and the environment into a session. The session's
// output is usable even when connect fails, so that the error is printed as asked.
func connect(cmd *cobra.Command, f *clientFlags) (session, error) {
	s := session{out: output{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr()}, stdin: cmd.InOrStdin(), use: cmd.UseLine()}
	var err error
	if s.format, err = parseFormat(f); err != nil {
		return s, err
	}
	s.out.json = s.format != formatTable
	host := f.host
	if host == "" {
		host = os.Getenv("AGENTBOX_HOST")
	}
	token, err := readToken(f.tokenFile)
	if err != nil {
		return s, err
	}
	if s.c, err = client.New(host, token); err != nil {
		return s, verdict.Errorf(verdict.InvalidArgument, "--host", host, "--host: %w", err)
	}
	return s, nil
}

func parseFormat(f *clientFlags) (format, error) {
	if f.json {
		return formatJSON, nil
	}
	switch f.output {
	case "table":
		return formatTable, nil
	case "json":
		return formatJSON, nil
	case "jsonl":
		return formatJSONL, nil
	}
	return formatTable, verdict.Errorf(verdict.InvalidArgument, "--output", f.output, "-o %q: want table, json or jsonl", f.output)
}

// readToken is the API token: the file's content when a file is named (a token in a
// flag would show in ps), else $AGENTBOX_TOKEN; none is fine on a unix socket.
func readToken(file string) (string, error) {
	if file == "" {
		return os.Getenv("AGENTBOX_TOKEN"), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", verdict.Errorf(verdict.InvalidArgument, "--token-file", file, "--token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", verdict.Errorf(verdict.InvalidArgument, "--token-file", file, "--token-file %s is empty", file)
	}
	return token, nil
}

// fail reports err and returns exit 2.
func (s session) fail(err error) int { return s.out.fail(s.clientError(err)) }

// clientError turns what the client returned into the wire error the CLI prints. The
// daemon's refusals already are one; a daemon that is not there gets a sentence that says
// to start it; other faults of the connection are the host's to fix.
func (s session) clientError(err error) error {
	var e *verdict.Error
	host := s.c.Host()
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, client.ErrUnreachable) && errors.Is(err, syscall.EACCES):
		return verdict.Errorf(verdict.Unsupported, "--host", host,
			"%w: this user may not use agentboxd's socket (ask to join its group, or use sudo)", err)
	case errors.Is(err, client.ErrUnreachable):
		return verdict.Errorf(verdict.Unsupported, "--host", host,
			"%w: is agentboxd running? Start it (systemctl start agentboxd), or point --host or AGENTBOX_HOST at it", err)
	case errors.Is(err, context.Canceled):
		return verdict.Errorf(verdict.SetupFailed, "", "", "interrupted: %w", err)
	}
	return verdict.Errorf(verdict.SetupFailed, "--host", host, "%w", err)
}

// print writes v as the session's JSON format asks: indented, or one line.
func (s session) print(v any) {
	if s.format == formatJSONL {
		s.out.stdout.Write(compactJSON(v))
		return
	}
	s.out.stdout.Write(encodeJSON(v))
}

// compactJSON renders v on one line, with a final newline.
func compactJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return append(b, '\n')
}

// table starts aligned columns on w; the caller flushes it.
func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// oneArg returns the single positional argument named name, or an error that says how
// the command is used.
func (s session) oneArg(args []string, name string) (string, error) {
	if len(args) != 1 || args[0] == "" {
		return "", verdict.Errorf(verdict.InvalidArgument, name, strings.Join(args, " "), "want exactly one %s: %s", name, s.use)
	}
	return args[0], nil
}

// someArgs refuses an empty list of the positional arguments named name.
func (s session) someArgs(args []string, name string) error {
	if len(args) == 0 {
		return verdict.Errorf(verdict.InvalidArgument, name, "", "missing %s: %s", name, s.use)
	}
	return nil
}
