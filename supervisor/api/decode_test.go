package api

import (
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

func TestUnknownPath(t *testing.T) {
	batch := reflect.TypeFor[*task.BatchRequest]()
	submit := reflect.TypeFor[*task.SubmitRequest]()
	tests := []struct {
		name string
		body string
		typ  reflect.Type
		want string
	}{
		{name: "top level", body: `{"module":"x","nope":1}`, typ: submit, want: "nope"},
		{name: "nested", body: `{"limits":{"memory":"1Gi","memry":"2Gi"}}`, typ: submit, want: "limits.memry"},
		{name: "in a batch entry", body: `{"tasks":[{},{"retry":{"tries":2}}]}`, typ: batch, want: "tasks[1].retry.tries"},
		{name: "labels take any key", body: `{"labels":{"anything":"v"},"x":1}`, typ: submit, want: "x"},
		{name: "case-insensitive match is known", body: `{"MODULE":"x","y":1}`, typ: submit, want: "y"},
		{name: "nothing unknown", body: `{"module":"x"}`, typ: submit, want: ""},
		{name: "not JSON", body: `{`, typ: submit, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := unknownPath([]byte(tt.body), tt.typ)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("unknownPath = %q %v, want %q", got, ok, tt.want)
			}
		})
	}
}

// FuzzSubmitBody: whatever the body, decoding answers a request or an error naming a
// field; it never panics.
func FuzzSubmitBody(f *testing.F) {
	for _, s := range []string{`{"module":"x"}`, `{"tasks":[{"limits":{"a":1}}]}`, `{"stdin":"!!"}`, `[]`, `null`, `{"module":"x"}}`, "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, v := range []any{new(task.SubmitRequest), new(task.BatchRequest)} {
			r := httptest.NewRequest("POST", "/v1/tasks", strings.NewReader(body))
			err := decodeJSON(httptest.NewRecorder(), r, 1<<16, v)
			if err == nil {
				continue
			}
			var e *verdict.Error
			if !errors.As(err, &e) || e.Field == "" || e.Message == "" {
				t.Fatalf("body %q: error %v names no field", body, err)
			}
		}
	})
}
