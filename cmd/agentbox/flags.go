package main

import (
	"errors"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/verdict"
)

// flagError turns pflag's parse errors into an Error naming the flag and the value, with
// the form the flag wants instead of a strconv message.
func flagError(cmd *cobra.Command, err error) error {
	var (
		unknown *pflag.NotExistError
		invalid *pflag.InvalidValueError
		missing *pflag.ValueRequiredError
		syntax  *pflag.InvalidSyntaxError
	)
	switch {
	case errors.As(err, &unknown):
		name := "--" + unknown.GetSpecifiedName()
		if unknown.GetSpecifiedShortnames() != "" {
			name = "-" + unknown.GetSpecifiedName()
		}
		return verdict.Errorf(verdict.InvalidArgument, name, "", "unknown flag %s: see %s --help", name, cmd.CommandPath())
	case errors.As(err, &invalid):
		name, value := "--"+invalid.GetFlag().Name, invalid.GetValue()
		return verdict.Errorf(verdict.InvalidArgument, name, value, "%s %q: %s", name, value, wantedForm(invalid))
	case errors.As(err, &missing):
		name := "--" + missing.GetSpecifiedName()
		return verdict.Errorf(verdict.InvalidArgument, name, "", "%s needs a value: see %s --help", name, cmd.CommandPath())
	case errors.As(err, &syntax):
		name := syntax.GetSpecifiedFlag()
		return verdict.Errorf(verdict.InvalidArgument, name, "", "bad flag syntax %s: flags are --name or --name=value", name)
	}
	return verdict.Errorf(verdict.InvalidArgument, "", "", "%w", err)
}

// wantedForm says what a flag of this type takes.
func wantedForm(e *pflag.InvalidValueError) string {
	switch e.GetFlag().Value.Type() {
	case "duration":
		return "want a duration such as 30s, 500ms or 1m30s"
	case "float64":
		return "want a number such as 0.5 or 2"
	case "int", "int64":
		return "want a whole number"
	case "bool":
		return "want true or false"
	}
	return e.Unwrap().Error()
}

// outputFor reads --json and --verdict-file from args as cmd would, for an error found
// before cmd's own parse finished. It takes any value and skips unknown flags, so that a
// bad flag anywhere on the line is still reported in the form the caller asked for.
func outputFor(cmd *cobra.Command, args []string, stdout, stderr io.Writer) output {
	scan := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	scan.SetOutput(io.Discard)
	scan.SetInterspersed(false) // as `agentbox run`: what follows MODULE is the guest's
	scan.ParseErrorsAllowlist.UnknownFlags = true
	values := map[string]*anyValue{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		v := &anyValue{}
		scan.VarPF(v, f.Name, f.Shorthand, "").NoOptDefVal = f.NoOptDefVal
		values[f.Name] = v
	})
	scan.Parse(args)
	o := output{stdout: stdout, stderr: stderr}
	if v := values["json"]; v != nil {
		o.json, _ = strconv.ParseBool(v.s)
	}
	if v := values["output"]; v != nil && (v.s == "json" || v.s == "jsonl") {
		o.json = true // the client commands' -o json: an early error is JSON too
	}
	if v := values["verdict-file"]; v != nil {
		o.verdictFile = v.s
	}
	return o
}

// anyValue accepts every value: the scan above only wants to see where flags are.
type anyValue struct{ s string }

func (v *anyValue) String() string     { return v.s }
func (v *anyValue) Set(s string) error { v.s = s; return nil }
func (v *anyValue) Type() string       { return "string" }

// parseSize parses a size flag that must be more than zero; def is its default, named in
// the error for 0 (which once silently meant the default).
func parseSize(flag, value string, def uint64) (uint64, error) {
	n, err := units.ParseSize(value)
	if err != nil {
		return 0, verdict.Errorf(verdict.InvalidArgument, flag, value, "%s %q: %w", flag, value, err)
	}
	if n == 0 {
		return 0, verdict.Errorf(verdict.InvalidArgument, flag, value, "%s %s: must be more than 0 (the default is %s)", flag, value, units.FormatSize(def))
	}
	return n, nil
}
