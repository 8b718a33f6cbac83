package catalog

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// block is one fenced code block of a Markdown file.
type block struct {
	lang, body string
	line       int
}

func fencedBlocks(t *testing.T, path string) []block {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var (
		blocks []block
		cur    *block
		body   []string
	)
	for i, l := range strings.Split(string(data), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &block{lang: strings.TrimPrefix(l, "```"), line: i + 1}
			body = nil
		case cur != nil && l == "```":
			cur.body = strings.Join(body, "\n") + "\n"
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body = append(body, l)
		}
	}
	require.Nil(t, cur, "unclosed code block")
	return blocks
}

// validateOutput is what `msm catalog validate` prints for a parse result:
// the problems and their count on stderr, or one line on stdout.
// internal/cli's TestDocsValidate runs the real command on the same blocks.
func validateOutput(name string, c *Catalog, err error) string {
	var cerr *Error
	if errors.As(err, &cerr) {
		plural := "s"
		if len(cerr.Problems) == 1 {
			plural = ""
		}
		return fmt.Sprintf("%s\n%s: %d problem%s", cerr.Error(), name, len(cerr.Problems), plural)
	}
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s: ok (%d services, %d servers)", name, len(c.Services), len(c.Manager.Servers))
}

// TestDocs keeps docs/catalog.md true. A console block runs
// `msm catalog validate FILE`: if FILE is in the repository, the block shows
// what loading it prints; otherwise it shows what Parse reports for the
// yaml block just before it. Every other yaml block is a valid catalog.
func TestDocs(t *testing.T) {
	const cmd = "$ msm catalog validate "
	blocks := fencedBlocks(t, "../docs/catalog.md")
	shown := map[int]bool{} // yaml blocks a console block shows the output of
	checked := 0
	for i, b := range blocks {
		if b.lang != "console" {
			continue
		}
		first, want, _ := strings.Cut(b.body, "\n")
		require.True(t, strings.HasPrefix(first, cmd), "console block at line %d", b.line)
		want = strings.TrimSuffix(want, "\n")
		file := strings.TrimPrefix(first, cmd)
		_, statErr := os.Stat("../" + file)
		inRepo := statErr == nil
		t.Run(fmt.Sprintf("line %d", b.line), func(t *testing.T) {
			if inRepo {
				c, err := Load("../" + file)
				// Load names the file by the path it was given.
				out := strings.ReplaceAll(validateOutput("../"+file, c, err), "../"+file, file)
				assert.Equal(t, want, out)
				return
			}
			require.True(t, i > 0 && blocks[i-1].lang == "yaml", "console block at line %d validates %s, which is neither a file nor the yaml block before it", b.line, file)
			c, err := Parse([]byte(blocks[i-1].body), file)
			assert.Equal(t, want, validateOutput(file, c, err))
		})
		if !inRepo && i > 0 {
			shown[i-1] = true
		}
		checked++
	}
	for i, b := range blocks {
		if b.lang != "yaml" || shown[i] {
			continue
		}
		t.Run(fmt.Sprintf("line %d", b.line), func(t *testing.T) {
			_, err := Parse([]byte(b.body), "docs")
			assert.NoError(t, err)
		})
		checked++
	}
	assert.GreaterOrEqual(t, checked, 5, "docs/catalog.md lost its examples")
}
