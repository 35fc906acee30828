package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/agentbox/agentbox/internal/units"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/verdict"
)

func newCacheCommand(code *int) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "List or prune the compiled-code cache",
		Long: `The compile cache holds wazero's compiled code per module digest, shared by every agentbox
process on the host and bounded by agentbox run --cache-max-size (least recently used
entries go first). Entries in use by a run are never removed.`,
	}
	cmd.PersistentFlags().StringVar(&dir, "cache-dir", sandbox.DefaultCacheDir, "the cache, as agentbox run --cache-dir")
	cmd.AddCommand(newCacheLsCommand(&dir, code), newCachePruneCommand(&dir, code))
	return cmd
}

// cacheListing is the JSON of `agentbox cache ls --json`.
type cacheListing struct {
	CacheDir   string               `json:"cache_dir"`
	Entries    []sandbox.CacheEntry `json:"entries"` // least recently used first
	TotalBytes uint64               `json:"total_bytes"`
}

func newCacheLsCommand(dir *string, code *int) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the cache's entries, least recently used first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := output{json: asJSON, stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr()}
			entries, err := listCache(*dir)
			if err != nil {
				*code = out.fail(err)
				return nil
			}
			l := cacheListing{CacheDir: *dir, Entries: entries, TotalBytes: totalBytes(entries)}
			if asJSON {
				out.stdout.Write(encodeJSON(l))
				return nil
			}
			printListing(out.stdout, l)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the listing as one JSON object")
	return cmd
}

// listCache lists the cache at dir; a cache that does not exist yet is empty.
func listCache(dir string) ([]sandbox.CacheEntry, error) {
	if ok, err := cacheExists(dir); !ok {
		return []sandbox.CacheEntry{}, err
	}
	entries, err := sandbox.ListCache(dir)
	if err != nil {
		return nil, verdict.Errorf(verdict.InvalidArgument, "--cache-dir", dir, "cache %s: %w", dir, err)
	}
	return append([]sandbox.CacheEntry{}, entries...), nil
}

func printListing(w io.Writer, l cacheListing) {
	if len(l.Entries) > 0 {
		fmt.Fprintf(w, "%-71s  %8s  %-19s  %s\n", "DIGEST", "SIZE", "LAST USED", "ENGINE")
	}
	for _, e := range l.Entries {
		engine := e.Engine
		if engine == "" {
			engine = "(older agentbox)"
		}
		fmt.Fprintf(w, "sha256:%-64s  %8s  %-19s  %s\n", e.Digest, approxSize(e.Bytes), e.LastUsed.Format("2006-01-02 15:04:05"), engine)
	}
	fmt.Fprintf(w, "%d entries, %s in %s\n", len(l.Entries), approxSize(l.TotalBytes), l.CacheDir)
}

// pruneResult is the JSON of `agentbox cache prune --json`.
type pruneResult struct {
	CacheDir       string               `json:"cache_dir"`
	Removed        []sandbox.CacheEntry `json:"removed"`
	RemovedBytes   uint64               `json:"removed_bytes"`
	RemainingBytes uint64               `json:"remaining_bytes"`
}

func newCachePruneCommand(dir *string, code *int) *cobra.Command {
	var maxSize string
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "prune [--max-size SIZE | --all]",
		Short: "Remove least recently used entries until the cache fits SIZE (or all of them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := output{json: asJSON, stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr()}
			r, err := pruneCache(*dir, maxSize, all, cmd.Flags().Changed("max-size"))
			if err != nil {
				*code = out.fail(err)
				return nil
			}
			if asJSON {
				out.stdout.Write(encodeJSON(r))
				return nil
			}
			fmt.Fprintf(out.stdout, "removed %d entries (%s) from %s; %s remain\n",
				len(r.Removed), approxSize(r.RemovedBytes), r.CacheDir, approxSize(r.RemainingBytes))
			return nil
		},
	}
	cmd.Flags().StringVar(&maxSize, "max-size", units.FormatSize(sandbox.DefaultCacheMaxBytes), "keep at most this much, least recently used removed first")
	cmd.Flags().BoolVar(&all, "all", false, "remove every entry not in use")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was removed as one JSON object")
	return cmd
}

// pruneCache prunes the cache at dir to maxSize, or empties it with all.
func pruneCache(dir, maxSize string, all, maxSizeSet bool) (pruneResult, error) {
	r := pruneResult{CacheDir: dir, Removed: []sandbox.CacheEntry{}}
	if all && maxSizeSet {
		return r, verdict.Errorf(verdict.InvalidArgument, "--all", "", "--all and --max-size: give one of them")
	}
	var max uint64
	if !all {
		n, err := units.ParseSize(maxSize)
		if err != nil {
			return r, verdict.Errorf(verdict.InvalidArgument, "--max-size", maxSize, "--max-size %q: %w", maxSize, err)
		}
		if n == 0 {
			return r, verdict.Errorf(verdict.InvalidArgument, "--max-size", maxSize, "--max-size 0: use --all to remove every entry")
		}
		max = n
	}
	if ok, err := cacheExists(dir); !ok {
		return r, err // nothing to prune: do not create the cache for it
	}
	removed, err := sandbox.PruneCache(dir, max)
	if err != nil {
		return r, verdict.Errorf(verdict.InvalidArgument, "--cache-dir", dir, "prune cache %s: %w", dir, err)
	}
	r.Removed = append(r.Removed, removed...)
	r.RemovedBytes = totalBytes(removed)
	left, err := sandbox.ListCache(dir)
	if err != nil {
		return r, verdict.Errorf(verdict.InvalidArgument, "--cache-dir", dir, "cache %s: %w", dir, err)
	}
	r.RemainingBytes = totalBytes(left)
	return r, nil
}

// cacheExists reports whether the cache at dir exists; an empty dir is an error, since
// the cache commands have nothing to work on without one.
func cacheExists(dir string) (bool, error) {
	if dir == "" {
		return false, verdict.Errorf(verdict.InvalidArgument, "--cache-dir", "", "--cache-dir is empty: name the cache directory")
	}
	_, err := os.Stat(dir)
	return !errors.Is(err, fs.ErrNotExist), nil
}

func totalBytes(entries []sandbox.CacheEntry) uint64 {
	var n uint64
	for _, e := range entries {
		n += e.Bytes
	}
	return n
}

// approxSize renders n to one decimal in binary units ("1.5Mi"), for a listing a person
// reads; units.FormatSize is exact and would print "1572865B".
func approxSize(n uint64) string {
	if n < 1<<10 {
		return strconv.FormatUint(n, 10) + "B"
	}
	v, unit := float64(n)/(1<<10), 0
	for v >= 1<<10 && unit < 3 {
		v, unit = v/(1<<10), unit+1
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + []string{"Ki", "Mi", "Gi", "Ti"}[unit]
}
