"""Object stores: where anonymized archives live (S3 and S3-compatible stores, GCS, Azure Blob
Storage, local directories).

This layer talks to object stores only — no PostgreSQL, no Kubernetes — through one client
library (obstore, Rust's ``object_store``): ``location`` parses URLs and names each scheme's
credential variables (pure; the manifests import it), ``store`` opens a bucket and maps its
failures to one-line ``StorageError``s.
"""
