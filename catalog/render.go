package catalog

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

// Render executes the service's Command, Args and Env templates for one
// container: it returns the program to run, its arguments, and its
// environment additions as sorted "KEY=VALUE" strings.
func (s Service) Render(d TemplateData) (command string, args []string, env []string, err error) {
	command, err = renderTemplate(s.Command, d)
	if err != nil {
		return "", nil, nil, fmt.Errorf("rendering command of service %s, %w", s.Name, err)
	}
	for i, a := range s.Args {
		out, err := renderTemplate(a, d)
		if err != nil {
			return "", nil, nil, fmt.Errorf("rendering args[%d] of service %s, %w", i, s.Name, err)
		}
		args = append(args, out)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		out, err := renderTemplate(s.Env[k], d)
		if err != nil {
			return "", nil, nil, fmt.Errorf("rendering env %s of service %s, %w", k, s.Name, err)
		}
		env = append(env, k+"="+out)
	}
	return command, args, env, nil
}

// templateFields names what TemplateData offers, for messages.
const templateFields = ".Port, .Service, .Container, .Server, .Address"

// MaxRendered bounds what one template may render to, in bytes: an
// argument, a command or an environment value, never a document.
const MaxRendered = 64 << 10

// renderTemplate executes one template. Text without "{{" is returned as is,
// which keeps the common case cheap and free of template surprises.
//
// A catalog is input msm did not write, and its templates run in the
// worker, the Manager's validation and every agent: they get fields,
// conditions and functions, but no loops ({{range}}), no other templates
// ({{define}}, {{template}}, {{block}}) and no {{with}}, and their output
// stops at MaxRendered bytes. So no template runs for long or allocates
// much (fmt's own widths stop at a million).
func renderTemplate(text string, d TemplateData) (string, error) {
	if !strings.Contains(text, "{{") {
		return text, nil
	}
	// missingkey=error matters for map data only; a misspelt field of
	// TemplateData fails at execution on its own.
	t, err := template.New("t").Option("missingkey=error").Parse(text)
	if err != nil {
		return "", &templateError{msg: templateDetail(err)}
	}
	if len(t.Templates()) > 1 {
		return "", &templateError{msg: "{{define}} and {{block}} are not allowed in a catalog template; write the text out"}
	}
	if action := forbidden(t.Root); action != "" {
		return "", &templateError{msg: fmt.Sprintf("{{%s}} is not allowed in a catalog template: use fields (%s), conditions and functions", action, templateFields)}
	}
	b := &boundedWriter{max: MaxRendered}
	if err := t.Execute(b, d); err != nil {
		if b.over {
			return "", &templateError{msg: fmt.Sprintf("the template renders to more than %d bytes; shorten it", MaxRendered), exec: true}
		}
		if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
			return "", &templateError{msg: fmt.Sprintf("unknown template field .%s; use one of %s", m[1], templateFields), unknown: true}
		}
		return "", &templateError{msg: templateDetail(err), exec: true}
	}
	return b.String(), nil
}

// forbidden returns the first action of the tree a catalog template may
// not use, "" if there is none.
func forbidden(n parse.Node) string {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return ""
		}
		for _, c := range n.Nodes {
			if a := forbidden(c); a != "" {
				return a
			}
		}
	case *parse.RangeNode:
		return "range"
	case *parse.WithNode:
		return "with"
	case *parse.TemplateNode:
		return "template"
	case *parse.IfNode:
		if a := forbidden(n.List); a != "" {
			return a
		}
		return forbidden(n.ElseList)
	}
	return ""
}

// boundedWriter keeps what is written to it up to max bytes, and fails
// the write that would go past.
type boundedWriter struct {
	strings.Builder
	max  int
	over bool
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	if w.Len()+len(p) > w.max {
		w.over = true
		return 0, errRenderedTooLong
	}
	return w.Builder.Write(p)
}

var errRenderedTooLong = errors.New("rendered too long")

// templateError carries a message fit for a person, without the
// text/template prefixes that name the internal template.
type templateError struct {
	msg     string
	unknown bool // a field TemplateData does not have
	exec    bool // parsed, but failed when executed
}

func (e *templateError) Error() string { return e.msg }

var (
	unknownField   = regexp.MustCompile(`can't evaluate field (\w+)`)
	templatePrefix = regexp.MustCompile(`^template: t:\d+(:\d+)?: `)
)

// templateDetail strips text/template's "template: t:1:5: " prefix, which
// names our internal template and a line that is always 1.
func templateDetail(err error) string {
	return templatePrefix.ReplaceAllString(err.Error(), "")
}

// checkTemplate returns a message for a template that does not render, or
// "" if it renders against the sample data.
func checkTemplate(text string, d TemplateData) string {
	_, err := renderTemplate(text, d)
	var te *templateError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &te) && te.unknown:
		return te.msg
	case errors.As(err, &te) && te.exec:
		return fmt.Sprintf("template fails on sample data (%s); fix the template", te.msg)
	default:
		return fmt.Sprintf("invalid template: %s; fix the {{ }} syntax", err)
	}
}
