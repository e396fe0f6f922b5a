// The Argo CD health-check runner (scripts/gitops-tools.sh builds it): gopher-lua and
// gopher-json at the versions Argo CD uses, sigs.k8s.io/yaml as Argo CD's tests read testdata.
module pgparity.invalid/argocd-health

go 1.26.0

require (
	github.com/yuin/gopher-lua v1.1.1
	layeh.com/gopher-json v0.0.0-20190114024228-97fed8db8427
	sigs.k8s.io/yaml v1.6.0
)

require go.yaml.in/yaml/v2 v2.4.2 // indirect
