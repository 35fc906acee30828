package client

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/agentbox/agentbox/supervisor/task"
)

// PushModule uploads size bytes of wasm read from r (POST /v1/modules). The daemon
// validates and compiles it in a sandboxed child before it answers, so an invalid module
// is refused here, with the reason, rather than at its first task.
func (c *Client) PushModule(ctx context.Context, r io.Reader, size int64) (task.Module, error) {
	var m task.Module
	err := c.do(ctx, call{method: http.MethodPost, path: "/v1/modules", stream: r, size: size,
		contentType: "application/wasm"}, &m)
	return m, err
}

// ListModules lists the tenant's modules (GET /v1/modules).
func (c *Client) ListModules(ctx context.Context) ([]task.Module, error) {
	var l task.ModuleList
	err := c.do(ctx, call{method: http.MethodGet, path: "/v1/modules"}, &l)
	return l.Modules, err
}

// GetModule describes one module (GET /v1/modules/{digest}).
func (c *Client) GetModule(ctx context.Context, digest string) (task.Module, error) {
	var m task.Module
	err := c.do(ctx, call{method: http.MethodGet, path: modulePath(digest)}, &m)
	return m, err
}

// DeleteModule deletes one module (DELETE /v1/modules/{digest}).
func (c *Client) DeleteModule(ctx context.Context, digest string) error {
	return c.do(ctx, call{method: http.MethodDelete, path: modulePath(digest)}, nil)
}

func modulePath(digest string) string { return "/v1/modules/" + url.PathEscape(digest) }
