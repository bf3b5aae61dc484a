package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// minSecretLength is the shortest secret value the leak check accepts from a values file: a
// shorter one could match by chance anywhere, and would prove nothing.
const minSecretLength = 8

// secretValue is one secret taken from a values file: the value's key (jira.apiToken) and where.
type secretValue struct {
	key, file, value string
}

// runSecrets checks that no secret value of the values files appears in a rendered manifest
// other than a Secret (nor in a Secret's metadata, nor in the NOTES text), in any of the forms
// a template could give it: as is, escaped as a JSON or TOML string, or base64-encoded.
//
//	check secrets -values FILE [-values FILE...] -keys jira.apiToken,... [-notes FILE]
//	              [-in-secret KEYS] [-nowhere KEYS] RENDERED.yaml
//
// -in-secret: these values must be the data of a rendered Secret (the chart's own); -nowhere:
// these must not be rendered at all (values the chart ignores, as an inline token beside an
// existing Secret). Each leak is one line on stderr naming the value's key and the object.
func runSecrets(args []string) error {
	flags := flag.NewFlagSet("secrets", flag.ContinueOnError)
	var valuesFiles stringList
	flags.Var(&valuesFiles, "values", "a values file, as given to helm (repeatable; values.yaml first)")
	keys := flags.String("keys", "", "comma-separated dotted keys of the secret values (jira.apiToken,...)")
	notes := flags.String("notes", "", "the rendered NOTES text (`notes: \"...\"`) to check too")
	inSecret := flags.String("in-secret", "", "comma-separated keys whose values a rendered Secret must hold")
	nowhere := flags.String("nowhere", "", "comma-separated keys whose values must not be rendered at all")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		return errors.New("secrets: one rendered file expected")
	}
	secretKeys := splitList(*keys)
	if len(secretKeys) == 0 {
		return errors.New("secrets: -keys names no value")
	}
	var secrets []secretValue
	for _, file := range valuesFiles {
		found, err := secretValues(file, secretKeys)
		if err != nil {
			return err
		}
		secrets = append(secrets, found...)
	}
	data, err := os.ReadFile(flags.Arg(0))
	if err != nil {
		return err
	}
	docs, err := splitDocuments(data)
	if err != nil {
		return err
	}
	objects := make([]scanned, 0, len(docs)+1)
	for i, doc := range docs {
		object, err := scanDocument(doc)
		if err != nil {
			return fmt.Errorf("document %d: %v", i+1, err)
		}
		objects = append(objects, object)
	}
	if *notes != "" {
		text, err := os.ReadFile(*notes)
		if err != nil {
			return err
		}
		object, err := scanDocument(text)
		if err != nil {
			return fmt.Errorf("%s: %v", *notes, err)
		}
		object.name = "NOTES.txt"
		objects = append(objects, object)
	}

	var leaks []string
	place := map[string][]string{}
	for _, secret := range secrets {
		forms := encodings(secret.value)
		for _, object := range objects {
			if containsAny(object.public, forms) {
				leaks = append(leaks, fmt.Sprintf("secret %s (%s) appears outside a Secret: in %s", secret.key, secret.file, object.name))
			}
			for dataKey, value := range object.data {
				if value == secret.value {
					place[secret.key] = append(place[secret.key], fmt.Sprintf("%s key %s", object.name, dataKey))
				} else if containsAny([]string{value}, forms) {
					place[secret.key] = append(place[secret.key], fmt.Sprintf("%s key %s (within)", object.name, dataKey))
				}
			}
		}
	}
	for _, key := range splitList(*inSecret) {
		if !hasValue(secrets, key) {
			leaks = append(leaks, fmt.Sprintf("-in-secret %s: the values files set no %s", key, key))
		} else if len(place[key]) == 0 {
			leaks = append(leaks, fmt.Sprintf("secret %s is in no rendered Secret", key))
		}
	}
	for _, key := range splitList(*nowhere) {
		if !hasValue(secrets, key) {
			leaks = append(leaks, fmt.Sprintf("-nowhere %s: the values files set no %s", key, key))
		} else if len(place[key]) > 0 {
			leaks = append(leaks, fmt.Sprintf("secret %s is rendered although the chart should ignore it: in %s", key, strings.Join(place[key], ", ")))
		}
	}
	if len(leaks) > 0 {
		for _, leak := range leaks {
			fmt.Fprintf(os.Stderr, "  %s\n", leak)
		}
		return fmt.Errorf("%s: %d secret(s) misplaced", flags.Arg(0), len(leaks))
	}
	if len(secrets) == 0 {
		fmt.Printf("%s: no secret values set, nothing to look for\n", flags.Arg(0))
		return nil
	}
	var report []string
	for _, secret := range secrets {
		where := "not rendered"
		if len(place[secret.key]) > 0 {
			where = "only in " + strings.Join(place[secret.key], ", ")
		}
		report = append(report, fmt.Sprintf("%s %s", secret.key, where))
	}
	fmt.Printf("%s: %d object(s) searched; %s\n", flags.Arg(0), len(objects), strings.Join(report, "; "))
	return nil
}

