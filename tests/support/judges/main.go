// Command judges runs upstream projects' own validation code on what this repository renders, so a test can ask
// the real parser or validator instead of a re-implementation of its rules.
//
//	judges kustomize-url <url>...        kustomize's remote-URL parser (sigs.k8s.io/kustomize/api)
//	judges knative-podspec <file.json>... Knative Serving's revision validation (knative.dev/serving)
//
// Each prints one JSON document per argument on stdout (a JSON array) and exits 1 when any argument is rejected,
// 2 on a usage error. The module versions are pinned in go.mod; `judges versions` prints the ones compiled in.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var (
		results []any
		ok      bool
	)
	switch os.Args[1] {
	case "kustomize-url":
		results, ok = judgeURLs(os.Args[2:])
	case "knative-podspec":
		results, ok = judgePodSpecs(os.Args[2:])
	case "versions":
		results, ok = versions(), true
	default:
		usage()
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: judges kustomize-url <url>... | knative-podspec <file.json>... | versions")
	os.Exit(2)
}

// versions lists the judged modules as built, so a test can say which upstream version answered.
func versions() []any {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	var found []any
	for _, dep := range info.Deps {
		switch dep.Path {
		case "sigs.k8s.io/kustomize/api", "knative.dev/serving", "knative.dev/pkg", "k8s.io/api":
			found = append(found, map[string]string{"module": dep.Path, "version": dep.Version})
		}
	}
	return found
}
