{{/* Name of the chart, or nameOverride; at most 63 characters as Kubernetes names require. */}}
{{- define "teleport-jira.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: fullnameOverride, else "<release>-<name>", or the release
name alone when it already contains the name.
*/}}
{{- define "teleport-jira.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "teleport-jira.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "teleport-jira.selectorLabels" -}}
app.kubernetes.io/name: {{ include "teleport-jira.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "teleport-jira.labels" -}}
helm.sh/chart: {{ include "teleport-jira.chart" . }}
{{ include "teleport-jira.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* A TOML basic string: JSON's string escapes are all valid in TOML. */}}
{{- define "teleport-jira.toml" -}}
{{- toString . | toJson }}
{{- end }}

{{/* Where the pod finds its files; the identity directory is the Go chart's. */}}
{{- define "teleport-jira.dir" -}}/var/lib/teleport/plugins/jira{{- end }}
{{- define "teleport-jira.identityDir" -}}{{ include "teleport-jira.dir" . }}/teleport-identity{{- end }}
{{/*
The Jira token, the webhook secret and the basic-auth password, as files of one directory: a
projected volume of the Secrets that hold them (the chart's own and any named in the values).
A directory rather than subPath mounts, so that a rotated Secret reaches the running pod, where
the plugin re-reads the files (every tls_files_check_interval, and on SIGHUP).
*/}}
{{- define "teleport-jira.secretsDir" -}}{{ include "teleport-jira.dir" . }}/secrets{{- end }}
{{- define "teleport-jira.apiTokenFile" -}}{{ include "teleport-jira.secretsDir" . }}/api_token{{- end }}
{{- define "teleport-jira.webhookSecretFile" -}}{{ include "teleport-jira.secretsDir" . }}/webhook_secret{{- end }}
{{- define "teleport-jira.basicAuthPasswordFile" -}}{{ include "teleport-jira.secretsDir" . }}/basic_auth_password{{- end }}
{{- define "teleport-jira.tlsDir" -}}{{ include "teleport-jira.dir" . }}/tls{{- end }}

{{/* Secret with the identity file: identityFromSecret, the newer Go chart's identitySecretName, or a default. */}}
{{- define "teleport-jira.identitySecretName" -}}
{{- coalesce .Values.teleport.identityFromSecret .Values.teleport.identitySecretName (printf "%s-identity" (include "teleport-jira.fullname" .)) }}
{{- end }}

{{- define "teleport-jira.identitySecretPath" -}}
{{- default "auth_id" .Values.teleport.identitySecretPath }}
{{- end }}

{{/*
The Secret this chart creates for the secrets given as values (Jira token, webhook secret,
basic-auth password). Secret values go into it and nowhere else: the config names the files.
*/}}
{{- define "teleport-jira.ownSecretName" -}}
{{- printf "%s-secret" (include "teleport-jira.fullname" .) }}
{{- end }}

{{- define "teleport-jira.apiTokenSecretName" -}}
{{- default (include "teleport-jira.ownSecretName" .) .Values.jira.apiTokenFromSecret }}
{{- end }}

{{- define "teleport-jira.apiTokenSecretKey" -}}
{{- if .Values.jira.apiTokenFromSecret }}{{ default "jiraApiToken" .Values.jira.apiTokenSecretPath }}{{ else }}jiraApiToken{{ end }}
{{- end }}

{{/* "true" when a webhook secret is configured at all. */}}
{{- define "teleport-jira.webhookSecretEnabled" -}}
{{- if or .Values.http.webhookSecret .Values.http.webhookSecretFromSecret }}true{{ end }}
{{- end }}

{{- define "teleport-jira.webhookSecretSecretName" -}}
{{- default (include "teleport-jira.ownSecretName" .) .Values.http.webhookSecretFromSecret }}
{{- end }}

{{- define "teleport-jira.webhookSecretSecretKey" -}}
{{- if .Values.http.webhookSecretFromSecret }}{{ default "webhookSecret" .Values.http.webhookSecretSecretPath }}{{ else }}webhookSecret{{ end }}
{{- end }}

{{/* "true" when basic auth is on and has a password, as a value or in an existing Secret. */}}
{{- define "teleport-jira.basicAuthPasswordEnabled" -}}
{{- $auth := .Values.http.basicAuth | default dict }}
{{- if and (include "teleport-jira.basicAuth" .) (or $auth.password $auth.passwordFromSecret) }}true{{ end }}
{{- end }}

{{- define "teleport-jira.basicAuthPasswordSecretName" -}}
{{- $auth := .Values.http.basicAuth | default dict }}
{{- default (include "teleport-jira.ownSecretName" .) $auth.passwordFromSecret }}
{{- end }}

{{- define "teleport-jira.basicAuthPasswordSecretKey" -}}
{{- $auth := .Values.http.basicAuth | default dict }}
{{- if $auth.passwordFromSecret }}{{ default "basicAuthPassword" $auth.passwordSecretPath }}{{ else }}basicAuthPassword{{ end }}
{{- end }}

{{/*
The entries of the chart's own Secret, key: value, for the secrets given as values and not
taken from an existing Secret.
*/}}
{{- define "teleport-jira.ownSecretData" -}}
{{- $auth := .Values.http.basicAuth | default dict }}
{{- $data := dict }}
{{- if not .Values.jira.apiTokenFromSecret }}
{{- $_ := set $data "jiraApiToken" (toString .Values.jira.apiToken) }}
{{- end }}
{{- if and .Values.http.webhookSecret (not .Values.http.webhookSecretFromSecret) }}
{{- $_ := set $data "webhookSecret" (toString .Values.http.webhookSecret) }}
{{- end }}
{{- if and (include "teleport-jira.basicAuthPasswordEnabled" .) (not $auth.passwordFromSecret) }}
{{- $_ := set $data "basicAuthPassword" (toString $auth.password) }}
{{- end }}
{{- toJson $data }}
{{- end }}

{{/* "true" when the webhook is served over TLS. */}}
{{- define "teleport-jira.tls" -}}
{{- if not .Values.http.insecureNoTLS }}true{{ end }}
{{- end }}

{{- define "teleport-jira.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "teleport-jira.fullname" .)) .Values.http.tlsFromSecret }}
{{- end }}

{{/*
"true" when basic auth is on: user set, and enabled not false. A values file for the Go chart
may say enabled: true; one that says enabled: false keeps it off.
*/}}
{{- define "teleport-jira.basicAuth" -}}
{{- $auth := .Values.http.basicAuth | default dict }}
{{- if and $auth.user (ne (toString (index $auth "enabled")) "false") }}true{{ end }}
{{- end }}

{{/* The probes need the metrics listener. */}}
{{- define "teleport-jira.metricsEnabled" -}}
{{- if .Values.metrics.enabled }}true{{ end }}
{{- end }}
