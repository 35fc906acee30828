package task

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/verdict"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

const lease = 10 * time.Second

// queued is a fresh record under the default retry policy (3 attempts, sandbox_error).
func queued() *Task {
	return &Task{ID: "t1", Tenant: "a", State: Queued, Priority: Normal, CreatedAt: t0, UpdatedAt: t0,
		Retry:    RetryPolicy{MaxAttempts: 3, RetryOn: []outcome.Outcome{outcome.SandboxError}, BackoffBase: "1s", BackoffMax: "1m0s"},
		Attempts: []Attempt{}}
}

// running is a record whose attempt n (attempts 1..n-1 ended with sandbox_error) runs
// under holder's lease until t0+lease.
func running(n int, holder string) *Task {
	t := queued()
	for i := 1; i < n; i++ {
		if err := Start(t, "host", holder, t0, lease); err != nil {
			panic(err)
		}
		if _, err := EndAttempt(t, i, verdictOf(outcome.SandboxError), t0, true, t0); err != nil {
			panic(err)
		}
	}
	if err := Start(t, "host", holder, t0, lease); err != nil {
		panic(err)
	}
	return t
}

func done() *Task {
	t := running(1, "h/1")
	if _, err := EndAttempt(t, 1, verdictOf(outcome.OK), t0, false, t0); err != nil {
		panic(err)
	}
	return t
}

func verdictOf(o outcome.Outcome) verdict.Verdict {
	return verdict.Verdict{Outcome: o, Message: "the attempt ended " + string(o), Warnings: []string{}}
}

// clone deep-copies t through its wire form, as the store does.
func clone(t *Task) *Task {
	b, err := json.Marshal(t)
	if err != nil {
		panic(err)
	}
	var c Task
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return &c
}

// refused checks that err is an *ErrTransition and that the move left t as it was.
func refused(t *testing.T, err error, before, after *Task) {
	t.Helper()
	var te *ErrTransition
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want an *ErrTransition", err)
	}
	if te.From != before.State || !strings.Contains(te.Error(), string(before.State)) {
		t.Errorf("refusal %q names state %q, want %q", te.Error(), te.From, before.State)
	}
	if !reflect.DeepEqual(clone(before), clone(after)) {
		t.Errorf("a refused move changed the record:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestStart(t *testing.T) {
	tests := []struct {
		name string
		rec  func() *Task
		ok   bool
		n    int // the attempt it starts
	}{
		{name: "first attempt", rec: queued, ok: true, n: 1},
		{name: "a retry in backoff", rec: func() *Task {
			t := running(1, "h/1")
			EndAttempt(t, 1, verdictOf(outcome.SandboxError), t0, true, t0.Add(time.Minute))
			return t
		}, ok: true, n: 2},
		{name: "running", rec: func() *Task { return running(1, "h/1") }},
		{name: "done", rec: done},
		{name: "cancelled while queued", rec: func() *Task { t := queued(); Cancel(t, t0); return t }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.rec()
			before := clone(rec)
			now := t0.Add(time.Hour)
			err := Start(rec, "host-b", "host-b/2", now, lease)
			if !tt.ok {
				refused(t, err, before, rec)
				return
			}
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			cur := rec.Current()
			switch {
			case rec.State != Running:
				t.Errorf("state %s, want running", rec.State)
			case cur.N != tt.n || len(rec.Attempts) != tt.n:
				t.Errorf("attempt %d of %d, want %d", cur.N, len(rec.Attempts), tt.n)
			case cur.Host != "host-b" || !cur.StartedAt.Equal(now) || cur.Verdict != nil || cur.EndedAt != nil:
				t.Errorf("attempt %+v: want host-b, started now, no verdict", cur)
			case rec.Lease == nil || rec.Lease.Host != "host-b/2" || !rec.Lease.Until.Equal(now.Add(lease)):
				t.Errorf("lease %+v, want host-b/2 until now+%s", rec.Lease, lease)
			case rec.NotBefore != nil:
				t.Errorf("not_before %v kept after the start", rec.NotBefore)
			case rec.Verdict != nil:
				t.Errorf("a running task has a final verdict %+v", rec.Verdict)
			}
		})
	}
}

