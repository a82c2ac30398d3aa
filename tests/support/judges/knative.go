package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/config"
	v1 "knative.dev/serving/pkg/apis/serving/v1"
)

// podSpecInput is one file for knative-podspec: the RevisionSpec KServe hands Knative (the predictor's pod fields,
// plus containerConcurrency / timeoutSeconds from its component extension: kserve v0.16.0
// pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go) and the KnativeServing
// spec.config.features map, which the Knative Operator writes into the config-features ConfigMap that the webhook
// validates with.
type podSpecInput struct {
	Features     map[string]string `json:"features"`
	RevisionSpec json.RawMessage   `json:"revisionSpec"`
}

type podSpecVerdict struct {
	File     string   `json:"file"`
	Valid    bool     `json:"valid"`
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
}

// judgePodSpecs validates each file's pod spec as the RevisionSpec of a Knative Service, the way Knative's
// webhook does (v1.RevisionSpec.Validate -> serving.ValidatePodSpec), with the features attached to the context
// as the webhook's config store does (config.ToContext).
func judgePodSpecs(files []string) ([]any, bool) {
	ok := true
	results := make([]any, 0, len(files))
	for _, file := range files {
		v := judgePodSpec(file)
		ok = ok && v.Valid
		results = append(results, v)
	}
	return results, ok
}

func judgePodSpec(file string) podSpecVerdict {
	v := podSpecVerdict{File: file, Errors: []string{}, Warnings: []string{}}
	fail := func(err error) podSpecVerdict {
		v.Errors = append(v.Errors, err.Error())
		return v
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return fail(err)
	}
	var in podSpecInput
	if err := strictDecode(raw, &in); err != nil {
		return fail(fmt.Errorf("input: %w", err))
	}
	var spec v1.RevisionSpec
	// Strict: a field RevisionSpec (PodSpec inline) does not have would be dropped silently by a lenient decode,
	// and the API server would reject it.
	if err := strictDecode(in.RevisionSpec, &spec); err != nil {
		return fail(fmt.Errorf("revisionSpec: %w", err))
	}
	if len(spec.Containers) == 0 {
		return fail(fmt.Errorf("revisionSpec: no containers (is this a RevisionSpec?)"))
	}
	// Knative keeps a flag's default when its value is not one of its words (asFlag in pkg/apis/config/features.go
	// ignores it), so a misspelt value would silently change nothing: report it.
	for key, value := range in.Features {
		if !isFlag(value) {
			v.Errors = append(v.Errors, fmt.Sprintf("features[%s]: %q is not Enabled, Allowed or Disabled", key, value))
		}
	}
	features, err := config.NewFeaturesConfigFromMap(in.Features)
	if err != nil {
		return fail(fmt.Errorf("features: %w", err))
	}
	ctx := config.ToContext(context.Background(), &config.Config{Features: features})
	found := spec.Validate(apis.WithinSpec(ctx))
	for _, e := range found.Filter(apis.ErrorLevel).WrappedErrors() {
		v.Errors = append(v.Errors, e.Error())
	}
	for _, e := range found.Filter(apis.WarningLevel).WrappedErrors() {
		v.Warnings = append(v.Warnings, e.Error())
	}
	v.Valid = len(v.Errors) == 0
	return v
}

func strictDecode(raw []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

func isFlag(value string) bool {
	for _, flag := range []config.Flag{config.Enabled, config.Allowed, config.Disabled} {
		if strings.EqualFold(value, string(flag)) {
			return true
		}
	}
	return false
}
