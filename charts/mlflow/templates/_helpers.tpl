{{- define "mlflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 53 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 53 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "mlflow.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: mlstack
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ .root.Chart.Name }}-{{ .root.Chart.Version }}
{{- end -}}

{{- define "mlflow.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "mlflow.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "mlflow.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "mlflow.dbHost" -}}
{{- if .Values.postgres.enabled -}}{{ include "mlflow.fullname" . }}-postgres{{- else -}}{{ required "postgres.host is required when postgres.enabled is false" .Values.postgres.host }}{{- end -}}
{{- end -}}

{{- define "mlflow.s3Endpoint" -}}
{{- if .Values.s3.enabled -}}http://{{ include "mlflow.fullname" . }}-s3:8333{{- else -}}{{ .Values.artifacts.endpoint }}{{- end -}}
{{- end -}}
