package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Load reads the catalog file at path; see Parse.
func Load(path string) (*Catalog, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading catalog, %w", err)
	}
	return Parse(data, path)
}

// Parse decodes a catalog from YAML, fills defaults and validates it.
// filename only labels the problems. On any problem it returns a nil
// Catalog and an *Error holding every problem found, each with its line.
//
// The YAML is decoded into a yaml.Node and walked by hand rather than
// unmarshalled, so that every problem, even a type error, can name its field
// and line, and so that one bad value does not hide the others.
func Parse(data []byte, filename string) (*Catalog, error) {
	if len(data) > MaxCatalogBytes {
		return nil, &Error{Problems: []Problem{{File: filename, Message: fmt.Sprintf(
			"the catalog is %d bytes, more than %d (the Manager carries it in one Temporal payload of at most 2 MB); split the services among several Managers", len(data), MaxCatalogBytes)}}}
	}
	var c Catalog
	d := decoder{lines: map[string]int{}}
	if d.document(data, &c) {
		c.Default()
		for _, p := range c.validate(d.lineOf, d.isBroken) {
			if !d.isBroken(p.Field) {
				p.Line = d.lineOf(p.Field)
				d.problems = append(d.problems, p)
			}
		}
	}
	if len(d.problems) == 0 {
		return &c, nil
	}
	// Problems of unknown line (0) come first: they are about the file as
	// a whole, such as a missing section.
	slices.SortStableFunc(d.problems, func(a, b Problem) int { return a.Line - b.Line })
	d.problems = capProblems(d.problems)
	for i := range d.problems {
		d.problems[i].File = filename
	}
	return nil, &Error{Problems: d.problems}
}

// decoder walks a yaml.Node tree into the catalog types.
type decoder struct {
	lines    map[string]int // field path → line it is written on
	broken   []string       // fields whose value could not be decoded
	problems problems
	values   int  // values decoded so far (see MaxValues)
	tooMany  bool // the walk stopped at MaxValues
}

// MaxCatalogBytes bounds a catalog file (or the YAML its PostgreSQL rows
// make): the Manager receives it in one signal, within Temporal's 2 MB.
const MaxCatalogBytes = 1 << 20

// MaxString bounds one string value of a catalog (a command, an argument,
// an env value): 64 KiB is far beyond any real one.
const MaxString = 64 << 10

// MaxValues bounds the values one catalog holds once its YAML aliases are
// expanded: a large real catalog holds tens of thousands (a thousand
// services of a few dozen fields), while a few KB of aliases of aliases
// can expand to millions, and cost seconds and gigabytes to walk.
const MaxValues = 200_000

// maxDepth bounds the walk; the schema is a few levels deep, so only a
// runaway alias gets near it.
const maxDepth = 32

var yamlSyntax = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document decodes the one YAML document in data into c. It reports whether
// decoding got far enough for validation to make sense.
func (d *decoder) document(data []byte, c *Catalog) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.problems.add("", "the file is empty; write a catalog with a manager and a services section")
		} else {
			d.syntax(err)
		}
		return false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntax(err)
		return false
	default:
		d.problems.addAt(next.Line, "", "a second YAML document starts here; keep one catalog per file")
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		d.problems.add("", "the file is empty; write a catalog with a manager and a services section")
		return false
	}
	if resolve(root).Kind != yaml.MappingNode {
		d.problems.addAt(root.Line, "", "the catalog must be a mapping with manager and services sections, got %s", describe(root))
		return false
	}
	d.value(root, reflect.ValueOf(c).Elem(), "", 0)
	return !d.tooMany
}

// syntax records a YAML syntax error, with its line when yaml.v3 gives one.
func (d *decoder) syntax(err error) {
	if m := yamlSyntax.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.problems.addAt(line, "", "invalid YAML: %s; fix the syntax", m[2])
		return
	}
	d.problems.add("", "invalid YAML: %s; fix the syntax", strings.TrimPrefix(err.Error(), "yaml: "))
}

// lineOf returns the line of field, or of its nearest ancestor written in
// the file (a defaulted field has no line of its own), or 0.
func (d *decoder) lineOf(field string) int {
	for f := field; f != ""; f = parent(f) {
		if l, ok := d.lines[f]; ok {
			return l
		}
	}
	return 0
}

