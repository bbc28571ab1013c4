"""The Kubernetes test lab: real kube-apiservers v1.20.2 on 127.0.0.1 with the CRDs drauditor reads (README.md)."""
