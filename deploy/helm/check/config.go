package main

import (
	"fmt"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	corev1 "k8s.io/api/core/v1"
)

const (
	configKey  = "teleport-jira.toml"
	configPath = "/etc/teleport-jira.toml"
)

// checkConfig reads the plugin's TOML from the ConfigMap and checks it against the pod: the
// file is mounted where the plugin reads it, every file it names is mounted, and its listeners
// are the container's named ports.
func (s *objectSet) checkConfig(p *problems) {
	cm := s.configMaps[0]
	object := "ConfigMap " + cm.Name
	text, ok := cm.Data[configKey]
	if !ok {
		p.add(object, "has no %s", configKey)
		return
	}
	s.configText = text
	var config map[string]any
	if _, err := toml.Decode(text, &config); err != nil {
		p.add(object, "%s is not TOML: %v", configKey, err)
		return
	}
	s.config = config
	c := s.pluginContainer()
	pod := &s.deployments[0].Spec.Template.Spec
	object = "config"

	configMount := findMount(c, configPath)
	if configMount == nil || configMount.SubPath != configKey || mountVolume(pod, configMount).ConfigMap == nil ||
		mountVolume(pod, configMount).ConfigMap.Name != cm.Name {
		p.add(object, "%s is not mounted from ConfigMap %s key %s", configPath, cm.Name, configKey)
	}
	if !argsName(c.Args, configPath) {
		p.add(object, "the container's args %v do not start the plugin with --config %s", c.Args, configPath)
	}

	files := map[string]string{
		"teleport.identity":    str(config, "teleport", "identity"),
		"teleport.client_key":  str(config, "teleport", "client_key"),
		"teleport.client_crt":  str(config, "teleport", "client_crt"),
		"teleport.root_cas":    str(config, "teleport", "root_cas"),
		"http.https_key_file":  str(config, "http", "https_key_file"),
		"http.https_cert_file": str(config, "http", "https_cert_file"),
	}
	secretFiles := map[string]string{}
	// The secrets: the chart gives each as a file of a Secret volume, never as a value in the
	// ConfigMap (api_token and webhook_secret are values unless they start with "/").
	for _, key := range []string{"jira.api_token", "http.webhook_secret"} {
		value, found := lookup(config, strings.Split(key, "."))
		text, _ := value.(string)
		switch {
		case !found:
		case strings.HasPrefix(text, "/"):
			files[key] = text
			secretFiles[key] = text
		default:
			p.add(object, "%s is a value, not a file: the secret would be in the ConfigMap", key)
		}
	}
	if _, found := lookup(config, []string{"http", "basic_auth", "password"}); found {
		p.add(object, "http.basic_auth.password is set: the password would be in the ConfigMap (use password_file)")
	}
	if value, found := lookup(config, []string{"http", "basic_auth", "password_file"}); found {
		text, _ := value.(string)
		files["http.basic_auth.password_file"] = text
		secretFiles["http.basic_auth.password_file"] = text
		if text == "" {
			p.add(object, "http.basic_auth.password_file is empty")
		}
	}
	for _, key := range sortedKeys(toSet(secretFiles)) {
		if mount := coveringMount(c, secretFiles[key]); mount != nil && !secretBacked(mountVolume(pod, mount)) {
			p.add(object, "%s = %q: volume %q is not made of Secrets", key, secretFiles[key], mount.Name)
		}
	}
	for _, key := range sortedKeys(toSet(files)) {
		if file := files[key]; file != "" {
			if problem := s.fileProblem(pod, c, file); problem != "" {
				p.add(object, "%s = %q: %s", key, file, problem)
			}
		}
	}
	if str(config, "teleport", "identity") != "" {
		if refresh, _ := section(config, "teleport")["refresh_identity"].(bool); !refresh {
			p.add(object, "teleport.refresh_identity is not true: a renewed identity would not be read")
		}
	}
	if output := str(config, "log", "output"); strings.HasPrefix(output, "/") {
		if mount := coveringMount(c, output); mount == nil || mount.ReadOnly || mountVolume(pod, mount).EmptyDir == nil {
			p.add(object, "log.output = %q is not on a writable volume (the root filesystem is read-only)", output)
		}
	}

	tls := files["http.https_cert_file"] != ""
	if insecure := hasArg(c.Args, "--insecure-no-tls"); insecure == tls {
		p.add(object, "https_cert_file set: %v, but --insecure-no-tls given: %v", tls, insecure)
	}
	ports := map[string]int32{}
	for _, port := range c.Ports {
		ports[port.Name] = port.ContainerPort
	}
	listen := str(config, "http", "listen_addr")
	if listen == "" {
		listen = ":8081"
	}
	if port, err := addrPort(listen); err != nil {
		p.add(object, "http.listen_addr %q: %v", listen, err)
	} else if ports["webhook"] != port {
		p.add(object, "http.listen_addr %q is not the container's webhook port %d", listen, ports["webhook"])
	}
	metrics := str(config, "metrics", "listen_addr")
	metricsPort, hasMetricsPort := ports["metrics"]
	switch {
	case metrics == "" && hasMetricsPort:
		p.add(object, "no [metrics] listen_addr, but the container has a metrics port")
	case metrics != "":
		if port, err := addrPort(metrics); err != nil {
			p.add(object, "metrics.listen_addr %q: %v", metrics, err)
		} else if !hasMetricsPort || port != metricsPort {
			p.add(object, "metrics.listen_addr %q is not the container's metrics port %d", metrics, metricsPort)
		}
	}
	for name, probe := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
		if probe == nil {
			continue
		}
		if probe.HTTPGet == nil || probe.HTTPGet.Port.StrVal != "metrics" || probe.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			p.add(object, "%s must be a plain httpGet on the metrics port", name)
		}
	}
	want := map[string]string{"livenessProbe": "/status", "readinessProbe": "/readyz"}
	if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != want["livenessProbe"] {
		p.add(object, "livenessProbe path %q, want %s", c.LivenessProbe.HTTPGet.Path, want["livenessProbe"])
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != want["readinessProbe"] {
		p.add(object, "readinessProbe path %q, want %s", c.ReadinessProbe.HTTPGet.Path, want["readinessProbe"])
	}
}

