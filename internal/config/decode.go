package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/svcgate/svcgate"
	"go.yaml.in/yaml/v3"
)

// Strict decoding is done by checking the parsed yaml.Node tree against
// the Config type before yaml.v3 fills the Config in, rather than by
// yaml.v3's own Decoder.KnownFields, for two reasons found in v3.0.6:
//
//   - an error from a TextUnmarshaler (a negative or malformed duration)
//     aborts the whole decode with a message that has no line, and every
//     problem collected before it is lost;
//   - Node.Decode, the only way to decode a tree after reading its lines,
//     has no KnownFields switch.
//
// So the walk below reports unknown and duplicate keys, values of the wrong
// shape and values their field type refuses, each with its line, and
// removes or nulls them; yaml.v3 then decodes what is left, which can no
// longer fail on them. Each scalar is checked by letting yaml.v3 decode it
// alone into its field's type, so the rules for what an integer, a boolean
// or a duration is stay yaml.v3's. A test decodes a fully populated
// Config with yaml.v3's strict decoder and with Parse, so the walk's idea
// of the key names cannot drift from yaml.v3's.

// decoded is the outcome of decoding a file.
type decoded struct {
	// lines maps each field path written in the file to its key's line.
	lines    map[string]int
	problems []Problem
	// refusedValues are the fields whose value was refused and dropped.
	refusedValues []string
	// walked marks the (node, type) pairs already checked, so that an
	// anchor used through many aliases is checked once per type and an
	// alias bomb costs no more than the document's size.
	walked map[walked]bool
}

type walked struct {
	n *yaml.Node
	t reflect.Type
}

// add records a problem.
func (d *decoded) add(line int, field, format string, args ...any) {
	d.problems = append(d.problems, Problem{Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

// refuse records a problem with n's value and nulls n, so that yaml.v3
// leaves the field at its default instead of failing on it.
func (d *decoded) refuse(n *yaml.Node, field, format string, args ...any) {
	d.add(n.Line, field, format, args...)
	d.refusedValues = append(d.refusedValues, field)
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// refused reports whether field, or a field containing it, had its value
// refused while decoding.
func (d *decoded) refused(field string) bool {
	for _, r := range d.refusedValues {
		if field == r || strings.HasPrefix(field, r) && (field[len(r)] == '.' || field[len(r)] == '[') {
			return true
		}
	}
	return false
}

// decode parses data as one YAML document and decodes it into c, which
// holds the defaults. Keys absent from the file keep their defaults.
func decode(data []byte, c *Config) *decoded {
	d := &decoded{lines: map[string]int{}, walked: map[walked]bool{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) { // io.EOF: empty, or only comments
			d.problems = append(d.problems, yamlProblem(err))
		}
		return d
	}
	// A second document would otherwise be ignored silently, and an
	// operator who concatenated two files would run half of them.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.problems = append(d.problems, yamlProblem(err))
		return d
	default:
		d.add(next.Line, "", "a second YAML document starts here; the configuration must be a single document")
		return d
	}

	root := doc.Content[0]
	if isNull(root) {
		return d
	}
	d.value(root, reflect.TypeFor[Config](), "")
	if err := doc.Decode(c); err != nil {
		// Only what the walk cannot foresee gets here, such as
		// yaml.v3's limit on alias expansion.
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, s := range te.Errors {
				d.problems = append(d.problems, yamlProblem(errors.New(s)))
			}
		} else {
			d.problems = append(d.problems, yamlProblem(err))
		}
	}
	return d
}

// yamlProblem turns a yaml.v3 message such as "yaml: line 3: could not find
// expected ':'" into a Problem with its line.
func yamlProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				return Problem{Line: line, Message: tail}
			}
		}
	}
	return Problem{Message: msg}
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType        = reflect.TypeFor[svcgate.Duration]()
)

