package main

import (
	"fmt"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// objectSet is every object of one rendering, by kind.
type objectSet struct {
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	services        []*corev1.Service
	deployments     []*appsv1.Deployment
	serviceMonitors []*monitoringv1.ServiceMonitor
	prometheusRules []*monitoringv1.PrometheusRule
	// rulesFile is the alert rules file a PrometheusRule must carry ("": not compared).
	rulesFile string
	// configText is the plugin's TOML config and config its decoding, filled in by validate.
	configText string
	config     map[string]any
}

// decodeAll decodes each document into the Go type of its apiVersion and kind. Unknown fields,
// duplicated keys and wrong value types are errors, as is a kind the chart is not meant to make.
func decodeAll(docs [][]byte) (*objectSet, []error) {
	set := &objectSet{}
	var errs []error
	for i, doc := range docs {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			errs = append(errs, fmt.Errorf("document %d: not YAML: %v", i+1, err))
			continue
		}
		var target any
		switch meta.APIVersion + " " + meta.Kind {
		case "v1 ConfigMap":
			obj := &corev1.ConfigMap{}
			set.configMaps = append(set.configMaps, obj)
			target = obj
		case "v1 Secret":
			obj := &corev1.Secret{}
			set.secrets = append(set.secrets, obj)
			target = obj
		case "v1 Service":
			obj := &corev1.Service{}
			set.services = append(set.services, obj)
			target = obj
		case "apps/v1 Deployment":
			obj := &appsv1.Deployment{}
			set.deployments = append(set.deployments, obj)
			target = obj
		case "monitoring.coreos.com/v1 ServiceMonitor":
			obj := &monitoringv1.ServiceMonitor{}
			set.serviceMonitors = append(set.serviceMonitors, obj)
			target = obj
		case "monitoring.coreos.com/v1 PrometheusRule":
			obj := &monitoringv1.PrometheusRule{}
			set.prometheusRules = append(set.prometheusRules, obj)
			target = obj
		default:
			errs = append(errs, fmt.Errorf("document %d: unexpected apiVersion %q kind %q", i+1, meta.APIVersion, meta.Kind))
			continue
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			errs = append(errs, fmt.Errorf("%s (document %d): %v", meta.Kind, i+1, err))
		}
	}
	return set, errs
}

func (s *objectSet) count(kind string) int {
	switch kind {
	case "ConfigMap":
		return len(s.configMaps)
	case "Secret":
		return len(s.secrets)
	case "Service":
		return len(s.services)
	case "Deployment":
		return len(s.deployments)
	case "ServiceMonitor":
		return len(s.serviceMonitors)
	case "PrometheusRule":
		return len(s.prometheusRules)
	}
	return 0
}

func (s *objectSet) summary() string {
	counts := map[string]int{
		"ConfigMap":      len(s.configMaps),
		"Secret":         len(s.secrets),
		"Service":        len(s.services),
		"Deployment":     len(s.deployments),
		"ServiceMonitor": len(s.serviceMonitors),
		"PrometheusRule": len(s.prometheusRules),
	}
	var parts []string
	for kind, n := range counts {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, kind))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// pluginContainer is the plugin's container; validate has made sure there is exactly one
// Deployment with one container.
func (s *objectSet) pluginContainer() *corev1.Container {
	return &s.deployments[0].Spec.Template.Spec.Containers[0]
}
