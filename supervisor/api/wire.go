package api

import (
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// The document promises arrays where Go may hold nil slices (a fresh task's attempts, a
// verdict without warnings); JSON would print null there, and every client would need a
// null check. These fill them in on the way out, whatever the backend built.

func wireTask(t task.Task) task.Task {
	t.Attempts = wireAttempts(t.Attempts)
	t.Verdict = wireVerdictPtr(t.Verdict)
	return t
}

// wireAttempts is a copy, so the backend's record is never written through.
func wireAttempts(as []task.Attempt) []task.Attempt {
	out := make([]task.Attempt, len(as))
	for i, a := range as {
		a.Verdict = wireVerdictPtr(a.Verdict)
		out[i] = a
	}
	return out
}

func wireVerdictPtr(v *verdict.Verdict) *verdict.Verdict {
	if v == nil || v.Warnings != nil {
		return v
	}
	w := wireVerdict(*v)
	return &w
}

func wireVerdict(v verdict.Verdict) verdict.Verdict {
	if v.Warnings == nil {
		v.Warnings = []string{}
	}
	return v
}

func wireTasks(ts []task.Task) []task.Task {
	out := make([]task.Task, len(ts))
	for i, t := range ts {
		out[i] = wireTask(t)
	}
	return out
}
