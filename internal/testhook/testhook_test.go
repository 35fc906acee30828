package testhook

import (
	"context"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoProductionImport: outside test files, only the sandbox package (which reads the
// hooks) imports this package. A CLI or daemon that imported it could take a wall down.
func TestNoProductionImport(t *testing.T) {
	const self = "github.com/agentbox/agentbox/internal/testhook"
	root := filepath.Join("..", "..")
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		dir := filepath.ToSlash(filepath.Dir(path))
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == self && !strings.HasSuffix(dir, "/sandbox") {
				t.Errorf("%s imports %s: only the sandbox package and tests may", path, self)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d Go files: is the walk rooted at the module?", checked)
	}
}

func TestFromWithout(t *testing.T) {
	if h := From(context.Background()); h.Payload != "" || h.Unsafe != (Unsafe{}) || h.OnStart != nil {
		t.Fatalf("a context without hooks carries %+v; want every wall up", h)
	}
	ctx := With(context.Background(), Hooks{Unsafe: Unsafe{NoSeccomp: true}})
	if !From(ctx).Unsafe.NoSeccomp {
		t.Fatal("hooks set with With are not returned by From")
	}
}
