package sandbox

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestOtherStubsInStep keeps sandbox_other.go, the stub that lets the package build off
// Linux (GOOS=darwin go vet ./...), in step with the _linux.go files: every exported
// function, method and type declared in a _linux.go file must be declared there with the
// same signature or type, and the stub must declare nothing the Linux build lacks. A
// change to the Linux API then fails here, on Linux, instead of on a laptop later.
func TestOtherStubsInStep(t *testing.T) {
	if _, err := os.Stat("sandbox_other.go"); errors.Is(err, fs.ErrNotExist) {
		// The cgroup-v2 VM runs the compiled test binary without the package's sources;
		// the check is about source text, the same on every host, and runs in make test-unit.
		t.Skip("the package's Go sources are not here (a test binary copied alone)")
	}
	linuxFiles, err := filepath.Glob("*_linux.go")
	if err != nil {
		t.Fatal(err)
	}
	linux := exportedDecls(t, linuxFiles...)
	other := exportedDecls(t, "sandbox_other.go")
	var names []string
	for name := range linux {
		names = append(names, name)
	}
	for name := range other {
		if _, ok := linux[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		l, inLinux := linux[name]
		o, inOther := other[name]
		switch {
		case !inOther:
			t.Errorf("sandbox_other.go lacks %s, declared on Linux as\n\t%s", name, l)
		case !inLinux:
			t.Errorf("sandbox_other.go declares %s, which no _linux.go file does:\n\t%s", name, o)
		case l != o:
			t.Errorf("%s differs:\n\tlinux: %s\n\tother: %s", name, l, o)
		}
	}
}

// exportedDecls maps each exported top-level func, method ("Recv.Name") and type of the
// files (test files excluded) to its declaration, printed without comments or bodies.
func exportedDecls(t *testing.T, files ...string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() || (d.Recv != nil && !exportedRecv(d.Recv)) {
					continue
				}
				name := d.Name.Name
				if d.Recv != nil {
					name = recvName(d.Recv) + "." + name
					stripNames(d.Recv)
				}
				stripNames(d.Type.Params)
				out[name] = "func " + name + render(t, fset, d.Type)[len("func"):]
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.IsExported() {
						stripState(ts.Type)
						out[ts.Name.Name] = "type " + ts.Name.Name + " " + render(t, fset, ts.Type)
					}
				}
			}
		}
	}
	return out
}

func exportedRecv(r *ast.FieldList) bool { return ast.IsExported(recvName(r)) }

func recvName(r *ast.FieldList) string {
	e := r.List[0].Type
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// stripNames drops parameter names: a stub may leave them out.
func stripNames(fl *ast.FieldList) {
	if fl == nil {
		return
	}
	for _, f := range fl.List {
		f.Names = nil
	}
}

// stripComments drops the comments and the unexported fields of a struct: the stub has
// none of the Linux state.
func stripState(e ast.Expr) {
	st, ok := e.(*ast.StructType)
	if !ok {
		return
	}
	var kept []*ast.Field
	for _, f := range st.Fields.List {
		f.Doc, f.Comment = nil, nil
		if len(f.Names) == 0 || f.Names[0].IsExported() {
			kept = append(kept, f)
		}
	}
	st.Fields.List = kept
}

func render(t *testing.T, fset *token.FileSet, n ast.Node) string {
	t.Helper()
	var b bytes.Buffer
	if err := printer.Fprint(&b, fset, n); err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(strings.Join(strings.Fields(b.String()), " "), "struct { }", "struct{}")
}
