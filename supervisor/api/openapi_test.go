package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentbox/agentbox/outcome"
	"github.com/agentbox/agentbox/sandbox"
	"github.com/agentbox/agentbox/supervisor/task"
	"github.com/agentbox/agentbox/verdict"
)

// The subset of OpenAPI 3.0 that openapi.json uses, enough to hold the server to it.

type oaDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Security   []map[string][]string                 `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas         map[string]*oaSchema   `json:"schemas"`
		Parameters      map[string]*oaParam    `json:"parameters"`
		Responses       map[string]*oaResponse `json:"responses"`
		SecuritySchemes map[string]any         `json:"securitySchemes"`
	} `json:"components"`
}

type oaOp struct {
	OperationID string                 `json:"operationId"`
	Parameters  []*oaParam             `json:"parameters"`
	Responses   map[string]*oaResponse `json:"responses"`
	Security    *[]map[string][]string `json:"security"` // nil: the document's
	RequestBody *struct {
		Content map[string]oaMedia `json:"content"`
	} `json:"requestBody"`
	pathParams []*oaParam // the path item's
}

type oaParam struct {
	Ref      string    `json:"$ref"`
	Name     string    `json:"name"`
	In       string    `json:"in"`
	Required bool      `json:"required"`
	Schema   *oaSchema `json:"schema"`
}

type oaResponse struct {
	Ref     string             `json:"$ref"`
	Headers map[string]any     `json:"headers"`
	Content map[string]oaMedia `json:"content"`
}

type oaMedia struct {
	Schema *oaSchema `json:"schema"`
}

type oaSchema struct {
	Ref                  string               `json:"$ref"`
	Type                 string               `json:"type"`
	Format               string               `json:"format"`
	Enum                 []string             `json:"enum"`
	Pattern              string               `json:"pattern"`
	Properties           map[string]*oaSchema `json:"properties"`
	Required             []string             `json:"required"`
	Items                *oaSchema            `json:"items"`
	AdditionalProperties json.RawMessage      `json:"additionalProperties"`
	Minimum              *float64             `json:"minimum"`
	Maximum              *float64             `json:"maximum"`
	MaxLength            *int                 `json:"maxLength"`
}

func loadDoc(t *testing.T) *oaDoc {
	t.Helper()
	var d oaDoc
	if err := json.Unmarshal(OpenAPI(), &d); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return &d
}

// operation is method on path, with the path item's parameters.
func (d *oaDoc) operation(t *testing.T, method, path string) *oaOp {
	t.Helper()
	item, ok := d.Paths[path]
	if !ok {
		t.Fatalf("openapi.json has no path %s", path)
	}
	raw, ok := item[strings.ToLower(method)]
	if !ok {
		t.Fatalf("openapi.json has no %s on %s", method, path)
	}
	var op oaOp
	if err := json.Unmarshal(raw, &op); err != nil {
		t.Fatalf("openapi.json %s %s: %v", method, path, err)
	}
	if pp, ok := item["parameters"]; ok {
		if err := json.Unmarshal(pp, &op.pathParams); err != nil {
			t.Fatalf("openapi.json %s parameters: %v", path, err)
		}
	}
	return &op
}

func (d *oaDoc) response(op *oaOp, status int) *oaResponse {
	r := op.Responses[strconv.Itoa(status)]
	if r != nil && r.Ref != "" {
		r = d.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")]
	}
	return r
}

func (d *oaDoc) param(p *oaParam) *oaParam {
	if p.Ref != "" {
		return d.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
	}
	return p
}

func (d *oaDoc) schema(s *oaSchema) (*oaSchema, error) {
	for s != nil && s.Ref != "" {
		name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
		next, ok := d.Components.Schemas[name]
		if !ok {
			return nil, fmt.Errorf("$ref %s resolves to nothing", s.Ref)
		}
		s = next
	}
	return s, nil
}

// validate checks v (decoded JSON) against s. An object key the schema does not list is
// an error even without additionalProperties: false, so that a field the server sends
// cannot go undocumented.
func (d *oaDoc) validate(v any, s *oaSchema, at string) error {
	s, err := d.schema(s)
	if err != nil {
		return fmt.Errorf("%s: %v", at, err)
	}
	if s == nil {
		return fmt.Errorf("%s: no schema", at)
	}
	switch s.Type {
	case "object":
		return d.validateObject(v, s, at)
	case "array":
		a, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %T", at, v)
		}
		for i, e := range a {
			if err := d.validate(e, s.Items, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
		return nil
	case "string":
		return validateString(v, s, at)
	case "integer", "number":
		return validateNumber(v, s, at)
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: want a boolean, got %T", at, v)
		}
		return nil
	}
	return fmt.Errorf("%s: schema type %q is not one this test knows", at, s.Type)
}

func (d *oaDoc) validateObject(v any, s *oaSchema, at string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: want an object, got %T", at, v)
	}
	for _, r := range s.Required {
		if _, ok := m[r]; !ok {
			return fmt.Errorf("%s: required %q is missing", at, r)
		}
	}
	var extra *oaSchema
	if len(s.AdditionalProperties) > 0 && s.AdditionalProperties[0] == '{' {
		extra = new(oaSchema)
		json.Unmarshal(s.AdditionalProperties, extra)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		ps, ok := s.Properties[k]
		switch {
		case !ok && extra != nil:
			ps = extra
		case !ok && s.Properties == nil:
			continue // a free-form object
		case !ok:
			return fmt.Errorf("%s: %q is not in the document", at, k)
		}
		if err := d.validate(m[k], ps, at+"."+k); err != nil {
			return err
		}
	}
	return nil
}

func validateString(v any, s *oaSchema, at string) error {
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("%s: want a string, got %T", at, v)
	}
	if len(s.Enum) > 0 && !slices.Contains(s.Enum, str) {
		return fmt.Errorf("%s: %q is not one of %v", at, str, s.Enum)
	}
	if s.Pattern != "" && !regexp.MustCompile(s.Pattern).MatchString(str) {
		return fmt.Errorf("%s: %q does not match %s", at, str, s.Pattern)
	}
	switch s.Format {
	case "date-time":
		if _, err := time.Parse(time.RFC3339, str); err != nil {
			return fmt.Errorf("%s: %q is not a date-time: %v", at, str, err)
		}
	case "byte":
		if _, err := base64.StdEncoding.DecodeString(str); err != nil {
			return fmt.Errorf("%s: %q is not base64: %v", at, str, err)
		}
	}
	return nil
}

func validateNumber(v any, s *oaSchema, at string) error {
	n, ok := v.(float64)
	switch {
	case !ok:
		return fmt.Errorf("%s: want a number, got %T", at, v)
	case s.Type == "integer" && n != math.Trunc(n):
		return fmt.Errorf("%s: want an integer, got %v", at, n)
	case s.Minimum != nil && n < *s.Minimum:
		return fmt.Errorf("%s: %v is below the minimum %v", at, n, *s.Minimum)
	case s.Maximum != nil && n > *s.Maximum:
		return fmt.Errorf("%s: %v is above the maximum %v", at, n, *s.Maximum)
	}
	return nil
}

// routeKeys is the server's route table as "METHOD path".
func routeKeys(s *Server) []string {
	var out []string
	for _, rt := range s.routes() {
		out = append(out, rt.Method+" "+rt.Path)
	}
	slices.Sort(out)
	return out
}

func (d *oaDoc) operationKeys() []string {
	var out []string
	for path, item := range d.Paths {
		for m := range item {
			if m != "parameters" {
				out = append(out, strings.ToUpper(m)+" "+path)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestOpenAPIHasEveryRouteAndNoOther(t *testing.T) {
	doc, s := loadDoc(t), New(newFake(), Options{})
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q, want 3.0.3", doc.OpenAPI)
	}
	server, documented := routeKeys(s), doc.operationKeys()
	for _, k := range server {
		if !slices.Contains(documented, k) {
			t.Errorf("the server serves %s; openapi.json does not document it", k)
		}
	}
	for _, k := range documented {
		if !slices.Contains(server, k) {
			t.Errorf("openapi.json documents %s; the server does not serve it", k)
		}
	}
}

// TestOpenAPIOperationsMatchRoutes checks each route's details: its success status, its
// token requirement (and 401), its query and path parameters.
func TestOpenAPIOperationsMatchRoutes(t *testing.T) {
	doc, s := loadDoc(t), New(newFake(), Options{})
	for _, rt := range s.routes() {
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			op := doc.operation(t, rt.Method, rt.Path)
			if doc.response(op, rt.Status) == nil {
				t.Errorf("no response %d, the route's success", rt.Status)
			}
			open := op.Security != nil && len(*op.Security) == 0
			if open != rt.Open {
				t.Errorf("document says open=%v (security %v), the route open=%v", open, op.Security, rt.Open)
			}
			if !rt.Open && doc.response(op, 401) == nil {
				t.Errorf("needs a token but documents no 401")
			}
			if !rt.Open && op.OperationID != "openapi" && (doc.response(op, 400) == nil || doc.response(op, 500) == nil) {
				t.Errorf("a /v1 route documents no 400 or 500")
			}
			checkParams(t, doc, op, rt)
		})
	}
}

var wildcardRE = regexp.MustCompile(`\{([^}]+)\}`)

func checkParams(t *testing.T, doc *oaDoc, op *oaOp, rt route) {
	var query, path []string
	for _, p := range append(op.pathParams, op.Parameters...) {
		p = doc.param(p)
		if p == nil {
			t.Fatalf("a parameter $ref resolves to nothing")
		}
		switch p.In {
		case "query":
			query = append(query, p.Name)
		case "path":
			path = append(path, p.Name)
			if !p.Required {
				t.Errorf("path parameter %s is not required", p.Name)
			}
		}
	}
	var want []string
	for _, m := range wildcardRE.FindAllStringSubmatch(rt.Path, -1) {
		want = append(want, m[1])
	}
	slices.Sort(query)
	slices.Sort(path)
	slices.Sort(want)
	if rt.Query == nil {
		rt.Query = []string{}
	}
	if query == nil {
		query = []string{}
	}
	if !rt.Open && !slices.Equal(query, slices.Sorted(slices.Values(rt.Query))) {
		t.Errorf("query parameters: document %v, server %v", query, rt.Query)
	}
	if !slices.Equal(path, want) {
		t.Errorf("path parameters: document %v, pattern %v", path, want)
	}
}

// wireSchemas pairs every wire type with its schema.
var wireSchemas = []struct {
	name string
	typ  reflect.Type
}{
	{"SubmitRequest", reflect.TypeFor[task.SubmitRequest]()},
	{"Limits", reflect.TypeFor[task.Limits]()},
	{"RetryPolicy", reflect.TypeFor[task.RetryPolicy]()},
	{"BatchRequest", reflect.TypeFor[task.BatchRequest]()},
	{"BatchResult", reflect.TypeFor[task.BatchResult]()},
	{"BatchResponse", reflect.TypeFor[task.BatchResponse]()},
	{"Task", reflect.TypeFor[task.Task]()},
	{"Attempt", reflect.TypeFor[task.Attempt]()},
	{"Lease", reflect.TypeFor[task.Lease]()},
	{"Module", reflect.TypeFor[task.Module]()},
	{"ModuleList", reflect.TypeFor[task.ModuleList]()},
	{"Page", reflect.TypeFor[task.Page]()},
	{"Event", reflect.TypeFor[task.Event]()},
	{"Verdict", reflect.TypeFor[verdict.Verdict]()},
	{"Posture", reflect.TypeFor[verdict.Posture]()},
	{"Usage", reflect.TypeFor[verdict.Usage]()},
	{"AppliedLimits", reflect.TypeFor[verdict.Limits]()},
	{"RunLimits", reflect.TypeFor[sandbox.Limits]()},
	{"Error", reflect.TypeFor[verdict.Error]()},
	{"ErrorBody", reflect.TypeFor[verdict.ErrorBody]()},
}

// enumSchemas pairs every closed set with its schema.
var enumSchemas = []struct {
	name   string
	typ    reflect.Type
	values []string
}{
	{"Outcome", reflect.TypeFor[outcome.Outcome](), strs(outcome.All)},
	{"State", reflect.TypeFor[task.State](), strs(task.States)},
	{"Priority", reflect.TypeFor[task.Priority](), strs(task.Priorities)},
	{"Code", reflect.TypeFor[verdict.Code](), strs(verdict.Codes)},
}

func strs[S ~string](xs []S) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

func schemaNameOf(t reflect.Type) (string, bool) {
	for _, w := range wireSchemas {
		if w.typ == t {
			return w.name, true
		}
	}
	for _, e := range enumSchemas {
		if e.typ == t {
			return e.name, true
		}
	}
	return "", false
}

func TestOpenAPIEnumsAreTheClosedSets(t *testing.T) {
	doc := loadDoc(t)
	for _, e := range enumSchemas {
		t.Run(e.name, func(t *testing.T) {
			s := doc.Components.Schemas[e.name]
			if s == nil {
				t.Fatalf("no schema %s", e.name)
			}
			if !slices.Equal(s.Enum, e.values) {
				t.Errorf("enum %v, Go %v", s.Enum, e.values)
			}
		})
	}
}

// TestOpenAPISchemasMatchWireTypes walks each wire type's json tags: every field is a
// property of its schema with the right type, nothing else is, and required is exactly
// the fields without omitempty (those always present).
func TestOpenAPISchemasMatchWireTypes(t *testing.T) {
	doc := loadDoc(t)
	for _, w := range wireSchemas {
		t.Run(w.name, func(t *testing.T) {
			s := doc.Components.Schemas[w.name]
			if s == nil || s.Type != "object" {
				t.Fatalf("no object schema %s", w.name)
			}
			fields := jsonFields(w.typ)
			var required []string
			for _, f := range fields {
				if !f.omitempty {
					required = append(required, f.name)
				}
				ps, ok := s.Properties[f.name]
				if !ok {
					t.Errorf("field %s (%s) is not a property", f.name, f.typ)
					continue
				}
				if err := checkType(doc, ps, f.typ); err != nil {
					t.Errorf("property %s: %v", f.name, err)
				}
			}
			for name := range s.Properties {
				if !slices.ContainsFunc(fields, func(f goField) bool { return f.name == name }) {
					t.Errorf("property %s is no field of %s", name, w.typ)
				}
			}
			slices.Sort(required)
			got := slices.Sorted(slices.Values(s.Required))
			if !slices.Equal(got, required) {
				t.Errorf("required %v; the fields without omitempty are %v", got, required)
			}
		})
	}
}

type goField struct {
	name      string
	typ       reflect.Type
	omitempty bool
}

func jsonFields(t reflect.Type) []goField {
	var out []goField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, goField{name: name, typ: f.Type, omitempty: strings.Contains(opts, "omitempty")})
	}
	return out
}

// checkType checks that schema s describes Go type t as encoding/json writes it.
func checkType(doc *oaDoc, s *oaSchema, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if name, ok := schemaNameOf(t); ok {
		if s.Ref != "#/components/schemas/"+name {
			return fmt.Errorf("want $ref to %s, got %+v", name, s)
		}
		return nil
	}
	want, format := jsonType(t)
	switch {
	case s.Ref != "":
		return fmt.Errorf("%s has no schema of its own, but the document refers to %s", t, s.Ref)
	case s.Type != want:
		return fmt.Errorf("type %q, want %q for %s", s.Type, want, t)
	case format != "" && s.Format != format:
		return fmt.Errorf("format %q, want %q for %s", s.Format, format, t)
	case want == "array":
		return checkType(doc, s.Items, t.Elem())
	case want == "object":
		var extra oaSchema
		if err := json.Unmarshal(s.AdditionalProperties, &extra); err != nil {
			return fmt.Errorf("map %s: want additionalProperties with a schema: %v", t, err)
		}
		return checkType(doc, &extra, t.Elem())
	}
	return nil
}

func jsonType(t reflect.Type) (typ, format string) {
	switch {
	case t == reflect.TypeFor[time.Time]():
		return "string", "date-time"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return "string", "byte"
	}
	switch t.Kind() {
	case reflect.String:
		return "string", ""
	case reflect.Bool:
		return "boolean", ""
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer", ""
	case reflect.Float32, reflect.Float64:
		return "number", ""
	case reflect.Slice, reflect.Array:
		return "array", ""
	case reflect.Map:
		return "object", ""
	}
	return "?" + t.String(), ""
}

// TestOpenAPIRefsResolve finds every $ref in the document and resolves it.
func TestOpenAPIRefsResolve(t *testing.T) {
	var root any
	if err := json.Unmarshal(OpenAPI(), &root); err != nil {
		t.Fatal(err)
	}
	walkRefs(root, func(ref string) {
		parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		node := root
		for _, p := range parts {
			m, ok := node.(map[string]any)
			if !ok || m[p] == nil {
				t.Errorf("$ref %s resolves to nothing", ref)
				return
			}
			node = m[p]
		}
	})
}

func walkRefs(v any, visit func(string)) {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			visit(ref)
		}
		for _, e := range x {
			walkRefs(e, visit)
		}
	case []any:
		for _, e := range x {
			walkRefs(e, visit)
		}
	}
}

// TestValidatorRefuses: the schema check above would catch a drifting server.
func TestValidatorRefuses(t *testing.T) {
	doc := loadDoc(t)
	module := &oaSchema{Ref: "#/components/schemas/Module"}
	ok := `{"digest":"` + strings.Repeat("a", 64) + `","tenant":"t","bytes":1,"created_at":"2025-01-02T15:04:05Z"}`
	tests := []struct {
		name, body, want string
	}{
		{name: "valid", body: ok},
		{name: "missing required", body: `{"digest":"` + strings.Repeat("a", 64) + `","tenant":"t","bytes":1}`, want: `required "created_at"`},
		{name: "undocumented key", body: strings.Replace(ok, `"bytes":1`, `"bytes":1,"size":1`, 1), want: `"size" is not in the document`},
		{name: "wrong type", body: strings.Replace(ok, `"bytes":1`, `"bytes":"1"`, 1), want: "want a number"},
		{name: "not an integer", body: strings.Replace(ok, `"bytes":1`, `"bytes":1.5`, 1), want: "want an integer"},
		{name: "below the minimum", body: strings.Replace(ok, `"bytes":1`, `"bytes":-1`, 1), want: "below the minimum"},
		{name: "pattern", body: strings.Replace(ok, strings.Repeat("a", 64), "xyz", 1), want: "does not match"},
		{name: "date-time", body: strings.Replace(ok, "2025-01-02T15:04:05Z", "yesterday", 1), want: "not a date-time"},
		{name: "null", body: `null`, want: "want an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tt.body), &v); err != nil {
				t.Fatal(err)
			}
			err := doc.validate(v, module, "$")
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("validate = %v, want %q", err, tt.want)
			}
		})
	}
	var v any
	json.Unmarshal([]byte(`{"state":"lost"}`), &v)
	if err := doc.validate(v, &oaSchema{Type: "object", Properties: map[string]*oaSchema{"state": {Ref: "#/components/schemas/State"}}}, "$"); err == nil || !strings.Contains(err.Error(), "not one of") {
		t.Errorf("enum: validate = %v", err)
	}
}

// TestDocsCopyIsThisDocument: docs/openapi.json (a link here) is the served document.
func TestDocsCopyIsThisDocument(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	if !bytes.Equal(b, OpenAPI()) {
		t.Error("docs/openapi.json differs from supervisor/api/openapi.json: make it a link again")
	}
}