func TestRenew(t *testing.T) {
	tests := []struct {
		name   string
		rec    func() *Task
		holder string
		n      int
		ok     bool
	}{
		{name: "the holder of the current attempt", rec: func() *Task { return running(2, "h/1") }, holder: "h/1", n: 2, ok: true},
		{name: "cancel requested still renews", rec: func() *Task { t := running(1, "h/1"); Cancel(t, t0); return t }, holder: "h/1", n: 1, ok: true},
		{name: "another holder", rec: func() *Task { return running(1, "h/1") }, holder: "h/2", n: 1},
		{name: "a stale attempt number", rec: func() *Task { return running(2, "h/1") }, holder: "h/1", n: 1},
		{name: "queued", rec: queued, holder: "h/1", n: 1},
		{name: "done", rec: done, holder: "h/1", n: 1},
		{name: "taken over: queued again", rec: func() *Task {
			t := running(1, "h/1")
			LoseLease(t, t0.Add(time.Hour), false)
			return t
		}, holder: "h/1", n: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.rec()
			before := clone(rec)
			now := t0.Add(3 * time.Second)
			err := Renew(rec, tt.holder, tt.n, now, lease)
			if !tt.ok {
				refused(t, err, before, rec)
				return
			}
			if err != nil {
				t.Fatalf("Renew: %v", err)
			}
			if !rec.Lease.Until.Equal(now.Add(lease)) || rec.State != Running || rec.Lease.Host != tt.holder {
				t.Errorf("after renew: state %s lease %+v, want running, %s until now+%s", rec.State, rec.Lease, tt.holder, lease)
			}
		})
	}
}

func TestEndAttempt(t *testing.T) {
	notBefore := t0.Add(5 * time.Second)
	tests := []struct {
		name      string
		rec       func() *Task
		n         int
		retry     bool
		ok        bool
		wantFinal bool
	}{
		{name: "no retry", rec: func() *Task { return running(1, "h/1") }, n: 1, ok: true, wantFinal: true},
		{name: "retry with attempts left", rec: func() *Task { return running(1, "h/1") }, n: 1, retry: true, ok: true},
		{name: "retry on the second of three", rec: func() *Task { return running(2, "h/1") }, n: 2, retry: true, ok: true},
		{name: "retry with no attempt left", rec: func() *Task { return running(3, "h/1") }, n: 3, retry: true, ok: true, wantFinal: true},
		{name: "retry of a cancelled task", rec: func() *Task { t := running(1, "h/1"); Cancel(t, t0); return t }, n: 1, retry: true, ok: true, wantFinal: true},
		{name: "max attempts 1", rec: func() *Task { t := running(1, "h/1"); t.Retry.MaxAttempts = 1; return t }, n: 1, retry: true, ok: true, wantFinal: true},
		{name: "a stale attempt number", rec: func() *Task { return running(2, "h/1") }, n: 1},
		{name: "a future attempt number", rec: func() *Task { return running(1, "h/1") }, n: 2},
		{name: "queued", rec: queued, n: 1},
		{name: "queued after a takeover", rec: func() *Task {
			t := running(1, "h/1")
			LoseLease(t, t0.Add(time.Hour), false)
			return t
		}, n: 1},
		{name: "done", rec: done, n: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.rec()
			before := clone(rec)
			now := t0.Add(2 * time.Second)
			v := verdictOf(outcome.SandboxError)
			final, err := EndAttempt(rec, tt.n, v, now, tt.retry, notBefore)
			if !tt.ok {
				refused(t, err, before, rec)
				return
			}
			if err != nil {
				t.Fatalf("EndAttempt: %v", err)
			}
			cur := rec.Current()
			if final != tt.wantFinal || rec.Final() != tt.wantFinal {
				t.Fatalf("final %t, Final() %t, want %t", final, rec.Final(), tt.wantFinal)
			}
			if cur.N != tt.n || cur.Verdict == nil || !reflect.DeepEqual(*cur.Verdict, v) || cur.EndedAt == nil || !cur.EndedAt.Equal(now) {
				t.Errorf("attempt %+v: want attempt %d ended now with its verdict kept", cur, tt.n)
			}
			if rec.Lease != nil {
				t.Errorf("lease %+v kept after the attempt ended", rec.Lease)
			}
			if tt.wantFinal {
				if rec.State != Done || rec.Verdict == nil || !reflect.DeepEqual(*rec.Verdict, v) || rec.Outcome() != v.Outcome {
					t.Errorf("state %s verdict %+v, want done with the attempt's verdict", rec.State, rec.Verdict)
				}
				return
			}
			if rec.State != Queued || rec.Verdict != nil || rec.NotBefore == nil || !rec.NotBefore.Equal(notBefore) || rec.Outcome() != "" {
				t.Errorf("state %s verdict %+v not_before %v, want queued until %v with no verdict", rec.State, rec.Verdict, rec.NotBefore, notBefore)
			}
		})
	}
}

