package supervisor

import (
	"container/list"
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

func jetstreamOf(nc *nats.Conn) (jetstream.JetStream, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, nil
}

// replicasOf is 3 on a cluster of three or more servers, else 1.
func replicasOf(ctx context.Context, js jetstream.JetStream) int {
	info, err := js.AccountInfo(ctx)
	if err != nil || info.Domain != "" {
		return 1
	}
	if nc := js.Conn(); nc != nil && len(nc.DiscoveredServers())+1 >= 3 {
		return 3
	}
	return 1
}

// moduleCache keeps recently run modules' bytes, bounded in bytes, least recently used
// out first: a hot module is read from the object store once, not once per task.
type moduleCache struct {
	mu    sync.Mutex
	max   int
	size  int
	order *list.List // of *cached, front = most recent
	byKey map[string]*list.Element
}

type cached struct {
	key  string
	wasm []byte
}

func newModuleCache(max int) *moduleCache {
	return &moduleCache{max: max, order: list.New(), byKey: map[string]*list.Element{}}
}

func (c *moduleCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*cached).wasm, true
	}
	return nil, false
}

func (c *moduleCache) put(key string, wasm []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[key]; ok || len(wasm) > c.max {
		return
	}
	c.byKey[key] = c.order.PushFront(&cached{key, wasm})
	c.size += len(wasm)
	for c.size > c.max {
		e := c.order.Back()
		v := e.Value.(*cached)
		c.order.Remove(e)
		delete(c.byKey, v.key)
		c.size -= len(v.wasm)
	}
}

func (c *moduleCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[key]; ok {
		c.order.Remove(e)
		delete(c.byKey, key)
		c.size -= len(e.Value.(*cached).wasm)
	}
}
