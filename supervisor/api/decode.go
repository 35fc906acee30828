package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/agentbox/agentbox/internal/units"
)

// decodeJSON reads r's body, at most limit bytes, as exactly one JSON value into v. It
// refuses fields v does not have (a misspelt limit must not silently fall back to its
// default), trailing data, and a body of another media type, each with a *verdict.Error
// that names the field or the byte offset.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if err := checkContentType(r, "application/json"); err != nil {
		return err
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, dec.InputOffset(), body, reflect.TypeOf(v))
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		off := strconv.FormatInt(dec.InputOffset(), 10)
		return invalid("body", off, "trailing data after the JSON value, at byte offset %s: send one value", off)
	}
	return nil
}

// readBody reads all of r's body, refusing it past limit bytes, before anything is
// decoded: an error can then point into the whole body (unknownPath).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, bodyTooLarge(limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		return nil, bodyTooLarge(limit)
	case err != nil:
		return nil, fmt.Errorf("read the request body: %w", err)
	}
	return body, nil
}

// checkContentType refuses a body declared as anything but want; an absent Content-Type
// is taken as want.
func checkContentType(r *http.Request, want ...string) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	for _, w := range want {
		if err == nil && mt == w {
			return nil
		}
	}
	return invalid("Content-Type", ct, "Content-Type %q: want %s", ct, strings.Join(want, " or "))
}

// decodeError turns a decoder's error into the client's: which field, or where in the
// body. body and t (the type decoded into) let it name an unknown field by its full path.
func decodeError(err error, offset int64, body []byte, t reflect.Type) error {
	off := strconv.FormatInt(offset, 10)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var b64 base64.CorruptInputError
	switch {
	case errors.Is(err, io.EOF):
		return invalid("body", "", "the body is empty: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body", off, "malformed JSON: the body ends early, at byte offset %s", off)
	case errors.As(err, &syntax):
		o := strconv.FormatInt(syntax.Offset, 10)
		return invalid("body", o, "malformed JSON at byte offset %s: %v", o, syntax)
	case errors.As(err, &typ) && typ.Field == "":
		return invalid("body", typ.Value, "the body is a JSON %s: want an object", typ.Value)
	case errors.As(err, &typ):
		return invalid(typ.Field, typ.Value, "field %s: got a JSON %s, want %s", typ.Field, typ.Value, jsonKind(typ))
	case errors.As(err, &b64):
		return invalid("stdin", off, "stdin is not valid base64 (%v): it carries bytes, base64-encoded", b64)
	}
	if name, ok := unknownField(err); ok {
		if path, found := unknownPath(body, t); found {
			name = path
		}
		field := name
		if field == "" || strings.HasSuffix(field, ".") {
			field = "body" // an empty key: no path names it
		}
		return invalid(field, name, "unknown field %q (/v1/openapi.json lists the fields there are)", name)
	}
	return invalid("body", off, "cannot decode the body: %v", err)
}

// unknownField is the name in encoding/json's "json: unknown field" error, which has no
// type of its own.
func unknownField(err error) (string, bool) {
	rest, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return "", false
	}
	name, qerr := strconv.Unquote(rest)
	if qerr != nil {
		name = rest
	}
	return name, true
}

// jsonKind names the JSON type a Go field wants, in the words of the document.
func jsonKind(e *json.UnmarshalTypeError) string {
	if e.Type == nil {
		return "another type"
	}
	switch k := e.Type.Kind().String(); {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "an integer"
	case strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "a boolean"
	case k == "slice", k == "array":
		return "an array"
	}
	return "an object"
}

func bodyTooLarge(limit int64) error {
	l := units.FormatSize(uint64(limit))
	return tooLarge("body", strconv.FormatInt(limit, 10), "the body is larger than the %s limit", l)
}
