package catalog

import (
	"fmt"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a catalog. Message says what is wrong and
// what to do about it.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"` // 0 when unknown
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// String formats the problem as "file:line: field: message", leaving out
// the parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
	}
	if p.Line > 0 {
		if p.File != "" {
			b.WriteByte(':')
		} else {
			b.WriteString("line ")
		}
		b.WriteString(strconv.Itoa(p.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is every problem found in one catalog. Parse returns it (as *Error)
// so that a caller can show all the problems at once, not one per run.
type Error struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		return "invalid catalog"
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems; the helpers keep call sites to one line.
type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (ps *problems) addAt(line int, field, format string, args ...any) {
	*ps = append(*ps, Problem{Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

// MaxProblems is how many problems a refusal lists: a catalog with more
// has a cause to fix first, and a refusal stays readable (and small, in
// the Manager's events) whatever the input.
const MaxProblems = 50

// capProblems keeps the first MaxProblems problems and says how many more
// there were.
func capProblems(ps []Problem) []Problem {
	if len(ps) <= MaxProblems {
		return ps
	}
	rest := len(ps) - MaxProblems
	ps = append(ps[:MaxProblems:MaxProblems], Problem{Message: fmt.Sprintf("and %d more problems not listed; fix the ones above first", rest)})
	return ps
}