// isBroken reports whether field is, contains or lies within a value that
// failed to decode. Validating such a field would only repeat the decoding
// problem in other words ("max 0 ..." after "max: lots is not a number").
func (d *decoder) isBroken(field string) bool {
	for _, b := range d.broken {
		if within(field, b) || within(b, field) {
			return true
		}
	}
	return false
}

// within reports whether field is inner or lies inside it.
func within(field, outer string) bool {
	if outer == "" || field == outer {
		return true
	}
	return strings.HasPrefix(field, outer) && (field[len(outer)] == '.' || field[len(outer)] == '[')
}

// parent strips the last element of a field path: "a.b[2]" → "a.b" → "a".
func parent(field string) string {
	if i := strings.LastIndexAny(field, ".["); i >= 0 {
		return field[:i]
	}
	return ""
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	portRangeType = reflect.TypeFor[PortRange]()
	managerType   = reflect.TypeFor[Manager]()
)

// value decodes n into v, the field at path.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, depth int) {
	if d.values++; d.values > MaxValues {
		if !d.tooMany {
			d.tooMany = true
			d.fail(n, path, "the catalog holds more than %d values once its YAML aliases are expanded; write the repeated parts out, or split the services among several Managers", MaxValues)
		}
		return
	}
	if depth > maxDepth {
		d.fail(n, path, "nesting is too deep (an alias refers to itself?); write the value out")
		return
	}
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // left out: the zero value, which Default may fill
	}
	switch {
	case v.Type() == portRangeType:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a port range, got %s; write it as FIRST-LAST, e.g. \"20000-20099\"", describe(n))
			return
		}
		r, err := ParsePortRange(n.Value)
		if err != nil {
			d.fail(n, path, "%s", err)
			return
		}
		v.Set(reflect.ValueOf(r))
	case v.Type() == durationType:
		d.duration(n, v, path)
	case v.Kind() == reflect.Pointer:
		// An optional section (limits) or value (update.max_surge, whose
		// 0 is not its default): set when the catalog writes it.
		p := reflect.New(v.Type().Elem())
		d.value(n, p.Elem(), path, depth)
		v.Set(p)
	case v.Kind() == reflect.Struct:
		d.structure(n, v, path, depth)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s; write one \"- item\" per line, or [a, b]", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			d.value(item, s.Index(i), p, depth+1)
		}
		v.Set(s)
	case v.Kind() == reflect.Map:
		d.mapping(n, v, path, depth)
	case v.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a string, got %s; write a single value", describe(n))
			return
		}
		if len(n.Value) > MaxString {
			d.fail(n, path, "the value is %d bytes, more than %d; keep commands, arguments and env values short (a file the service reads holds more)", len(n.Value), MaxString)
			return
		}
		v.SetString(n.Value)
	case v.Kind() == reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "%s is not true or false; write true or false", describe(n))
			return
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			if _, err := strconv.Atoi(n.Value); err == nil && n.Kind == yaml.ScalarNode {
				d.fail(n, path, "%q is quoted, which makes it text; write %s without quotes", n.Value, n.Value)
				return
			}
			d.fail(n, path, "%s is not a whole number; write a number such as 3", describe(n))
			return
		}
		v.SetInt(int64(i))
	default:
		// Only reachable if the schema gains a type this walk does not know.
		panic(fmt.Sprintf("catalog: no decoder for %s at %s", v.Type(), path))
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		d.fail(n, path, "%s has no unit; write a duration such as \"2s\" or \"500ms\"", n.Value)
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a duration, got %s; write one such as \"2s\" or \"500ms\"", describe(n))
		return
	}
	t, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(n, path, "%q is not a duration; write one such as \"2s\" or \"500ms\"", n.Value)
		return
	}
	v.SetInt(int64(t))
}

