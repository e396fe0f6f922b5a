// Command kstatus computes the kstatus of Kubernetes objects with sigs.k8s.io/cli-utils — the
// library behind Flux's health checks, `kpt live status` and cli-utils' appliers — so tests can
// ask what those tools will say about a live pgparity object.
//
//	kubectl get mv -o json | jq .items | kstatus    # a JSON array of objects on stdin
//
// Prints a JSON array of {"status": Current|InProgress|Failed|Terminating|Unknown, "message"}.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Error   string `json:"error,omitempty"`
}

func main() {
	var objects []map[string]interface{}
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(2)
	}
	results := make([]result, 0, len(objects))
	for _, object := range objects {
		// Through the API machinery's own JSON decoding: integers as int64, as from a cluster.
		raw, _ := json.Marshal(object)
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			results = append(results, result{Error: err.Error()})
			continue
		}
		computed, err := status.Compute(u)
		if err != nil {
			results = append(results, result{Error: err.Error()})
			continue
		}
		results = append(results, result{Status: computed.Status.String(), Message: computed.Message})
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}
