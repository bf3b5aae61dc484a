package main

import (
	"fmt"
	"path"
	"reflect"
	"regexp"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// problems collects findings, each prefixed with the object it is about.
type problems struct {
	errs []error
}

func (p *problems) add(object, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", object, fmt.Sprintf(format, args...)))
}

func (p *problems) addStrings(object, what string, messages []string) {
	for _, message := range messages {
		p.add(object, "%s: %s", what, message)
	}
}

func (p *problems) addFieldErrors(object string, list field.ErrorList) {
	for _, err := range list {
		p.add(object, "%v", err)
	}
}

// validate checks the objects one by one and against each other.
func (s *objectSet) validate() []error {
	p := &problems{}
	if len(s.deployments) != 1 {
		p.add("chart", "%d Deployments rendered, exactly one expected", len(s.deployments))
		return p.errs
	}
	if len(s.configMaps) != 1 {
		p.add("chart", "%d ConfigMaps rendered, exactly one expected", len(s.configMaps))
		return p.errs
	}
	for _, cm := range s.configMaps {
		s.checkMeta(p, "ConfigMap", &cm.ObjectMeta, false)
		for key := range cm.Data {
			p.addStrings("ConfigMap "+cm.Name, "key "+key, validation.IsConfigMapKey(key))
		}
	}
	for _, secret := range s.secrets {
		s.checkMeta(p, "Secret", &secret.ObjectMeta, false)
		for key := range secret.Data {
			p.addStrings("Secret "+secret.Name, "key "+key, validation.IsConfigMapKey(key))
		}
	}
	for _, svc := range s.services {
		s.checkMeta(p, "Service", &svc.ObjectMeta, true)
		s.checkService(p, svc)
	}
	s.checkDeployment(p)
	for _, sm := range s.serviceMonitors {
		s.checkMeta(p, "ServiceMonitor", &sm.ObjectMeta, false)
		s.checkServiceMonitor(p, sm)
	}
	for _, rule := range s.prometheusRules {
		s.checkMeta(p, "PrometheusRule", &rule.ObjectMeta, false)
		s.checkPrometheusRule(p, rule)
	}
	if len(p.errs) == 0 {
		s.checkConfig(p)
	}
	return p.errs
}

func (s *objectSet) checkMeta(p *problems, kind string, meta *metav1.ObjectMeta, dns1035 bool) {
	object := kind + " " + meta.Name
	if meta.Name == "" {
		p.add(kind, "metadata.name is empty")
	} else if dns1035 {
		p.addStrings(object, "metadata.name", validation.IsDNS1035Label(meta.Name))
	} else {
		p.addStrings(object, "metadata.name", validation.IsDNS1123Subdomain(meta.Name))
	}
	p.addFieldErrors(object, metavalidation.ValidateLabels(meta.Labels, field.NewPath("metadata", "labels")))
	p.addFieldErrors(object, apivalidation.ValidateAnnotations(meta.Annotations, field.NewPath("metadata", "annotations")))
}

func (s *objectSet) checkDeployment(p *problems) {
	d := s.deployments[0]
	object := "Deployment " + d.Name
	s.checkMeta(p, "Deployment", &d.ObjectMeta, false)
	if d.Spec.Replicas != nil && *d.Spec.Replicas < 0 {
		p.add(object, "spec.replicas is negative")
	}
	template := d.Spec.Template
	p.addFieldErrors(object, metavalidation.ValidateLabels(template.Labels, field.NewPath("spec", "template", "metadata", "labels")))
	p.addFieldErrors(object, apivalidation.ValidateAnnotations(template.Annotations, field.NewPath("spec", "template", "metadata", "annotations")))
	if d.Spec.Selector == nil || (len(d.Spec.Selector.MatchLabels) == 0 && len(d.Spec.Selector.MatchExpressions) == 0) {
		p.add(object, "spec.selector is empty")
	} else if selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil {
		p.add(object, "spec.selector: %v", err)
	} else if !selector.Matches(labels.Set(template.Labels)) {
		p.add(object, "spec.selector %v does not select the pod template's labels %v", selector, template.Labels)
	}
	spec := template.Spec
	if len(spec.Containers) != 1 {
		p.add(object, "%d containers, exactly one expected", len(spec.Containers))
		return
	}
	volumes := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		volume := &spec.Volumes[i]
		s.checkVolume(p, object, volume)
		if volumes[volume.Name] != nil {
			p.add(object, "volume %q declared twice", volume.Name)
		}
		volumes[volume.Name] = volume
	}
	for _, secret := range spec.ImagePullSecrets {
		p.addStrings(object, "imagePullSecrets", validation.IsDNS1123Subdomain(secret.Name))
	}
	s.checkContainer(p, object, &spec.Containers[0], volumes)
	s.checkHardening(p, object, spec.SecurityContext, spec.Containers[0].SecurityContext, spec.AutomountServiceAccountToken)
}