// fileProblem says why the container would not find file, or "" when a volume provides it.
func (s *objectSet) fileProblem(pod *corev1.PodSpec, c *corev1.Container, file string) string {
	mount := coveringMount(c, file)
	if mount == nil {
		return "no volume is mounted there"
	}
	volume := mountVolume(pod, mount)
	if volume == nil {
		return fmt.Sprintf("mount %q has no volume", mount.Name)
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(file, mount.MountPath), "/")
	if mount.SubPath != "" {
		if rest != "" {
			return fmt.Sprintf("%s is a single file (subPath %s)", mount.MountPath, mount.SubPath)
		}
		return ""
	}
	if rest == "" {
		return fmt.Sprintf("%s is a directory", mount.MountPath)
	}
	if names, known := s.volumeFiles(volume); known && !names[rest] {
		return fmt.Sprintf("volume %q has no file %q (has %v)", volume.Name, rest, sortedKeys(names))
	}
	return ""
}

// secretBacked says whether a volume shows only Secrets: a secret volume, or a projected one
// whose every source is a Secret.
func secretBacked(v *corev1.Volume) bool {
	switch {
	case v.Secret != nil:
		return true
	case v.Projected != nil:
		for _, source := range v.Projected.Sources {
			if source.Secret == nil {
				return false
			}
		}
		return len(v.Projected.Sources) > 0
	}
	return false
}

// coveringMount is the mount with the longest mountPath that contains file.
func coveringMount(c *corev1.Container, file string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i := range c.VolumeMounts {
		mount := &c.VolumeMounts[i]
		dir := path.Clean(mount.MountPath)
		if file == dir || strings.HasPrefix(file, dir+"/") {
			if best == nil || len(dir) > len(path.Clean(best.MountPath)) {
				best = mount
			}
		}
	}
	return best
}

func findMount(c *corev1.Container, mountPath string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if path.Clean(c.VolumeMounts[i].MountPath) == mountPath {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func mountVolume(pod *corev1.PodSpec, mount *corev1.VolumeMount) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == mount.Name {
			return &pod.Volumes[i]
		}
	}
	return &corev1.Volume{}
}

func argsName(args []string, config string) bool {
	if len(args) == 0 || args[0] != "start" {
		return false
	}
	for i, arg := range args {
		if (arg == "--config" || arg == "-c") && i+1 < len(args) && args[i+1] == config {
			return true
		}
		if arg == "--config="+config {
			return true
		}
	}
	return false
}

func hasArg(args []string, want string) bool {
	for _, arg := range args {
		if arg == want {
			return true
		}
	}
	return false
}

// addrPort reads the port of a Go-style "[host]:port" listen address.
func addrPort(addr string) (int32, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return 0, err
	}
	return int32(n), nil
}

func section(config map[string]any, name string) map[string]any {
	table, _ := config[name].(map[string]any)
	return table
}

func str(config map[string]any, table, key string) string {
	value, _ := section(config, table)[key].(string)
	return value
}

func toSet(m map[string]string) map[string]bool {
	set := map[string]bool{}
	for key := range m {
		set[key] = true
	}
	return set
}

func sortedKeys(set map[string]bool) []string {
	keys := make([]string, 0, len(set))
	for key := range set {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	return keys
}
