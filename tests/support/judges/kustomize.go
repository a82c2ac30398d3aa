package main

import (
	"net/url"
	"strings"

	"sigs.k8s.io/kustomize/api/resource"
)

// urlVerdict is what kustomize made of one remote kustomization URL.
type urlVerdict struct {
	URL    string `json:"url"`
	Remote bool   `json:"remote"`
	Repo   string `json:"repo,omitempty"`
	Host   string `json:"host,omitempty"`
	Org    string `json:"orgRepo,omitempty"`
	Path   string `json:"path"`
	Ref    string `json:"ref"`
	Error  string `json:"error,omitempty"`
}

// judgeURLs parses each URL with kustomize's own remote-URL parser.
//
// The parser (git.NewRepoSpecFromURL) lives in sigs.k8s.io/kustomize/api/internal/git and cannot be imported. The
// narrowest public call that runs it without cloning is resource.Origin.Append (api/resource/origin.go): it calls
// NewRepoSpecFromURL and, when the URL parses as a git URL, records Repo = RepoSpec.CloneSpec() (host + org/repo),
// Ref = RepoSpec.Ref and Path = the kustomization root inside the repository; when it does not parse, the argument
// is kept as a local path and Repo stays empty. The loaders (krusty, loader.NewLoader) run the same parser but
// then clone with the git binary, which needs the network.
func judgeURLs(urls []string) ([]any, bool) {
	ok := true
	results := make([]any, 0, len(urls))
	for _, u := range urls {
		origin := (&resource.Origin{}).Append(u)
		v := urlVerdict{URL: u, Remote: origin.Repo != "", Repo: origin.Repo, Path: origin.Path, Ref: origin.Ref}
		// Origin keeps kustomize's clone spec (host + org/repo) as one string; split it for URLs with a scheme.
		if parsed, err := url.Parse(origin.Repo); err == nil && parsed.Host != "" {
			v.Host, v.Org = parsed.Host, strings.TrimPrefix(parsed.Path, "/")
		}
		if !v.Remote {
			v.Error = "not a remote git URL to kustomize: it would be read as a local directory"
			ok = false
		}
		results = append(results, v)
	}
	return results, ok
}
