package fleet

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		cut  bool
	}{
		{name: "short", in: "exited with status 3"},
		{name: "exactly the bound", in: strings.Repeat("x", MaxText)},
		{name: "one byte over", in: strings.Repeat("x", MaxText+1), cut: true},
		{name: "4 KB of output", in: strings.Repeat("panic: boom\n", 400), cut: true},
		{name: "multi-byte runes across the cut", in: strings.Repeat("é", MaxText), cut: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Clip(tc.in)
			assert.LessOrEqual(t, len(got), MaxText)
			assert.True(t, utf8.ValidString(got))
			if !tc.cut {
				assert.Equal(t, tc.in, got)
				return
			}
			assert.Contains(t, got, "more bytes in the log")
			head := got[:strings.Index(got, " … (")]
			assert.True(t, strings.HasPrefix(tc.in, head), "keeps the start of the text")
		})
	}
}
