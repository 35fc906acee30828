package api

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// encoding/json names an unknown field by its key alone ("memry"); in a batch of a
// thousand tasks that does not say which. unknownPath walks the body beside the type it
// was decoded into and names the first unknown key by its full path,
// "tasks[3].limits.memry", the form Field takes everywhere else.

// unknownPath is the path of the first key in body (sorted order) that t has no field
// for, or false.
func unknownPath(body []byte, t reflect.Type) (string, bool) {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return "", false
	}
	return findUnknown(v, t, "")
}

func findUnknown(v any, t reflect.Type, path string) (string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch x := v.(type) {
	case map[string]any:
		return findUnknownKey(x, t, path)
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return "", false
		}
		for i, e := range x {
			if p, ok := findUnknown(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); ok {
				return p, true
			}
		}
	}
	return "", false
}

func findUnknownKey(m map[string]any, t reflect.Type, path string) (string, bool) {
	if t.Kind() != reflect.Struct && t.Kind() != reflect.Map {
		return "", false
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		p := joinPath(path, k)
		ft, ok := memberType(t, k)
		if !ok {
			return p, true
		}
		if q, found := findUnknown(m[k], ft, p); found {
			return q, true
		}
	}
	return "", false
}

// memberType is the type key decodes into inside t, a struct or a map.
func memberType(t reflect.Type, key string) (reflect.Type, bool) {
	if t.Kind() == reflect.Map {
		return t.Elem(), true
	}
	return jsonField(t, key)
}

// jsonField is the type of t's field that key decodes into: an exact name first, then
// any case, as encoding/json matches.
func jsonField(t reflect.Type, key string) (reflect.Type, bool) {
	var fold reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if name == key {
			return f.Type, true
		}
		if fold == nil && strings.EqualFold(name, key) {
			fold = f.Type
		}
	}
	return fold, fold != nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