func (s *objectSet) checkContainer(p *problems, object string, c *corev1.Container, volumes map[string]*corev1.Volume) {
	object = fmt.Sprintf("%s container %q", object, c.Name)
	p.addStrings(object, "name", validation.IsDNS1123Label(c.Name))
	if c.Image == "" || strings.HasSuffix(c.Image, ":") {
		p.add(object, "image %q has no repository or tag", c.Image)
	}
	ports := map[string]int32{}
	numbers := map[int32]bool{}
	for _, port := range c.Ports {
		p.addStrings(object, "port name", validation.IsValidPortName(port.Name))
		p.addStrings(object, "containerPort", validation.IsValidPortNum(int(port.ContainerPort)))
		if port.Protocol != "" && port.Protocol != corev1.ProtocolTCP && port.Protocol != corev1.ProtocolUDP && port.Protocol != corev1.ProtocolSCTP {
			p.add(object, "port %q: protocol %q", port.Name, port.Protocol)
		}
		if _, seen := ports[port.Name]; seen {
			p.add(object, "port name %q used twice", port.Name)
		}
		if numbers[port.ContainerPort] {
			p.add(object, "containerPort %d used twice", port.ContainerPort)
		}
		ports[port.Name] = port.ContainerPort
		numbers[port.ContainerPort] = true
	}
	envSeen := map[string]bool{}
	for _, env := range c.Env {
		p.addStrings(object, "env "+env.Name, validation.IsEnvVarName(env.Name))
		if envSeen[env.Name] {
			p.add(object, "env %s set twice", env.Name)
		}
		envSeen[env.Name] = true
	}
	if value, ok := envValue(c, "TELEPORT_PLUGIN_FAIL_FAST"); !ok || value != "true" {
		p.add(object, "TELEPORT_PLUGIN_FAIL_FAST must be \"true\" (got %q)", value)
	}
	for name, probe := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe} {
		if probe != nil {
			checkProbe(p, object+" "+name, probe, ports)
		}
	}
	mountPaths := map[string]bool{}
	for _, mount := range c.VolumeMounts {
		if volumes[mount.Name] == nil {
			p.add(object, "volumeMount %q names no volume of the pod", mount.Name)
		}
		if !path.IsAbs(mount.MountPath) {
			p.add(object, "volumeMount %q: mountPath %q is not absolute", mount.Name, mount.MountPath)
		}
		if mountPaths[path.Clean(mount.MountPath)] {
			p.add(object, "mountPath %q used twice", mount.MountPath)
		}
		mountPaths[path.Clean(mount.MountPath)] = true
		if mount.SubPath != "" {
			if path.IsAbs(mount.SubPath) || strings.Contains(mount.SubPath, "..") {
				p.add(object, "volumeMount %q: subPath %q must be relative, without ..", mount.Name, mount.SubPath)
			}
			if volume := volumes[mount.Name]; volume != nil {
				if keys, known := s.volumeFiles(volume); known && !keys[mount.SubPath] {
					p.add(object, "volumeMount %q: subPath %q is not a key of the volume's object (has %v)", mount.Name, mount.SubPath, sortedKeys(keys))
				}
			}
		}
	}
}

