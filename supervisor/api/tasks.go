package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"

	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// idRE bounds a task id before it reaches a KV key or a NATS subject: no dots, wildcards
// or slashes, whatever id scheme the service uses.
var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// submit accepts one task: 202 when it is new, 200 when its idempotency key returned the
// task made before (the client learns nothing was submitted twice).
func (s *Server) submit(w http.ResponseWriter, r *http.Request, tenant string) error {
	var req task.SubmitRequest
	if err := decodeJSON(w, r, s.opts.MaxBodyBytes, &req); err != nil {
		return err
	}
	t, created, err := s.b.Submit(r.Context(), tenant, req)
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if !created {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/v1/tasks/"+t.ID)
	writeJSON(w, status, wireTask(t))
	return nil
}

// batch submits each task on its own, in order; one refused entry refuses only itself.
func (s *Server) batch(w http.ResponseWriter, r *http.Request, tenant string) error {
	var req task.BatchRequest
	if err := decodeJSON(w, r, s.opts.MaxBodyBytes, &req); err != nil {
		return err
	}
	n := strconv.Itoa(len(req.Tasks))
	switch {
	case len(req.Tasks) == 0:
		return invalid("tasks", n, "tasks is empty: a batch has 1 to %d tasks", task.MaxBatch)
	case len(req.Tasks) > task.MaxBatch:
		return tooLarge("tasks", n, "%s tasks: a batch has at most %d", n, task.MaxBatch)
	}
	resp := task.BatchResponse{Results: make([]task.BatchResult, len(req.Tasks))}
	for i, sr := range req.Tasks {
		resp.Results[i] = s.batchEntry(r, tenant, i, sr)
		if e := resp.Results[i].Error; e != nil && e.Code == verdict.QueueFull {
			w.Header().Set("Retry-After", "1") // the client resubmits the refused entries
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) batchEntry(r *http.Request, tenant string, i int, sr task.SubmitRequest) task.BatchResult {
	t, _, err := s.b.Submit(r.Context(), tenant, sr)
	if err != nil {
		return task.BatchResult{Error: s.batchError(r, i, err)}
	}
	wt := wireTask(t)
	return task.BatchResult{Task: &wt}
}

// batchError is entry i's error with its field made a path from the batch's root
// ("tasks[3].limits.memory"), as a single submit's field is from its own; an error of no
// field (queue_full) names the entry.
func (s *Server) batchError(r *http.Request, i int, err error) *verdict.Error {
	ve := *s.asVerdictError(r, err)
	entry := fmt.Sprintf("tasks[%d]", i)
	if ve.Field == "" {
		ve.Field = entry
	} else {
		ve.Field = entry + "." + ve.Field
	}
	return &ve
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, tenant string) error {
	return s.byID(w, r, tenant, s.b.Get)
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request, tenant string) error {
	return s.byID(w, r, tenant, s.b.Cancel)
}

// verdict answers the final verdict with its output, the object `agentbox run --json`
// prints.
func (s *Server) verdict(w http.ResponseWriter, r *http.Request, tenant string) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	v, err := s.b.Verdict(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireVerdict(v))
	return nil
}

// byID answers the task that op returns for the path's {id}.
func (s *Server) byID(w http.ResponseWriter, r *http.Request, tenant string, op func(ctx context.Context, tenant, id string) (task.Task, error)) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	t, err := op(r.Context(), tenant, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireTask(t))
	return nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, tenant string) error {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		return err
	}
	p, err := s.b.List(r.Context(), tenant, f)
	if err != nil {
		return err
	}
	p.Tasks = wireTasks(p.Tasks)
	writeJSON(w, http.StatusOK, p)
	return nil
}

func idParam(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !idRE.MatchString(id) {
		return "", invalid("id", id, "task id %q: want the id that POST /v1/tasks returned", id)
	}
	return id, nil
}
