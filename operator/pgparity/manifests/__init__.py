"""Pure builders: typed inputs → plain Kubernetes manifests (dicts).

No client, no clock, no randomness, no global configuration: names, passwords, images and
``now`` are passed in, so every builder is a deterministic function a unit test can pin down.
"""
