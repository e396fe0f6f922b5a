// CoreDNS for the node tier, with only the plugins its Corefile uses (tests/nodeplane.py):
// the kubernetes plugin answers cluster.local from the API server; there is no forward plugin,
// because nothing on the node may resolve names outside the cluster. Leaving out the cloud
// plugins (route53, azure, clouddns, ...) keeps a cold build to a fraction of the full one.
// This is CoreDNS's own main (coredns.go) with its plugin list (core/plugin/zplugin.go) cut down.
package main

import (
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"

	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
