package api

import (
	"bytes"
	_ "embed"
)

// openapiJSON is the OpenAPI 3.0 document of this API (docs/openapi.json links here).
// It is written by hand, for people, and openapi_test.go holds the server to it: the
// routes, their query parameters, the status codes and the wire types' fields.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI is the API's OpenAPI 3.0 document (a copy: callers may not change ours).
func OpenAPI() []byte { return bytes.Clone(openapiJSON) }
