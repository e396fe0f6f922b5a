{{/* Labels every object of the chart carries (as the generated operator.yaml does). */}}
{{- define "pgparity.labels" -}}
app.kubernetes.io/name: pgparity
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The operator's Pods and metrics Service (selector labels of operator.yaml). */}}
{{- define "pgparity.operatorSelector" -}}
app.kubernetes.io/name: pgparity
app.kubernetes.io/component: operator
{{- end }}

{{/* The rule groups: each prometheus_rules/<Alert>.yaml through tpl, with the alert labels. */}}
{{- define "pgparity.ruleGroups" -}}
{{- $rule := .Values.monitoring.prometheusRule -}}
groups:
- name: pgparity
  rules:
  {{- range $path, $_ := .Files.Glob "prometheus_rules/*.yaml" }}
  {{- $alert := base $path | trimSuffix ".yaml" }}
  {{- if not (has $alert $rule.excludeRules) }}
  {{- $body := tpl ($.Files.Get $path) $ | fromYaml }}
  {{- if ne $body.alert $alert }}
  {{- fail (printf "%s defines alert %s" $path $body.alert) }}
  {{- end }}
  {{- $_ := set $body "labels" (merge (dict) $body.labels $rule.alertLabels) }}
  - {{ toYaml $body | nindent 4 | trim }}
  {{- end }}
  {{- end }}
{{- end }}
