{{/*
Names, labels and the RBAC rules, defined once. The rules mirror manifests/cluster_role.yaml (a test
compares them).
*/}}

{{- define "backrest-volsync-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "backrest-volsync-operator.fullname" -}}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "backrest-volsync-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "backrest-volsync-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: backrest-volsync-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The image the chart runs. The Go prototype's own image, still named by a values file from its chart, is
replaced by this chart's image at its appVersion: the prototype's flag parser stops on our flags. This
chart's image is the one Chart.yaml lists in its artifacthub.io/images annotation (the release rewrites its
owner and version there as in values.yaml), without its tag.
*/}}
{{- define "backrest-volsync-operator.prototypeImage" -}}
{{- if regexMatch "(^|/)jogotcha/backrest-volsync-operator$" .Values.image.repository }}true{{ end }}
{{- end }}

{{- define "backrest-volsync-operator.image" -}}
{{- if include "backrest-volsync-operator.prototypeImage" . }}
{{- $listed := index .Chart.Annotations "artifacthub.io/images" | fromYamlArray | first }}
{{- printf "%s:%s" (regexReplaceAll ":[^/:]*$" $listed.image "") .Chart.AppVersion }}
{{- else if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Metrics are served unless metrics.bindAddress is "0". */}}
{{- define "backrest-volsync-operator.metricsOn" -}}
{{- if ne (toString .Values.metrics.bindAddress) "0" }}true{{ end }}
{{- end }}

{{/* The prototype's selector, kept so an existing release upgrades in place (selectors are immutable). */}}
{{- define "backrest-volsync-operator.selectorLabels" -}}
app: {{ include "backrest-volsync-operator.fullname" . }}
{{- end }}

{{- define "backrest-volsync-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "backrest-volsync-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "backrest-volsync-operator.metricsBindAddress" -}}
{{- default (printf ":%v" .Values.metrics.port) .Values.metrics.bindAddress }}
{{- end }}

{{- define "backrest-volsync-operator.healthProbeBindAddress" -}}
{{- default (printf ":%v" .Values.healthProbe.port) .Values.healthProbe.bindAddress }}
{{- end }}

{{/* Leader election is forced on with more than one replica: two reconcilers must never race. */}}
{{- define "backrest-volsync-operator.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ else }}false{{ end }}
{{- end }}

{{/* What the operator needs in every namespace it watches. */}}
{{- define "backrest-volsync-operator.watchRules" -}}
- apiGroups: ["backrest.garethgeorge.com"]
  resources: ["backrestvolsyncbindings"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["backrest.garethgeorge.com"]
  resources: ["backrestvolsyncbindings/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["volsync.backube"]
  resources: ["replicationsources", "replicationdestinations"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["volsync.backube"]
  resources: ["replicationsources/finalizers", "replicationdestinations/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
{{ include "backrest-volsync-operator.eventRules" . }}
{{- end }}

{{/* The OperatorConfig: read, and its status written. */}}
{{- define "backrest-volsync-operator.configRules" -}}
- apiGroups: ["backrest.garethgeorge.com"]
  resources: ["backrestvolsyncoperatorconfigs"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["backrest.garethgeorge.com"]
  resources: ["backrestvolsyncoperatorconfigs/status"]
  verbs: ["get", "update", "patch"]
{{- end }}

{{- define "backrest-volsync-operator.eventRules" -}}
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
