package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// The files under deploy/ are checked here, beside the metrics they name: a renamed metric
// breaks this package's tests, not an operator's dashboard months later.
const deployDir = "../../deploy"

var promql = parser.NewParser(parser.Options{})

// knownMetrics maps every series name a scrape of agentboxd can carry to its label names:
// ours (with every Source gauge present), the Go and process collectors', and the labels
// Prometheus adds itself. A histogram's name stands for its _bucket, _sum and _count.
func knownMetrics(t *testing.T) map[string]map[string]bool {
	t.Helper()
	_, reg := newTest(t, busySource(2), BuildInfo{Runtime: true})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	known := map[string]map[string]bool{"up": {}}
	for _, f := range fams {
		names := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				names[l.GetName()] = true
			}
		}
		for _, suffix := range seriesSuffixes(f.GetType().String()) {
			known[f.GetName()+suffix] = names
		}
	}
	for name, ls := range known {
		known[name] = withScrapeLabels(name, ls)
	}
	return known
}

// seriesSuffixes lists the series names one family is exposed as.
func seriesSuffixes(typ string) []string {
	switch typ {
	case "HISTOGRAM":
		return []string{"", "_bucket", "_sum", "_count"}
	case "SUMMARY":
		return []string{"", "_sum", "_count"}
	}
	return []string{""}
}

// withScrapeLabels adds what Prometheus attaches to every series (and le to buckets).
func withScrapeLabels(name string, ls map[string]bool) map[string]bool {
	out := map[string]bool{"instance": true, "job": true, model.MetricNameLabel: true}
	for l := range ls {
		out[l] = true
	}
	if strings.HasSuffix(name, "_bucket") {
		out["le"] = true
	}
	return out
}

// selectors returns every vector selector in expr (a matrix selector holds one too).
func selectors(t *testing.T, where, expr string) []*parser.VectorSelector {
	t.Helper()
	node, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: PromQL %q does not parse: %v", where, expr, err)
		return nil
	}
	var out []*parser.VectorSelector
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

// checkNames fails for a selector that names no metric agentboxd exports, or matches on
// a label that metric does not carry (a typo there makes a panel silently empty).
func checkNames(t *testing.T, known map[string]map[string]bool, where, expr string) {
	t.Helper()
	for _, vs := range selectors(t, where, expr) {
		name := vs.Name
		if name == "" {
			t.Errorf("%s: selector %s names no metric: %q", where, vs, expr)
			continue
		}
		ls, ok := known[name]
		if !ok {
			t.Errorf("%s: metric %q is not one agentboxd exports (expr %q)", where, name, expr)
			continue
		}
		for _, m := range vs.LabelMatchers {
			if !ls[m.Name] {
				t.Errorf("%s: %s has no label %q (expr %q)", where, name, m.Name, expr)
			}
		}
	}
}

func TestAlertRulesParse(t *testing.T) {
	groups := loadRules(t)
	if len(groups.Groups) == 0 {
		t.Fatal("alerts.yml holds no rule group")
	}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %q: rule %q is not an alert", g.Name, r.Expr)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: wants a summary and a description for whoever is paged", r.Alert)
			}
		}
	}
}

func TestAlertRulesNameKnownMetrics(t *testing.T) {
	known := knownMetrics(t)
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			checkNames(t, known, "alert "+r.Alert, r.Expr)
		}
	}
}

// TestAlertRulesCoverTheOperatorsList keeps the alerts issue 8 asks for from being dropped.
func TestAlertRulesCoverTheOperatorsList(t *testing.T) {
	have := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			have[r.Alert] = true
		}
	}
	for _, want := range []string{
		"AgentboxDown", "AgentboxJetStreamDown", "AgentboxQueueDepthHigh", "AgentboxQueueStalled",
		"AgentboxQueueWaitHigh", "AgentboxSandboxErrorsHigh", "AgentboxLeasesLost",
		"AgentboxLeakedCgroups", "AgentboxMemoryBudgetSaturated",
	} {
		if !have[want] {
			t.Errorf("alerts.yml lacks alert %s", want)
		}
	}
}

// loadRules parses alerts.yml with Prometheus's own rule loader: unknown fields, bad PromQL
// and bad templates fail here as they would fail `promtool check rules`.
func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	path := filepath.Join(deployDir, "alerts.yml")
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err) // ParseFile names the file
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return groups
}

// dashboard is the part of Grafana's dashboard model the tests read.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	path := filepath.Join(deployDir, "grafana-dashboard.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read dashboard: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s does not parse as JSON: %v", path, err)
	}
	return d
}

func TestDashboardParses(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard title %q uid %q: both are needed to import and link it", d.Title, d.UID)
	}
	ids := map[int]string{}
	for _, p := range d.Panels {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v does not fit Grafana's 24-column grid", p.Title, p.GridPos)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}

func TestDashboardNamesKnownMetrics(t *testing.T) {
	known := knownMetrics(t)
	d := loadDashboard(t)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			expr, err := expandGrafana(tg.Expr)
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
				continue
			}
			checkNames(t, known, fmt.Sprintf("panel %q", p.Title), expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			checkLabelValues(t, known, v.Name, v.Query)
		}
	}
}

