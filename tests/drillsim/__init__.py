"""Simulated controllers for drill tests, run against the lab's real kube-apiservers.

KubeVirt, CDI, the CSI snapshotter and kubelets cannot run here, so these stand in for them on the managed
clusters: snapshots.py (snapshot-controller + csi-snapshotter), volumes.py (PV binder + provisioner +
pvc-protection), kubevirt.py (virt-controller + virt-handler), kubelet.py (scheduler + kubelet for the canary
pods), all over one shared stretched Ceph (storage.py). Each cluster's simulators watch the apiserver (kube.py)
and act in one worker thread (runtime.py) after deterministic delays (faults.Knobs); every status write is
recorded as ground truth (truth.py). Tests use the fixtures in fixtures.py.
"""
