package api

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/supervisor/task"
)

// Query parameters are refused when unknown, as JSON fields are: a misspelt filter
// ("stat=done") must not quietly list everything.

// listParams are GET /v1/tasks's query parameters, each with where it goes in the filter.
// Only label repeats.
var listParams = map[string]func(f *task.Filter, v string) error{
	"state":   parseState,
	"outcome": parseOutcome,
	"label":   parseLabel,
	"since":   func(f *task.Filter, v string) error { return parseTime("since", v, &f.Since) },
	"until":   func(f *task.Filter, v string) error { return parseTime("until", v, &f.Until) },
	"cursor":  func(f *task.Filter, v string) error { f.Cursor = v; return nil },
	"limit":   parseLimit,
}

// parseFilter turns GET /v1/tasks's query into a filter, naming the parameter it refuses.
func parseFilter(q url.Values) (task.Filter, error) {
	var f task.Filter
	for _, name := range slices.Sorted(maps.Keys(q)) {
		parse, ok := listParams[name]
		if !ok {
			return f, unknownParam(name, slices.Sorted(maps.Keys(listParams)))
		}
		if len(q[name]) > 1 && name != "label" {
			return f, invalid(name, strings.Join(q[name], ","), "query parameter %s is given %d times: give it once", name, len(q[name]))
		}
		for _, v := range q[name] {
			if err := parse(&f, v); err != nil {
				return f, err
			}
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, invalid("until", q.Get("until"), "until %s is not after since %s", q.Get("until"), q.Get("since"))
	}
	return f, nil
}

func parseState(f *task.Filter, v string) error {
	if !slices.Contains(task.States, task.State(v)) {
		return invalid("state", v, "state %q: want one of %v", v, task.States)
	}
	f.State = task.State(v)
	return nil
}

func parseOutcome(f *task.Filter, v string) error {
	o, err := outcome.Parse(v)
	if err != nil {
		return invalid("outcome", v, "outcome %q: want one of %v", v, outcome.All)
	}
	f.Outcome = o
	return nil
}

// parseLabel adds one label=KEY=VALUE; a key given twice would be a filter nothing
// matches, so it is refused rather than answered with an empty page.
func parseLabel(f *task.Filter, v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return invalid("label", v, "label %q: want label=KEY=VALUE", v)
	}
	if _, dup := f.Labels[k]; dup {
		return invalid("label", v, "label key %q is given twice", k)
	}
	if f.Labels == nil {
		f.Labels = map[string]string{}
	}
	f.Labels[k] = val
	return nil
}

func parseTime(name, v string, dst *time.Time) error {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return invalid(name, v, "%s %q: want an RFC 3339 time such as 2025-01-02T15:04:05Z", name, v)
	}
	*dst = t
	return nil
}

func parseLimit(f *task.Filter, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > task.MaxPageLimit {
		return invalid("limit", v, "limit %q: want 1 to %d (default %d)", v, task.MaxPageLimit, task.DefaultPageLimit)
	}
	f.Limit = n
	return nil
}

// waitTimeout is the wait's ?timeout, WaitMax when absent and capped at it: a client
// asking for an hour gets WaitMax and asks again.
func (s *Server) waitTimeout(q url.Values) (time.Duration, error) {
	v := q.Get("timeout")
	if v == "" {
		return s.opts.WaitMax, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || len(q["timeout"]) > 1 {
		return 0, invalid("timeout", v, "timeout %q: want one duration such as 30s, at most %s", v, s.opts.WaitMax)
	}
	return min(d, s.opts.WaitMax), nil
}

// checkQuery refuses a query that does not parse (url.Values.Query would drop the bad
// pair silently) and a parameter the route does not take (route.Query).
func checkQuery(r *http.Request, known []string) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return invalid("query", r.URL.RawQuery, "the query %q does not parse: %v", r.URL.RawQuery, err)
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(known, name) {
			return unknownParam(name, known)
		}
	}
	return nil
}

func unknownParam(name string, known []string) error {
	if len(known) == 0 {
		return invalid(name, name, "unknown query parameter %q: this route takes none", name)
	}
	return invalid(name, name, "unknown query parameter %q: this route takes %s", name, strings.Join(known, ", "))
}