// structure decodes a mapping into a struct, by the fields' yaml tags.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string, depth int) {
	fields := yamlFields(v.Type())
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping with the fields %s, got %s; write them indented below", strings.Join(fieldNames(fields), ", "), describe(n))
		return
	}
	for _, e := range d.entries(n, path, depth) {
		p := join(path, e.name)
		i, ok := fields[e.name]
		if !ok {
			msg := fmt.Sprintf("unknown field %q; ", e.name)
			if s := closest(e.name, fieldNames(fields)); s != "" {
				msg += fmt.Sprintf("did you mean %q?", s)
			} else {
				msg += "use one of " + strings.Join(fieldNames(fields), ", ")
				if path != "" {
					msg += " here"
				}
			}
			d.problems.addAt(e.key.Line, p, "%s", msg)
			continue
		}
		d.lines[p] = e.key.Line
		if v.Type() == managerType && e.name == "warm_pool" && resolve(e.value).Kind == yaml.MappingNode {
			d.warmPool(e.value, v, p, depth+1)
			continue
		}
		d.value(e.value, v.Field(i), p, depth+1)
	}
}

// warmPool decodes warm_pool written as a mapping: {default: N, images:
// {IMAGE: n}} (the docker kind's pools per service image).
func (d *decoder) warmPool(n *yaml.Node, m reflect.Value, path string, depth int) {
	var spec struct {
		Default int            `yaml:"default"`
		Images  map[string]int `yaml:"images"`
	}
	d.structure(resolve(n), reflect.ValueOf(&spec).Elem(), path, depth)
	mgr := m.Addr().Interface().(*Manager)
	mgr.WarmPool, mgr.WarmPoolImages = spec.Default, nil
	for _, img := range slices.Sorted(maps.Keys(spec.Images)) {
		mgr.WarmPoolImages = append(mgr.WarmPoolImages, Pool{Image: img, Size: spec.Images[img]})
	}
}

// mapping decodes a mapping into a map[string]string (Env).
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping of NAME: value, got %s; write one NAME: value per line", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, e := range d.entries(n, path, depth) {
		p := join(path, e.name)
		d.lines[p] = e.key.Line
		val := reflect.New(v.Type().Elem()).Elem()
		d.value(e.value, val, p, depth+1)
		m.SetMapIndex(reflect.ValueOf(e.name), val)
	}
	v.Set(m)
}

// entry is one key of a mapping.
type entry struct {
	name       string
	key, value *yaml.Node
}

// entries lists the keys of a mapping once each, in the order written,
// resolving YAML merge keys ("<<: *defaults"): keys written here override
// merged ones. A key written twice is a problem, not a silent override.
func (d *decoder) entries(n *yaml.Node, path string, depth int) []entry {
	var own, merged []entry
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, d.merge(v, path, depth)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.problems.addAt(k.Line, path, "a key is %s; keys must be plain names", describe(k))
			continue
		}
		p := join(path, k.Value)
		if first, ok := seen[k.Value]; ok {
			d.fail(k, p, "%q is written twice (first on line %d); keep one", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		own = append(own, entry{name: k.Value, key: k, value: v})
	}
	for _, e := range merged {
		if _, ok := seen[e.name]; !ok {
			seen[e.name] = e.key
			own = append(own, e)
		}
	}
	return own
}

// merge returns the entries a merge key brings in: one mapping or a list of
// them, earlier ones taking precedence as YAML specifies.
func (d *decoder) merge(v *yaml.Node, path string, depth int) []entry {
	if depth > maxDepth {
		d.fail(v, path, "merge keys nest too deep; write the fields out")
		return nil
	}
	v = resolve(v)
	sources := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		sources = v.Content
	}
	var out []entry
	for _, s := range sources {
		s = resolve(s)
		if s.Kind != yaml.MappingNode {
			d.fail(s, path, "a merge key (<<) takes a mapping or a list of mappings, got %s; merge an anchored mapping such as <<: *defaults", describe(s))
			continue
		}
		out = append(out, d.entries(s, path, depth+1)...)
	}
	return out
}

// fail records a value that could not be decoded; see isBroken.
func (d *decoder) fail(n *yaml.Node, field, format string, args ...any) {
	d.problems.addAt(n.Line, field, format, args...)
	if field != "" {
		d.broken = append(d.broken, field)
	}
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

// describe names a node's value for a message.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}

// yamlFields maps the yaml names of a struct's fields to their indexes.
func yamlFields(t reflect.Type) map[string]int {
	fields := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

// fieldNames lists field names in a fixed order, for messages.
func fieldNames(fields map[string]int) []string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return fields[a] - fields[b] })
	return names
}

// closest returns the candidate within two edits of name, if one is.
func closest(name string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