func envValue(c *corev1.Container, name string) (string, bool) {
	for _, env := range c.Env {
		if env.Name == name {
			return env.Value, true
		}
	}
	return "", false
}

func checkProbe(p *problems, object string, probe *corev1.Probe, ports map[string]int32) {
	handlers := 0
	if probe.HTTPGet != nil {
		handlers++
		if !strings.HasPrefix(probe.HTTPGet.Path, "/") {
			p.add(object, "httpGet.path %q does not start with /", probe.HTTPGet.Path)
		}
		checkPortRef(p, object, probe.HTTPGet.Port, ports)
	}
	if probe.TCPSocket != nil {
		handlers++
		checkPortRef(p, object, probe.TCPSocket.Port, ports)
	}
	if probe.Exec != nil {
		handlers++
	}
	if probe.GRPC != nil {
		handlers++
	}
	if handlers != 1 {
		p.add(object, "%d handlers, exactly one expected", handlers)
	}
	for name, value := range map[string]int32{
		"initialDelaySeconds": probe.InitialDelaySeconds, "periodSeconds": probe.PeriodSeconds,
		"timeoutSeconds": probe.TimeoutSeconds, "failureThreshold": probe.FailureThreshold,
		"successThreshold": probe.SuccessThreshold,
	} {
		if value < 0 {
			p.add(object, "%s is negative", name)
		}
	}
}

func checkPortRef(p *problems, object string, port intstr.IntOrString, ports map[string]int32) {
	if port.Type == intstr.String {
		if _, ok := ports[port.StrVal]; !ok {
			p.add(object, "port %q is not a port of the container", port.StrVal)
		}
		return
	}
	p.addStrings(object, "port", validation.IsValidPortNum(port.IntValue()))
}

// checkVolume makes sure that a volume has exactly one source and that the objects it names
// are well named and, when the chart renders them, exist with the keys it maps.
func (s *objectSet) checkVolume(p *problems, object string, v *corev1.Volume) {
	object = fmt.Sprintf("%s volume %q", object, v.Name)
	p.addStrings(object, "name", validation.IsDNS1123Label(v.Name))
	if sources := setFields(reflect.ValueOf(v.VolumeSource)); sources != 1 {
		p.add(object, "%d sources, exactly one expected", sources)
	}
	checkMode := func(mode *int32) {
		if mode != nil && (*mode < 0 || *mode > 0o777) {
			p.add(object, "mode %o is out of range", *mode)
		}
	}
	checkItems := func(items []corev1.KeyToPath, keys map[string]bool, known bool) {
		for _, item := range items {
			p.addStrings(object, "item key", validation.IsConfigMapKey(item.Key))
			if path.IsAbs(item.Path) || strings.Contains(item.Path, "..") || item.Path == "" {
				p.add(object, "item path %q must be relative, without ..", item.Path)
			}
			if known && !keys[item.Key] {
				p.add(object, "item key %q is not in the object (has %v)", item.Key, sortedKeys(keys))
			}
			checkMode(item.Mode)
		}
	}
	switch {
	case v.Secret != nil:
		if v.Secret.SecretName == "" {
			p.add(object, "secretName is empty")
		} else {
			p.addStrings(object, "secretName", validation.IsDNS1123Subdomain(v.Secret.SecretName))
		}
		checkMode(v.Secret.DefaultMode)
		keys, known := s.secretKeys(v.Secret.SecretName)
		checkItems(v.Secret.Items, keys, known)
	case v.ConfigMap != nil:
		keys, known := s.configMapKeys(v.ConfigMap.Name)
		if !known {
			p.add(object, "configMap %q is not rendered by the chart", v.ConfigMap.Name)
		}
		checkMode(v.ConfigMap.DefaultMode)
		checkItems(v.ConfigMap.Items, keys, known)
	case v.Projected != nil:
		checkMode(v.Projected.DefaultMode)
		if len(v.Projected.Sources) == 0 {
			p.add(object, "a projected volume without sources")
		}
		paths := map[string]bool{}
		for i, source := range v.Projected.Sources {
			where := fmt.Sprintf("source %d", i+1)
			if source.Secret == nil || setFields(reflect.ValueOf(source)) != 1 {
				p.add(object, "%s: one Secret expected, and nothing else", where)
				continue
			}
			if source.Secret.Name == "" {
				p.add(object, "%s: secret name is empty", where)
			} else {
				p.addStrings(object, where+" secret name", validation.IsDNS1123Subdomain(source.Secret.Name))
			}
			if len(source.Secret.Items) == 0 {
				p.add(object, "%s: no items (every key of Secret %s would be a file)", where, source.Secret.Name)
			}
			keys, known := s.secretKeys(source.Secret.Name)
			checkItems(source.Secret.Items, keys, known)
			for _, item := range source.Secret.Items {
				if paths[item.Path] {
					p.add(object, "file %q projected twice", item.Path)
				}
				paths[item.Path] = true
			}
		}
	case v.EmptyDir != nil:
		if v.EmptyDir.Medium != "" && v.EmptyDir.Medium != corev1.StorageMediumMemory {
			p.add(object, "emptyDir medium %q", v.EmptyDir.Medium)
		}
	}
}

