package config

import (
	"maps"
	"reflect"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestStructFieldsFollowsYAMLv3 pins the key rules of structFields to
// yaml.v3's on a type using each rule, including ones no Config type uses
// yet: the keys yaml.v3 writes for a value are exactly the keys
// structFields accepts.
func TestStructFieldsFollowsYAMLv3(t *testing.T) {
	type Inner struct {
		Deep string `yaml:"deep"`
	}
	type Embedded struct {
		Lifted int `yaml:"lifted"`
	}
	type sample struct {
		Tagged    string `yaml:"tagged,omitempty"`
		Untagged  string
		Skipped   string `yaml:"-"`
		Nested    Inner  `yaml:"nested"`
		Embedded  `yaml:",inline"`
		Flattened Inner `yaml:",inline"`
		private   string
	}
	data, err := yaml.Marshal(sample{Tagged: "x", private: "y"})
	if err != nil {
		t.Fatal(err)
	}
	var emitted map[string]any
	if err := yaml.Unmarshal(data, &emitted); err != nil {
		t.Fatal(err)
	}
	fields := map[string]reflect.Type{}
	structFields(reflect.TypeFor[sample](), fields)

	want := slices.Sorted(maps.Keys(emitted))
	if got := slices.Sorted(maps.Keys(fields)); !slices.Equal(got, want) {
		t.Errorf("structFields keys = %v, yaml.v3 writes %v", got, want)
	}
}
