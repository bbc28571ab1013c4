"""Would a protected VM find its Multus networks on the cluster it fails over to?

A VM with a secondary network starts only where that network's NetworkAttachmentDefinition exists: without it the
virt-launcher pod never leaves ContainerCreating. Ramen does not carry NADs across (they are cluster networking,
set up per site), so a NAD created on one site only breaks the failover of every VM attached to it.
"""

from __future__ import annotations

import json

from auditor.context import AuditContext
from auditor.inventory import Obj
from auditor.kubevirt import multus_networks
from auditor.model import CheckMeta, Finding, Severity
from auditor.peer import PROTECTION_KINDS, ProtectedVM, judge_protected_vms

META = CheckMeta(
    id="peer_networks",
    title="The peer cluster has every Multus network a protected VM attaches",
    severity=Severity.HIGH,
    description=(
        "For every VirtualMachine protected by a DRPC: each Multus network in spec.template.spec.networks "
        '(multus.networkName, "namespace/name" or "name" in the VM\'s namespace) must have its '
        "NetworkAttachmentDefinition on the peer cluster (the other drCluster of the DRPC's DRPolicy) under the same "
        'namespace and name. Warns when the NAD\'s CNI plugin type (spec.config "type", or the plugin types of a '
        "conflist) differs between the two sites. The pod network needs nothing."
    ),
    rationale=(
        "Network definitions are per cluster and outside what Ramen replicates or restores; kubevirt-velero-plugin "
        "does not back them up either. A VM whose NAD exists only on the primary cannot start after a failover, and "
        "one whose NAD uses another CNI plugin on the peer starts on a network that may not reach its peers."
    ),
    remediation=(
        "Create the NetworkAttachmentDefinition on the peer cluster with the same namespace, name and CNI "
        "configuration as on the primary (and the node network it needs, e.g. the bridge via a "
        "NodeNetworkConfigurationPolicy); keep both sites' network definitions in the same GitOps source."
    ),
    kinds_read=(*PROTECTION_KINDS, "NetworkAttachmentDefinition"),
)

NAD = "NetworkAttachmentDefinition"


def run(ctx: AuditContext) -> list[Finding]:
    return judge_protected_vms(ctx, META, _judge)


def _judge(pvm: ProtectedVM) -> Finding:
    networks, failures, warnings = [], [], []
    for ref in multus_networks(pvm.vm):
        primary = pvm.primary.get(NAD, ref.name, ref.namespace)
        peer = pvm.peer_inventory.get(NAD, ref.name, ref.namespace)
        types = {pvm.cluster: cni_types(primary), pvm.peer: cni_types(peer)}
        networks.append({"network": ref.network, "nad": ref.display(), "cni_types": types})
        what = f"network {ref.network} (NAD {ref.display()})"
        if peer is None:
            failures.append(f"{what} has no NetworkAttachmentDefinition on {pvm.peer}")
        elif primary is None:
            warnings.append(f"{what} exists on {pvm.peer} but not on {pvm.cluster}, so its CNI type cannot be compared")
        elif types[pvm.cluster] != types[pvm.peer]:
            warnings.append(
                f"{what} uses CNI type {_show(types[pvm.cluster])} on {pvm.cluster} but {_show(types[pvm.peer])} on "
                f"{pvm.peer}"
            )

    evidence = {"networks": networks, "problems": failures, "warnings": warnings}
    if not networks:
        ok = f"{pvm.label} uses only the pod network: no NetworkAttachmentDefinition needed on {pvm.peer}."
    else:
        names = ", ".join(n["nad"] for n in networks)
        ok = f"{pvm.label}: the NetworkAttachmentDefinitions of its Multus networks ({names}) exist on {pvm.peer}."
    return pvm.graded(
        META,
        failures,
        warnings,
        fail=f"{pvm.label} would not start on {pvm.peer}: {'; '.join(failures)}.",
        warn=f"{pvm.label} would start on {pvm.peer} on networks that differ: {'; '.join(warnings)}.",
        ok=ok,
        evidence=evidence,
    )


def cni_types(nad: Obj | None) -> list[str] | None:
    """The CNI plugin types of a NAD's spec.config: one for a single plugin, each plugin's for a conflist.

    None when there is no NAD; ["(node config file)"] when spec.config is empty (Multus then reads the CNI file of
    that name on each node); ["(unparsable)"] when the config is not JSON, so that it compares unequal to a real one.
    """
    if nad is None:
        return None
    config = (nad.get("spec") or {}).get("config") or ""
    if not config.strip():
        return ["(node config file)"]
    try:
        parsed = json.loads(config)
    except ValueError:
        return ["(unparsable)"]
    if not isinstance(parsed, dict):
        return ["(unparsable)"]
    if isinstance(parsed.get("plugins"), list):
        return [str(plugin.get("type")) for plugin in parsed["plugins"] if isinstance(plugin, dict)]
    return [str(parsed.get("type"))]


def _show(types: list[str] | None) -> str:
    return "+".join(types or [])