// setFields counts the fields of a struct of pointers (a volume's or a projection's sources) that
// are set.
func setFields(value reflect.Value) int {
	n := 0
	for i := 0; i < value.NumField(); i++ {
		if !value.Field(i).IsNil() {
			n++
		}
	}
	return n
}

func (s *objectSet) secretKeys(name string) (map[string]bool, bool) {
	for _, secret := range s.secrets {
		if secret.Name == name {
			keys := map[string]bool{}
			for key := range secret.Data {
				keys[key] = true
			}
			for key := range secret.StringData {
				keys[key] = true
			}
			return keys, true
		}
	}
	return nil, false
}

func (s *objectSet) configMapKeys(name string) (map[string]bool, bool) {
	for _, cm := range s.configMaps {
		if cm.Name == name {
			keys := map[string]bool{}
			for key := range cm.Data {
				keys[key] = true
			}
			for key := range cm.BinaryData {
				keys[key] = true
			}
			return keys, true
		}
	}
	return nil, false
}

// volumeFiles is the set of file names a volume shows, when the chart renders its object
// (known); a Secret the user provides is not known.
func (s *objectSet) volumeFiles(v *corev1.Volume) (map[string]bool, bool) {
	var keys map[string]bool
	var known bool
	var items []corev1.KeyToPath
	switch {
	case v.Projected != nil:
		// The chart maps every key of a projected volume to a file (checkVolume insists).
		files := map[string]bool{}
		for _, source := range v.Projected.Sources {
			if source.Secret == nil {
				continue
			}
			for _, item := range source.Secret.Items {
				files[item.Path] = true
			}
		}
		return files, true
	case v.Secret != nil:
		keys, known = s.secretKeys(v.Secret.SecretName)
		items = v.Secret.Items
	case v.ConfigMap != nil:
		keys, known = s.configMapKeys(v.ConfigMap.Name)
		items = v.ConfigMap.Items
	default:
		return nil, false
	}
	if len(items) > 0 {
		files := map[string]bool{}
		for _, item := range items {
			files[item.Path] = true
		}
		return files, true
	}
	return keys, known
}

