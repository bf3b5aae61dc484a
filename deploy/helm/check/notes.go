package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// runNotes prints the chart's NOTES text, rendered by the caller into a document
// `notes: "<text>"`, and fails on the marks of a missing value or a bad format verb.
func runNotes(args []string) error {
	if len(args) != 1 {
		return errors.New("notes: one rendered file expected")
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	docs, err := splitDocuments(data)
	if err != nil {
		return err
	}
	if len(docs) != 1 {
		return fmt.Errorf("notes: %d documents, one expected", len(docs))
	}
	var rendered struct {
		Notes string `json:"notes"`
	}
	if err := yaml.UnmarshalStrict(docs[0], &rendered); err != nil {
		return fmt.Errorf("notes: %v", err)
	}
	if strings.TrimSpace(rendered.Notes) == "" {
		return errors.New("notes: empty")
	}
	for _, mark := range []string{"<no value>", "%!", "<nil>", "map["} {
		if strings.Contains(rendered.Notes, mark) {
			return fmt.Errorf("notes: %q in the text:\n%s", mark, rendered.Notes)
		}
	}
	fmt.Print(rendered.Notes)
	if !strings.HasSuffix(rendered.Notes, "\n") {
		fmt.Println()
	}
	return nil
}
