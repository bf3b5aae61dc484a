package main

import (
	"os"
	"reflect"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

// checkPrometheusRule holds a rendered PrometheusRule to the alert rules the project ships
// (deploy/monitoring/, which promtool checks and tests): the chart carries a copy, and a copy
// that drifted, or a template that mangled it, would install rules nobody tested.
func (s *objectSet) checkPrometheusRule(p *problems, rule *monitoringv1.PrometheusRule) {
	object := "PrometheusRule " + rule.Name
	if len(rule.Spec.Groups) == 0 {
		p.add(object, "no rule groups")
	}
	for _, group := range rule.Spec.Groups {
		for _, r := range group.Rules {
			if r.Alert == "" && r.Record == "" {
				p.add(object, "group %s: a rule with neither alert nor record", group.Name)
			}
			if r.Expr.String() == "" {
				p.add(object, "group %s: rule %s has no expr", group.Name, r.Alert+r.Record)
			}
		}
	}
	if s.rulesFile == "" {
		return
	}
	data, err := os.ReadFile(s.rulesFile)
	if err != nil {
		p.add(object, "%v", err)
		return
	}
	// Strict: the shipped file may use only fields the Prometheus Operator knows.
	var shipped monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(data, &shipped); err != nil {
		p.add(object, "%s as a PrometheusRule spec: %v", s.rulesFile, err)
		return
	}
	if !reflect.DeepEqual(rule.Spec, shipped) {
		p.add(object, "spec differs from %s (copy it to the chart's files/ again)", s.rulesFile)
	}
}
