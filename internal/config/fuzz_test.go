package config_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"

	"github.com/svcgate/svcgate/internal/config"
)

// FuzzParse feeds Parse arbitrary bytes. Parse must never panic, must
// return either a valid Config or an *Error with at least one problem, and
// a Config it accepts must survive being written out and read back (empty
// and nil lists count as the same), which is what a tool that edits the file
// would do.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"listen: 127.0.0.1:8484\n",
		"backend: supervisor\nprograms:\n  web:\n    command: /bin/sh\n    args: [-c, 'sleep 1']\n    stop_timeout: 5s\n",
		"http:\n  read_timeout: -5s\n  read_timout: 1s\n",
		"programs:\n  a: &b {command: /bin/true}\n  c:\n    <<: *b\n",
		"programs:\n  web: {command: x}\n  web: {command: y}\n",
		"a: &a [*a]\n",
		"x: 1\n---\ny: 2\n",
		"events: {buffer: 0x10}\nlog: {level: debug, format: text}\n",
		"- 1\n- 2\n",
		"http: !!binary aGk=\n",
		"? [a, b]\n: c\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data, "fuzz.yaml")
		if err != nil {
			var e *config.Error
			if c != nil || !errors.As(err, &e) || len(e.Problems) == 0 {
				t.Fatalf("Parse = %v, %v (%T); want nil and an *Error with problems", c, err, err)
			}
			for _, p := range e.Problems {
				if p.Line < 0 || p.Message == "" {
					t.Fatalf("malformed problem %+v", p)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate refuses:\n%v", err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal of a parsed config: %v", err)
		}
		again, err := config.Parse(out, "again.yaml")
		if err != nil {
			t.Fatalf("the written-out config does not parse:\n%v\n%s", err, out)
		}
		if diff := cmp.Diff(c, again, ignoreOrigin, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("write and read back changed the config (-before +after):\n%s", diff)
		}
	})
}