func TestInterrupt(t *testing.T) {
	tests := []struct {
		name      string
		rec       func() *Task
		n         int
		ok        bool
		wantFinal bool
	}{
		{name: "attempts left", rec: func() *Task { return running(1, "h/1") }, n: 1, ok: true},
		{name: "on the last attempt: queued all the same", rec: func() *Task { return running(3, "h/1") }, n: 3, ok: true},
		{name: "cancel requested", rec: func() *Task { t := running(1, "h/1"); Cancel(t, t0); return t }, n: 1, ok: true, wantFinal: true},
		{name: "a stale attempt number", rec: func() *Task { return running(2, "h/1") }, n: 1},
		{name: "queued", rec: queued, n: 1},
		{name: "done", rec: done, n: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.rec()
			prev := clone(rec)
			now := t0.Add(time.Minute)
			v := verdictOf(outcome.SandboxError)
			final, err := Interrupt(rec, tt.n, v, now)
			if !tt.ok {
				refused(t, err, prev, rec)
				return
			}
			if err != nil {
				t.Fatalf("Interrupt: %v", err)
			}
			cur := rec.Current()
			if final != tt.wantFinal || rec.Final() != tt.wantFinal || cur.Verdict == nil || cur.EndedAt == nil || rec.Lease != nil {
				t.Fatalf("final %t state %s attempt %+v lease %+v", final, rec.State, cur, rec.Lease)
			}
			if !tt.wantFinal && (rec.State != Queued || rec.NotBefore == nil || !rec.NotBefore.Equal(now) || !reflect.DeepEqual(rec.Retry, prev.Retry)) {
				t.Errorf("state %s not_before %v retry %+v: want queued, due now, policy unchanged", rec.State, rec.NotBefore, rec.Retry)
			}
		})
	}
}

