package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: whatever the bytes, Parse returns a catalog that validates,
// or an *Error whose problems each say something, at most MaxProblems of
// them (and the count of the rest). It never panics. The seeds are the
// repository's example catalogs and the bombs of bombs_test.go; `make
// fuzz` runs it for longer.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"../examples/*.yaml", "../examples/*/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(aliasedServers(50)))
	f.Add([]byte(bombCatalog(`["{{printf \"%0999999d\" 0}}"]`, "{max: 1}")))
	f.Add([]byte(bombCatalog(`["{{range 10}}x{{end}}"]`, "{min: 1, initial: 1, max: 1000000000}")))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("manager: {<<: [*x]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			t.Skip("larger than any catalog worth fuzzing")
		}
		c, err := Parse(data, "fuzz.yaml")
		if err == nil {
			if ps := c.Validate(); len(ps) > 0 {
				t.Fatalf("Parse accepted a catalog that does not validate: %v", ps)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Parse failed with %T, not *Error: %v", err, err)
		}
		if len(e.Problems) == 0 || len(e.Problems) > MaxProblems+1 {
			t.Fatalf("%d problems", len(e.Problems))
		}
		for _, p := range e.Problems {
			if strings.TrimSpace(p.Message) == "" {
				t.Fatalf("a problem without a message: %+v", p)
			}
		}
	})
}

// FuzzRender: a template renders within MaxRendered bytes, or fails with
// a message; it never panics, loops or allocates without bound.
func FuzzRender(f *testing.F) {
	for _, s := range []string{
		"--port={{.Port}}", "{{.Service}}-{{.Container}}@{{.Server}}:{{.Address}}",
		`{{printf "%05d" .Port}}`, `{{if eq .Service "web"}}w{{else}}o{{end}}`,
		`{{range 3}}x{{end}}`, `{{define "a"}}{{template "a"}}{{end}}`, `{{printf "%0999999d" 0}}`,
		`{{.Nope}}`, `{{`, `{{len "abc"}}{{index "abc" 1}}{{slice "abcdef" 1 3}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		out, err := renderTemplate(text, sampleData("web"))
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if strings.Contains(text, "{{") && len(out) > MaxRendered {
			t.Fatalf("rendered %d bytes, more than %d", len(out), MaxRendered)
		}
	})
}
