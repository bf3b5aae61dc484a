// Command check validates the manifests that `helm template` renders from the teleport-jira
// chart, without a cluster and without downloading schemas.
//
// Every document is decoded strictly into its Kubernetes API type (k8s.io/api, and the
// Prometheus Operator's for a ServiceMonitor and a PrometheusRule): an unknown or misspelt
// field, a wrong type or a duplicated key is an error. Then the objects are checked against
// each other and against the plugin's config: names and labels are valid, selectors select the
// pods, ports and volumes are referenced by names that exist, every file the TOML config names
// is mounted into the container, and the listeners in the config are the ports the probes and
// Services use.
//
// Usage:
//
//	check manifests [-config-out FILE] [-args-out FILE] [-want KINDS] [-want-not KINDS]
//	                [-rules FILE] [-expect table.key=value ...] RENDERED.yaml
//	check notes RENDERED.yaml
//	check secrets -values FILE... -keys KEYS [-notes FILE] [-in-secret KEYS] [-nowhere KEYS] RENDERED.yaml
//
// `manifests` writes the ConfigMap's teleport-jira.toml and the container's arguments (one a
// line) where asked, for the caller to run the plugin's own config check on them; -expect
// pins values of the TOML (to check quoting and the mapping of values to keys); -rules names the
// alert rules file a rendered PrometheusRule must carry unchanged. `notes` prints the NOTES text
// found in a rendered document `notes: "<text>"` and fails when a value was missing in it.
// `secrets` reads the secret values (-keys, e.g. jira.apiToken) of the values files and fails
// when one of them appears in a rendered object other than a Secret, or in the NOTES text.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "manifests":
		err = runManifests(os.Args[2:])
	case "notes":
		err = runNotes(os.Args[2:])
	case "secrets":
		err = runSecrets(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "check: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: check manifests [-config-out FILE] [-args-out FILE] [-want KINDS] [-want-not KINDS] [-rules FILE] [-expect table.key=value ...] RENDERED.yaml | check notes RENDERED.yaml | check secrets -values FILE... -keys KEYS [-notes FILE] [-in-secret KEYS] [-nowhere KEYS] RENDERED.yaml")
	os.Exit(2)
}

func runManifests(args []string) error {
	flags := flag.NewFlagSet("manifests", flag.ContinueOnError)
	configOut := flags.String("config-out", "", "write the rendered teleport-jira.toml here")
	argsOut := flags.String("args-out", "", "write the plugin container's arguments here, one a line")
	want := flags.String("want", "", "comma-separated kinds that must be present (e.g. ServiceMonitor)")
	wantNot := flags.String("want-not", "", "comma-separated kinds that must be absent")
	rules := flags.String("rules", "", "the alert rules file (a PrometheusRule spec) a rendered PrometheusRule must carry")
	var expects expectations
	flags.Var(&expects, "expect", "table.key=value that the rendered TOML must hold (repeatable; value \"-\" means absent)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		return errors.New("manifests: one rendered file expected")
	}
	data, err := os.ReadFile(flags.Arg(0))
	if err != nil {
		return err
	}
	docs, err := splitDocuments(data)
	if err != nil {
		return err
	}
	set, errs := decodeAll(docs)
	set.rulesFile = *rules
	if len(errs) == 0 {
		errs = append(errs, set.validate()...)
	}
	for _, kind := range splitList(*want) {
		if set.count(kind) == 0 {
			errs = append(errs, fmt.Errorf("no %s rendered, one expected", kind))
		}
	}
	for _, kind := range splitList(*wantNot) {
		if n := set.count(kind); n != 0 {
			errs = append(errs, fmt.Errorf("%d %s rendered, none expected", n, kind))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, expects.check(set.config)...)
	}
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintf(os.Stderr, "  %v\n", err)
		}
		return fmt.Errorf("%s: %d problem(s)", flags.Arg(0), len(errs))
	}
	if *configOut != "" {
		if err := os.WriteFile(*configOut, []byte(set.configText), 0o600); err != nil {
			return err
		}
	}
	if *argsOut != "" {
		text := strings.Join(set.pluginContainer().Args, "\n") + "\n"
		if err := os.WriteFile(*argsOut, []byte(text), 0o600); err != nil {
			return err
		}
	}
	fmt.Printf("%s: %s valid\n", flags.Arg(0), set.summary())
	return nil
}

func splitList(text string) []string {
	var out []string
	for _, item := range strings.Split(text, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// splitDocuments cuts a YAML stream at its `---` separators and drops documents that hold
// nothing but comments.
func splitDocuments(data []byte) ([][]byte, error) {
	var docs [][]byte
	var current bytes.Buffer
	flush := func() {
		if hasContent(current.Bytes()) {
			docs = append(docs, append([]byte(nil), current.Bytes()...))
		}
		current.Reset()
	}
	reader := bufio.NewReader(bytes.NewReader(data))
	for {
		line, err := reader.ReadString('\n')
		if strings.TrimRight(line, " \t\r\n") == "---" {
			flush()
		} else {
			current.WriteString(line)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	flush()
	return docs, nil
}

func hasContent(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed != "" && !strings.HasPrefix(trimmed, "#") {
			return true
		}
	}
	return false
}