func TestLoseLease(t *testing.T) {
	before := t0.Add(time.Second) // inside the lease
	after := t0.Add(2 * lease)    // past it
	noSandboxRetry := func(t *Task) { t.Retry.RetryOn = []outcome.Outcome{outcome.Trap} }
	tests := []struct {
		name      string
		rec       func() *Task
		now       time.Time
		force     bool
		ok        bool
		wantFinal bool
		want      outcome.Outcome // the attempt's verdict; sandbox_error when empty
	}{
		{name: "inside the lease", rec: func() *Task { return running(1, "h/1") }, now: before},
		{name: "inside the lease, forced", rec: func() *Task { return running(1, "h/1") }, now: before, force: true, ok: true},
		{name: "past the lease", rec: func() *Task { return running(1, "h/1") }, now: after, ok: true},
		{name: "at the lease's end", rec: func() *Task { return running(1, "h/1") }, now: t0.Add(lease), ok: true},
		{name: "past the lease, last attempt", rec: func() *Task { return running(3, "h/1") }, now: after, ok: true, wantFinal: true},
		{name: "policy without sandbox_error", rec: func() *Task { t := running(1, "h/1"); noSandboxRetry(t); return t }, now: after, ok: true, wantFinal: true},
		{name: "cancel requested", rec: func() *Task { t := running(1, "h/1"); Cancel(t, t0); return t }, now: after, ok: true, wantFinal: true, want: outcome.Cancelled},
		{name: "queued", rec: queued, now: after},
		{name: "queued, forced", rec: queued, now: after, force: true},
		{name: "done, forced", rec: done, now: after, force: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.rec()
			prev := clone(rec)
			final, err := LoseLease(rec, tt.now, tt.force)
			if !tt.ok {
				refused(t, err, prev, rec)
				return
			}
			if err != nil {
				t.Fatalf("LoseLease: %v", err)
			}
			n := len(prev.Attempts)
			cur := rec.Current()
			if final != tt.wantFinal || len(rec.Attempts) != n || cur.N != n {
				t.Fatalf("final %t with %d attempts, want final %t and the %d attempts kept", final, len(rec.Attempts), tt.wantFinal, n)
			}
			v := cur.Verdict
			want := tt.want
			if want == "" {
				want = outcome.SandboxError
			}
			if v == nil || v.Outcome != want || !strings.Contains(v.Message, "h/1") || v.Warnings == nil {
				t.Fatalf("attempt verdict %+v: want %s naming the lost holder h/1", v, want)
			}
			if want == outcome.SandboxError && !strings.Contains(v.Message, "lost its holder") {
				t.Fatalf("attempt verdict %q does not say it lost its holder", v.Message)
			}
			if tt.wantFinal != (rec.State == Done) || rec.Lease != nil {
				t.Errorf("state %s lease %+v", rec.State, rec.Lease)
			}
			if !tt.wantFinal && (rec.NotBefore == nil || !rec.NotBefore.Equal(tt.now)) {
				t.Errorf("not_before %v, want the takeover's time %v: the next attempt is due at once", rec.NotBefore, tt.now)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name      string
		rec       func() *Task
		ok        bool
		wantFinal bool
		wantState State
	}{
		{name: "queued", rec: queued, ok: true, wantFinal: true, wantState: Done},
		{name: "a retry in backoff", rec: func() *Task {
			t := running(1, "h/1")
			EndAttempt(t, 1, verdictOf(outcome.SandboxError), t0, true, t0.Add(time.Hour))
			return t
		}, ok: true, wantFinal: true, wantState: Done},
		{name: "running", rec: func() *Task { return running(1, "h/1") }, ok: true, wantState: Running},
		{name: "running, cancelled twice", rec: func() *Task { t := running(1, "h/1"); Cancel(t, t0); return t }, ok: true, wantState: Running},
		{name: "done", rec: done},
		{name: "cancelled already", rec: func() *Task { t := queued(); Cancel(t, t0); return t }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := tt.rec()
			prev := clone(rec)
			now := t0.Add(time.Minute)
			final, err := Cancel(rec, now)
			if !tt.ok {
				refused(t, err, prev, rec)
				return
			}
			if err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			if final != tt.wantFinal || rec.State != tt.wantState {
				t.Fatalf("final %t state %s, want %t %s", final, rec.State, tt.wantFinal, tt.wantState)
			}
			if len(rec.Attempts) != len(prev.Attempts) {
				t.Errorf("cancel changed the attempts: %d, was %d", len(rec.Attempts), len(prev.Attempts))
			}
			if !tt.wantFinal {
				if !rec.CancelRequested || rec.Verdict != nil || rec.Lease == nil {
					t.Errorf("running: cancel_requested %t verdict %+v lease %+v: want marked, no verdict, lease kept for its holder", rec.CancelRequested, rec.Verdict, rec.Lease)
				}
				return
			}
			if rec.Outcome() != outcome.Cancelled || rec.Verdict.Warnings == nil || rec.NotBefore != nil {
				t.Errorf("verdict %+v not_before %v: want cancelled, warnings [], no backoff", rec.Verdict, rec.NotBefore)
			}
		})
	}
}

// TestDoneIsFinal: once a record is done, every move is refused and leaves it as it was,
// whatever the arguments: the verdict is written once and never changes.
func TestDoneIsFinal(t *testing.T) {
	finals := map[string]func() *Task{
		"ok":              done,
		"cancelled":       func() *Task { t := queued(); Cancel(t, t0); return t },
		"lost its holder": func() *Task { t := running(3, "h/1"); LoseLease(t, t0.Add(time.Hour), false); return t },
	}
	moves := map[string]func(*Task) error{
		"start": func(t *Task) error { return Start(t, "h", "h/9", t0, lease) },
		"renew": func(t *Task) error { return Renew(t, "h/1", len(t.Attempts), t0, lease) },
		"end attempt": func(t *Task) error {
			_, err := EndAttempt(t, len(t.Attempts), verdictOf(outcome.OK), t0, true, t0)
			return err
		},
		"lose lease": func(t *Task) error { _, err := LoseLease(t, t0.Add(time.Hour), true); return err },
		"cancel":     func(t *Task) error { _, err := Cancel(t, t0); return err },
		"interrupt": func(t *Task) error {
			_, err := Interrupt(t, len(t.Attempts), verdictOf(outcome.SandboxError), t0)
			return err
		},
	}
	for fname, final := range finals {
		for mname, move := range moves {
			t.Run(fname+"/"+mname, func(t *testing.T) {
				rec := final()
				if !rec.Final() {
					t.Fatalf("setup: state %s", rec.State)
				}
				prev := clone(rec)
				refused(t, move(rec), prev, rec)
			})
		}
	}
}

func TestRetriesOn(t *testing.T) {
	rec := queued()
	rec.Retry.RetryOn = []outcome.Outcome{outcome.SandboxError, outcome.Trap}
	for _, o := range outcome.All {
		want := o == outcome.SandboxError || o == outcome.Trap
		if got := rec.RetriesOn(o); got != want {
			t.Errorf("RetriesOn(%s) = %t, want %t", o, got, want)
		}
	}
}