// value checks n, the value at path, against the type t it decodes into.
func (d *decoded) value(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isNull(n) {
		return // yaml.v3 leaves the field at its default
	}
	if pt := reflect.PointerTo(t); pt.Implements(textUnmarshalerType) || pt.Implements(yamlUnmarshalerType) {
		d.scalar(n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		if m := d.container(n, t, path, yaml.MappingNode); m != nil {
			d.mapping(m, t, path)
		}
	case reflect.Slice, reflect.Array:
		if s := d.container(n, t, path, yaml.SequenceNode); s != nil {
			for i, e := range s.Content {
				d.value(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case reflect.Interface:
		// Anything decodes into an interface.
	default:
		d.scalar(n, t, path)
	}
}

// container returns the mapping or sequence node n stands for (following
// an alias), or nil when n is of another kind, which is then refused, or
// when it was already checked as t.
func (d *decoded) container(n *yaml.Node, t reflect.Type, path string, kind yaml.Kind) *yaml.Node {
	target := n
	if n.Kind == yaml.AliasNode {
		target = n.Alias
	}
	if target == nil || target.Kind != kind {
		d.refuse(n, path, "must be %s, not %s", describeType(t), describeNode(n))
		return nil
	}
	w := walked{target, t}
	if d.walked[w] {
		return nil
	}
	d.walked[w] = true
	return target
}

// mapping checks the keys of m against t, a struct or a map, and recurses
// into their values. Unknown and repeated keys are reported and removed.
func (d *decoded) mapping(m *yaml.Node, t reflect.Type, path string) {
	var fields map[string]reflect.Type
	if t.Kind() == reflect.Struct {
		fields = map[string]reflect.Type{}
		structFields(t, fields)
	}
	first := map[string]int{}
	kept := make([]*yaml.Node, 0, len(m.Content))
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if isMerge(k) {
			if d.merge(v, t, path) {
				kept = append(kept, k, v)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode || isNull(k) || k.Value == "" {
			d.add(k.Line, path, "keys must be plain names, not %s", describeNode(k))
			continue
		}
		field := k.Value
		if path != "" {
			field = path + "." + k.Value
		}
		if line, dup := first[k.Value]; dup {
			d.add(k.Line, field, "is defined twice, first at line %d", line)
			continue
		}
		first[k.Value] = k.Line
		// Every map in Config has string keys, which any scalar key
		// decodes into, so only a struct's keys need checking.
		vt, known := fields[k.Value]
		if fields == nil {
			vt, known = t.Elem(), true
		}
		if !known {
			d.add(k.Line, field, "%s", unknownField(k.Value, fields))
			continue
		}
		if _, ok := d.lines[field]; !ok {
			d.lines[field] = k.Line
		}
		d.value(v, vt, field)
		kept = append(kept, k, v)
	}
	m.Content = kept
}

// merge checks the value of a YAML merge key ("<<: *defaults"), which must
// be a mapping or a list of mappings, each checked as t. It reports whether
// the merge can be kept.
func (d *decoded) merge(v *yaml.Node, t reflect.Type, path string) bool {
	targets := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		targets = v.Content
	}
	for _, n := range targets {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if n == nil || n.Kind != yaml.MappingNode {
			// yaml.v3 aborts the whole decode on this, so it is
			// dropped here.
			d.add(v.Line, path, "<< must merge a mapping or a list of mappings")
			return false
		}
	}
	for _, n := range targets {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		if w := (walked{n, t}); !d.walked[w] {
			d.walked[w] = true
			d.mapping(n, t, path)
		}
	}
	return true
}

// scalar checks a leaf value by decoding it alone into a new value of type
// t, so the rules are yaml.v3's own.
func (d *decoded) scalar(n *yaml.Node, t reflect.Type, path string) {
	target := n
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		target = n.Alias
	}
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		// yaml.v3 truncates a float into an integer field (1.5 → 1);
		// a fraction where a count belongs is a mistake to report.
		if isInt(t) && target.ShortTag() == "!!float" && !integral(target.Value) {
			d.refuse(n, path, "must be %s, not %s", describeType(t), describeNode(n))
		}
		return
	}
	var te *yaml.TypeError
	switch {
	case target.Kind != yaml.ScalarNode:
		d.refuse(n, path, "must be %s, not %s", describeType(t), describeNode(n))
	case !errors.As(err, &te):
		// A TextUnmarshaler's own message, such as svcgate.Duration's
		// `duration "-5s" is negative`.
		d.refuse(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	case isInt(t) && outOfRange(target.Value, t):
		d.refuse(n, path, "%s is out of range", target.Value)
	default:
		d.refuse(n, path, "must be %s, not %s", describeType(t), describeNode(n))
	}
}

// structFields adds the YAML keys of struct type t to fields, by the rules
// of yaml.v3's getStructInfo: the name before the first comma of the yaml
// tag, else the lower-cased field name; "-" skips a field; ",inline" lifts
// a struct's fields. (yaml.v3's reading of a bare tag without a colon is
// left out: go vet refuses such tags.)
func structFields(t reflect.Type, fields map[string]reflect.Type) {
	for f := range t.Fields() {
		if f.PkgPath != "" && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, flags, _ := strings.Cut(tag, ",")
		if slices.Contains(strings.Split(flags, ","), "inline") && f.Type.Kind() == reflect.Struct {
			structFields(f.Type, fields)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
}

// unknownField describes an unknown key, suggesting the known one it is
// most likely a typo of.
func unknownField(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3 // suggest only within two edits
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if dist := editDistance(key, name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown field (did you mean %s?)", best)
	}
	return "unknown field"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
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

// isNull reports whether n is a YAML null (~, null, or nothing), which
// yaml.v3 treats as "keep the default".
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// isMerge is yaml.v3's own test for the merge key "<<".
func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" &&
		(n.Tag == "" || n.Tag == "!" || n.ShortTag() == "!!merge")
}

func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

// integral reports whether the YAML float s is a whole number.
func integral(s string) bool {
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	return err == nil && f == math.Trunc(f)
}

// outOfRange reports whether s is an integer that does not fit in t, so
// that "99999999999999999999" is not called "not an integer".
func outOfRange(s string, t reflect.Type) bool {
	s = strings.ReplaceAll(s, "_", "")
	v, err := strconv.ParseInt(s, 0, 64)
	if errors.Is(err, strconv.ErrRange) {
		return true
	}
	if err != nil {
		_, err := strconv.ParseUint(s, 0, 64)
		return errors.Is(err, strconv.ErrRange) || err == nil && t.Kind() < reflect.Uint
	}
	if t.Kind() >= reflect.Uint {
		return v < 0 || reflect.Zero(t).OverflowUint(uint64(v))
	}
	return reflect.Zero(t).OverflowInt(v)
}

// describeType names what a value of t must look like in the file.
func describeType(t reflect.Type) string {
	switch {
	case t == durationType:
		return `a duration such as "5s"`
	case t.Kind() == reflect.Struct, t.Kind() == reflect.Map:
		return "a mapping of keys to values"
	case t.Kind() == reflect.Slice, t.Kind() == reflect.Array:
		return "a list"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uintptr:
		return "a non-negative integer"
	case isInt(t):
		return "an integer"
	case t.Kind() == reflect.Float32, t.Kind() == reflect.Float64:
		return "a number"
	}
	return "a single value"
}

// describeNode says what the file holds at n, quoting a scalar (cut short:
// the message is for a person, not a dump of the file).
func describeNode(n *yaml.Node) string {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if r := []rune(v); len(r) > 40 {
		v = string(r[:37]) + "..."
	}
	return strconv.Quote(v)
}
