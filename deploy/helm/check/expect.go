package main

import (
	"fmt"
	"strings"
)

// expectations are -expect flags: "table.key=value" pairs the rendered TOML must hold, with
// "-" for a key that must be absent. Nested tables are dotted: http.basic_auth.user.
type expectations []string

func (e *expectations) String() string { return strings.Join(*e, " ") }

func (e *expectations) Set(value string) error {
	if !strings.Contains(value, "=") {
		return fmt.Errorf("%q is not table.key=value", value)
	}
	*e = append(*e, value)
	return nil
}

func (e expectations) check(config map[string]any) []error {
	var errs []error
	for _, expectation := range e {
		key, want, _ := strings.Cut(expectation, "=")
		got, found := lookup(config, strings.Split(key, "."))
		switch {
		case want == "-" && found:
			errs = append(errs, fmt.Errorf("config: %s is %v, want it absent", key, got))
		case want == "-":
		case !found:
			errs = append(errs, fmt.Errorf("config: %s is absent, want %q", key, want))
		case fmt.Sprint(got) != want:
			errs = append(errs, fmt.Errorf("config: %s is %q, want %q", key, fmt.Sprint(got), want))
		}
	}
	return errs
}

func lookup(table map[string]any, path []string) (any, bool) {
	value, found := table[path[0]]
	if !found || len(path) == 1 {
		return value, found
	}
	next, ok := value.(map[string]any)
	if !ok {
		return nil, false
	}
	return lookup(next, path[1:])
}
