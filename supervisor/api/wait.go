package api

import (
	"context"
	"net/http"
	"time"
)

// writeSlack is how long past a long-poll's own timeout its answer may take to write,
// and how long one write of an event stream may block on a client that stopped reading.
// Setting the deadline per response means the http.Server's WriteTimeout, which suits
// short requests, does not cut the long ones.
const writeSlack = 30 * time.Second

// wait long-polls one task: it answers when the task is final or when the timeout
// passes, with the task as it then is. The client tells the two apart by its state.
func (s *Server) wait(w http.ResponseWriter, r *http.Request, tenant string) error {
	id, err := idParam(r)
	if err != nil {
		return err
	}
	d, err := s.waitTimeout(r.URL.Query())
	if err != nil {
		return err
	}
	defer holdWriteDeadline(w, d+writeSlack)()
	ctx, cancel := context.WithTimeout(r.Context(), d)
	defer cancel()
	t, err := s.b.Wait(ctx, tenant, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wireTask(t))
	return nil
}

// holdWriteDeadline moves w's write deadline to d from now, and returns what clears it
// again once the handler is done: net/http resets the deadline per request only when the
// server has a WriteTimeout, so without one ours would outlive this request on a
// kept-alive connection and cut a later one. A writer that has no deadline (a test
// recorder) ignores both.
func holdWriteDeadline(w http.ResponseWriter, d time.Duration) (release func()) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(d))
	return func() { _ = rc.SetWriteDeadline(time.Time{}) }
}