// secretValues reads the values at the dotted keys of a values file; unset and empty ones are
// skipped, and a set one shorter than minSecretLength is an error.
func secretValues(file string, keys []string) ([]secretValue, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	var out []secretValue
	for _, key := range keys {
		raw, found := lookup(values, strings.Split(key, "."))
		if !found || raw == nil {
			continue
		}
		var value string
		switch typed := raw.(type) {
		case string:
			value = typed
		case map[string]any, []any:
			return nil, fmt.Errorf("%s: %s is not a scalar", file, key)
		default:
			value = fmt.Sprint(typed)
		}
		if value == "" {
			continue
		}
		if len(value) < minSecretLength {
			return nil, fmt.Errorf("%s: %s = %q is too short to look for (at least %d characters: use a distinctive sample value)", file, key, value, minSecretLength)
		}
		out = append(out, secretValue{key: key, file: filepath.Base(file), value: value})
	}
	return out, nil
}

// scanned is one rendered object: the text a reader of it sees (all of it, or a Secret's
// metadata only), and a Secret's decoded data.
type scanned struct {
	name   string
	public []string
	data   map[string]string
}

func scanDocument(doc []byte) (scanned, error) {
	var object map[string]any
	if err := yaml.Unmarshal(doc, &object); err != nil {
		return scanned{}, err
	}
	kind, _ := object["kind"].(string)
	meta, _ := object["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	out := scanned{name: fmt.Sprintf("%s %s", kind, name)}
	if kind != "Secret" {
		// The raw text and every string once decoded (the TOML inside a ConfigMap is one).
		out.public = append([]string{string(doc)}, allStrings(object)...)
		return out, nil
	}
	metaText, _ := yaml.Marshal(meta)
	out.public = append([]string{string(metaText)}, allStrings(meta)...)
	out.data = map[string]string{}
	for _, field := range []string{"data", "stringData"} {
		entries, _ := object[field].(map[string]any)
		for key, value := range entries {
			text := fmt.Sprint(value)
			if field == "data" {
				decoded, err := base64.StdEncoding.DecodeString(text)
				if err != nil {
					return scanned{}, fmt.Errorf("%s: data.%s is not base64: %v", out.name, key, err)
				}
				text = string(decoded)
			}
			out.data[key] = text
		}
	}
	return out, nil
}

// allStrings is every key and string value in a decoded YAML tree.
func allStrings(node any) []string {
	var out []string
	switch typed := node.(type) {
	case string:
		out = append(out, typed)
	case map[string]any:
		keys := make([]string, 0, len(typed))
		for key := range typed {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			out = append(out, key)
			out = append(out, allStrings(typed[key])...)
		}
	case []any:
		for _, item := range typed {
			out = append(out, allStrings(item)...)
		}
	}
	return out
}

// encodings are the forms in which a template could write a value: as is; inside a JSON or TOML
// basic string (Helm's toJson escapes <, > and & too); in base64, padded or not.
func encodings(value string) []string {
	forms := map[string]bool{value: true}
	quoted, _ := json.Marshal(value)
	forms[strings.Trim(string(quoted), `"`)] = true
	var plain strings.Builder
	encoder := json.NewEncoder(&plain)
	encoder.SetEscapeHTML(false)
	_ = encoder.Encode(value)
	forms[strings.Trim(strings.TrimSpace(plain.String()), `"`)] = true
	forms[base64.StdEncoding.EncodeToString([]byte(value))] = true
	forms[base64.RawStdEncoding.EncodeToString([]byte(value))] = true
	forms[base64.URLEncoding.EncodeToString([]byte(value))] = true
	out := make([]string, 0, len(forms))
	for form := range forms {
		out = append(out, form)
	}
	sort.Strings(out)
	return out
}

func containsAny(texts, forms []string) bool {
	for _, text := range texts {
		for _, form := range forms {
			if strings.Contains(text, form) {
				return true
			}
		}
	}
	return false
}

func hasValue(secrets []secretValue, key string) bool {
	for _, secret := range secrets {
		if secret.key == key {
			return true
		}
	}
	return false
}

type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(value string) error {
	*l = append(*l, value)
	return nil
}