// labelValues is Grafana's label_values(metric, label) variable query.
var labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// checkLabelValues checks that a template variable reads a label of a metric we export.
func checkLabelValues(t *testing.T, known map[string]map[string]bool, name string, raw json.RawMessage) {
	t.Helper()
	var q struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &q); err != nil {
		t.Errorf("variable %q: query %s: %v", name, raw, err)
		return
	}
	m := labelValues.FindStringSubmatch(q.Query)
	if m == nil {
		t.Errorf("variable %q: query %q is not label_values(metric, label)", name, q.Query)
		return
	}
	if !known[m[1]][m[2]] {
		t.Errorf("variable %q: %s has no label %q, or is not exported", name, m[1], m[2])
	}
}

// grafanaVars stands each dashboard variable in with a value PromQL accepts.
var grafanaVars = map[string]string{
	"__rate_interval": "5m",
	"__interval":      "1m",
	"__range":         "1h",
	"instance":        ".*",
}

var grafanaVar = regexp.MustCompile(`\$\{?(\w+)\}?`)

// expandGrafana replaces the dashboard's variables, refusing one the test does not know.
func expandGrafana(expr string) (string, error) {
	var unknown []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(v string) string {
		name := grafanaVar.FindStringSubmatch(v)[1]
		if s, ok := grafanaVars[name]; ok {
			return s
		}
		unknown = append(unknown, name)
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("expr %q uses variables %v the test does not know", expr, unknown)
	}
	return out, nil
}

// TestDashboardCoversEveryMetric: a metric no panel and no alert shows is one nobody sees.
func TestDashboardCoversEveryMetric(t *testing.T) {
	used := map[string]bool{}
	for _, p := range loadDashboard(t).Panels {
		for _, tg := range p.Targets {
			expr, err := expandGrafana(tg.Expr)
			if err != nil {
				continue // reported by TestDashboardNamesKnownMetrics
			}
			for _, vs := range selectors(t, p.Title, expr) {
				used[strings.TrimSuffix(vs.Name, "_bucket")] = true
			}
		}
	}
	_, reg := newTest(t, busySource(2), testBuild)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var missing []string
	for _, f := range fams {
		if !used[f.GetName()] {
			missing = append(missing, f.GetName())
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no dashboard panel shows %v", missing)
	}
}

// unitDirectives reads the [Service] section of the systemd unit as key -> values.
func unitDirectives(t *testing.T) map[string][]string {
	t.Helper()
	path := filepath.Join(deployDir, "agentboxd.service")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open unit: %v", err)
	}
	defer f.Close()
	out, section := map[string][]string{}, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			out[k] = append(out[k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return out
}

// TestSystemdUnit pins the settings the daemon's code relies on.
func TestSystemdUnit(t *testing.T) {
	tests := []struct {
		name, key, want string
	}{
		{name: "readiness via sd_notify", key: "Type", want: "notify"},
		{name: "watchdog", key: "WatchdogSec", want: "30s"},
		{name: "cgroup subtree is ours", key: "Delegate", want: "yes"},
		{name: "SIGTERM to the daemon alone", key: "KillMode", want: "mixed"},
		{name: "restart after a crash or a watchdog kill", key: "Restart", want: "on-failure"},
		{name: "OOM killer prefers a task", key: "OOMScoreAdjust", want: "-500"},
		{name: "socket directory", key: "RuntimeDirectory", want: "agentbox"},
		{name: "state directory", key: "StateDirectory", want: "agentbox"},
		{name: "cache directory", key: "CacheDirectory", want: "agentbox"},
		{name: "command", key: "ExecStart", want: "/usr/local/bin/agentboxd --state-dir /var/lib/agentbox --socket /run/agentbox/agentboxd.sock"},
		{name: "many fds", key: "LimitNOFILE", want: "1048576"},
		{name: "stop waits past the grace period", key: "TimeoutStopSec", want: "90s"},
	}
	got := unitDirectives(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v := got[tt.key]; len(v) != 1 || v[0] != tt.want {
				t.Errorf("%s=%q, want exactly %q", tt.key, v, tt.want)
			}
		})
	}
}

// TestSystemdUnitVerifies runs systemd's own checker over the unit. It needs the binary the
// unit names to exist, so it checks a copy that runs /bin/true instead.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd): the unit's syntax is unchecked")
	}
	b, err := os.ReadFile(filepath.Join(deployDir, "agentboxd.service"))
	if err != nil {
		t.Fatalf("read unit: %v", err)
	}
	unit := filepath.Join(t.TempDir(), "agentboxd.service")
	b = bytes.ReplaceAll(b, []byte("/usr/local/bin/agentboxd"), []byte("/bin/true"))
	if err := os.WriteFile(unit, b, 0o644); err != nil {
		t.Fatalf("write unit copy: %v", err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	// verify exits 0 on unknown keys and only warns: any output is a finding.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
	}
}