func (s *objectSet) checkService(p *problems, svc *corev1.Service) {
	object := "Service " + svc.Name
	switch svc.Spec.Type {
	case "", corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
	default:
		p.add(object, "type %q is not ClusterIP, NodePort or LoadBalancer", svc.Spec.Type)
	}
	if len(svc.Spec.Selector) == 0 {
		p.add(object, "spec.selector is empty")
	}
	pod := s.deployments[0].Spec.Template
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)) {
		p.add(object, "spec.selector %v does not select the plugin's pods %v", svc.Spec.Selector, pod.Labels)
	}
	if len(svc.Spec.Ports) == 0 {
		p.add(object, "no ports")
	}
	containerPorts := map[string]int32{}
	numbers := map[int32]bool{}
	for _, c := range pod.Spec.Containers {
		for _, port := range c.Ports {
			containerPorts[port.Name] = port.ContainerPort
			numbers[port.ContainerPort] = true
		}
	}
	names := map[string]bool{}
	for _, port := range svc.Spec.Ports {
		if len(svc.Spec.Ports) > 1 || port.Name != "" {
			p.addStrings(object, "port name", validation.IsDNS1123Label(port.Name))
		}
		if names[port.Name] {
			p.add(object, "port name %q used twice", port.Name)
		}
		names[port.Name] = true
		p.addStrings(object, "port", validation.IsValidPortNum(int(port.Port)))
		switch {
		case port.TargetPort.Type == intstr.String && port.TargetPort.StrVal != "":
			if _, ok := containerPorts[port.TargetPort.StrVal]; !ok {
				p.add(object, "targetPort %q is not a port of the plugin's container", port.TargetPort.StrVal)
			}
		case port.TargetPort.Type == intstr.Int && port.TargetPort.IntVal != 0:
			if !numbers[port.TargetPort.IntVal] {
				p.add(object, "targetPort %d is not a port of the plugin's container", port.TargetPort.IntVal)
			}
		default:
			if !numbers[port.Port] {
				p.add(object, "port %d (no targetPort) is not a port of the plugin's container", port.Port)
			}
		}
	}
}

var promDuration = regexp.MustCompile(`^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$`)

func (s *objectSet) checkServiceMonitor(p *problems, sm *monitoringv1.ServiceMonitor) {
	object := "ServiceMonitor " + sm.Name
	selector, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		p.add(object, "spec.selector: %v", err)
		return
	}
	if selector.Empty() {
		p.add(object, "spec.selector is empty: it would select every Service")
	}
	var selected []*corev1.Service
	for _, svc := range s.services {
		if selector.Matches(labels.Set(svc.Labels)) {
			selected = append(selected, svc)
		}
	}
	if len(selected) != 1 {
		p.add(object, "selects %d of the chart's Services, exactly one expected", len(selected))
		return
	}
	if len(sm.Spec.Endpoints) == 0 {
		p.add(object, "no endpoints")
	}
	for _, endpoint := range sm.Spec.Endpoints {
		found := false
		for _, port := range selected[0].Spec.Ports {
			if endpoint.Port != "" && port.Name == endpoint.Port {
				found = true
			}
		}
		if !found {
			p.add(object, "endpoint port %q is not a port of Service %s", endpoint.Port, selected[0].Name)
		}
		if endpoint.Path != "" && !strings.HasPrefix(endpoint.Path, "/") {
			p.add(object, "endpoint path %q does not start with /", endpoint.Path)
		}
		for name, value := range map[string]monitoringv1.Duration{"interval": endpoint.Interval, "scrapeTimeout": endpoint.ScrapeTimeout} {
			if value != "" && (!promDuration.MatchString(string(value)) || value == "0") {
				p.add(object, "endpoint %s %q is not a duration", name, value)
			}
		}
	}
}

// checkHardening holds the chart to what its defaults promise: no root, no privilege
// escalation, a read-only root filesystem, no capabilities, no service account token.
func (s *objectSet) checkHardening(p *problems, object string, pod *corev1.PodSecurityContext, c *corev1.SecurityContext, automount *bool) {
	nonRoot := (c != nil && c.RunAsNonRoot != nil && *c.RunAsNonRoot) || (pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot)
	if !nonRoot {
		p.add(object, "runAsNonRoot is not true")
	}
	if c == nil {
		p.add(object, "the container has no securityContext")
		return
	}
	if c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
		p.add(object, "readOnlyRootFilesystem is not true")
	}
	if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		p.add(object, "allowPrivilegeEscalation is not false")
	}
	if c.Capabilities == nil || len(c.Capabilities.Drop) != 1 || c.Capabilities.Drop[0] != "ALL" || len(c.Capabilities.Add) != 0 {
		p.add(object, "capabilities must drop ALL and add none")
	}
	if automount == nil || *automount {
		p.add(object, "automountServiceAccountToken is not false")
	}
}
