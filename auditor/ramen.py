"""Ramen hub objects read the way Ramen itself reads them, across ODF 4.16, 4.18, 4.20 and main.

Only fields present in every one of those CRD versions are required here; newer ones
(status.sync/async peer classes, dryRun) are optional extras.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from auditor.inventory import Inventory, Obj, conditions, labels_of, name_of, namespace_of
from auditor.kubevirt import volumes
from auditor.selectors import matches, mismatches

PLACEMENT_LABEL = "cluster.open-cluster-management.io/placement"


@dataclass(frozen=True)
class Application:
    """One protected application: a DRPC and what it implies on the managed clusters."""

    drpc: Obj
    namespace: str
    name: str
    # Namespaces on the managed clusters whose PVCs and VMs the app owns: the DRPC's own namespace, or
    # spec.protectedNamespaces for discovered applications (DRPC and VRG then live in the Ramen ops namespace).
    workload_namespaces: tuple[str, ...]
    pvc_selector: dict[str, Any] | None
    policy_name: str | None
    placement_cluster: str | None
    placement_source: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def vrg_namespace(self) -> str:
        """Ramen names the VRG after the DRPC and puts it in the DRPC's namespace, discovered apps included."""
        return self.namespace

    @property
    def discovered(self) -> bool:
        """A discovered application (spec.protectedNamespaces): no GitOps source redeploys it after a failover, so
        only what Ramen captured comes back (Ramen's isDiscoveredApp)."""
        return bool((self.drpc.get("spec") or {}).get("protectedNamespaces"))


def applications(hub: Inventory) -> list[Application]:
    apps = []
    for drpc in hub.list("DRPlacementControl"):
        spec = drpc.get("spec") or {}
        namespace = namespace_of(drpc) or ""
        protected = spec.get("protectedNamespaces")
        cluster, source = placement_cluster(hub, drpc)
        apps.append(
            Application(
                drpc=drpc,
                namespace=namespace,
                name=name_of(drpc),
                workload_namespaces=tuple(protected) if protected else (namespace,),
                pvc_selector=spec.get("pvcSelector"),
                policy_name=(spec.get("drPolicyRef") or {}).get("name"),
                placement_cluster=cluster,
                placement_source=source,
            )
        )
    return sorted(apps, key=lambda a: a.key)


def applications_by_namespace(apps: list[Application]) -> dict[str, list[Application]]:
    """The DRPCs that may protect the VMs of each workload namespace; several DRPCs may share one namespace."""
    found: dict[str, list[Application]] = {}
    for app in apps:
        for namespace in app.workload_namespaces:
            found.setdefault(namespace, []).append(app)
    return found


def choose_application(candidates: list[Application], pvc_labels: list[dict[str, str]]) -> Application | None:
    """The DRPC whose pvcSelector selects most of a VM's PVCs; with one candidate, that one regardless."""
    if len(candidates) == 1:
        return candidates[0]
    scored = [(sum(matches(app.pvc_selector, labels) for labels in pvc_labels), app) for app in candidates]
    best_score = max((score for score, _ in scored), default=0)
    best = [app for score, app in scored if score == best_score and score > 0]
    return best[0] if len(best) == 1 else None


def protecting_application(inventory: Inventory, vm: Obj, candidates: list[Application]) -> Application | None:
    """The DRPC that protects ``vm`` among those of its namespace, judged by the labels of its disks' PVCs."""
    namespace = namespace_of(vm)
    claims = sorted({ref.pvc for ref in volumes(vm) if ref.pvc})
    pvcs = [inventory.get("PersistentVolumeClaim", claim, namespace) for claim in claims]
    return choose_application(candidates, [labels_of(pvc) for pvc in pvcs if pvc])


def placement_cluster(hub: Inventory, drpc: Obj) -> tuple[str | None, str]:
    """Where the application runs now, and which object said so."""
    ref = (drpc.get("spec") or {}).get("placementRef") or {}
    ref_namespace = ref.get("namespace") or namespace_of(drpc)
    ref_name = ref.get("name")
    if ref.get("kind") == "PlacementRule":
        rule = hub.get("PlacementRule", ref_name or "", ref_namespace)
        decisions = ((rule or {}).get("status") or {}).get("decisions") or []
    else:
        decisions = [
            decision
            for pd in hub.in_namespace("PlacementDecision", ref_namespace)
            if labels_of(pd).get(PLACEMENT_LABEL) == ref_name
            for decision in ((pd.get("status") or {}).get("decisions") or [])
        ]
    names = (d.get("clusterName") for d in decisions if isinstance(d, dict))
    clusters = sorted({name for name in names if name and isinstance(name, str)})
    if len(clusters) == 1:
        return clusters[0], f"{ref.get('kind') or 'Placement'} {ref_namespace}/{ref_name} decision"
    preferred = ((drpc.get("status") or {}).get("preferredDecision") or {}).get("clusterName")
    if preferred:
        return preferred, "DRPC status.preferredDecision"
    return None, "no placement decision"


def peer_cluster(hub: Inventory, app: Application) -> tuple[str | None, str]:
    """Where a failover of ``app`` would go: the other drCluster of its DRPolicy, and what said so (or why none)."""
    if not app.policy_name:
        return None, f"DRPC {app.key} names no DRPolicy"
    policy = hub.get("DRPolicy", app.policy_name)
    if policy is None:
        return None, f"DRPolicy {app.policy_name} does not exist on the hub"
    clusters = list((policy.get("spec") or {}).get("drClusters") or [])
    where = f"DRPolicy {app.policy_name} drClusters {clusters}"
    if app.placement_cluster not in clusters:
        return None, f"the application is placed on {app.placement_cluster or 'no cluster'}, not on one of the {where}"
    peers = [cluster for cluster in clusters if cluster != app.placement_cluster]
    if len(peers) != 1:
        return None, f"{where} do not name exactly one other cluster"
    return peers[0], where


# Ramen labels what it creates itself and keeps it out of every capture: the Velero backup it requests selects
# "ramendr.openshift.io/created-by-ramen NotIn (true)" on top of the kubeObjectSelector (kubeobjects/velero
# getBackupSpecFromObjectsSpec).
CREATED_BY_RAMEN = "ramendr.openshift.io/created-by-ramen"


def kube_object_capture(app: Application, obj: Obj) -> tuple[bool | None, str]:
    """Whether Ramen's kube-object protection of ``app`` captures the namespaced ``obj``, and why (None: a Recipe
    decides, and drauditor does not read Recipes).

    Without a Recipe, Ramen's default capture (vrg_recipe.go captureWorkflowDefault) backs up every resource of the
    workload namespaces, filtered by spec.kubeObjectProtection.kubeObjectSelector when one is set, and restores it on
    the failover cluster. Secrets, ConfigMaps and namespaced instancetypes are not among the resources it excludes
    (PVCs, PVs, VolumeReplications, VolSync, snapshots, Endpoints: kubeobjects/velero/exclude_resources.go).
    """
    protection = (app.drpc.get("spec") or {}).get("kubeObjectProtection")
    if protection is None:
        return False, f"DRPC {app.key} has no spec.kubeObjectProtection"
    if namespace_of(obj) not in app.workload_namespaces:
        return False, f"namespace {namespace_of(obj)} is not among those DRPC {app.key} protects"
    recipe = protection.get("recipeRef")
    if recipe:
        where = f"{recipe.get('namespace') or ''}/{recipe.get('name') or ''}".lstrip("/")
        return None, f"DRPC {app.key} captures what Recipe {where} names, which drauditor does not read"
    if labels_of(obj).get(CREATED_BY_RAMEN) == "true":
        return False, f"it is labelled {CREATED_BY_RAMEN}=true, which Ramen's capture leaves out"
    selector = protection.get("kubeObjectSelector")
    if selector is not None and not matches(selector, labels_of(obj)):
        reasons = "; ".join(mismatches(selector, labels_of(obj)))
        return False, f"its labels do not match the kubeObjectSelector of DRPC {app.key} ({reasons})"
    scope = "matching its kubeObjectSelector" if selector is not None else "every object of the namespace"
    return True, f"kube-object protection of DRPC {app.key} captures it ({scope})"


def unmet_conditions(obj: Obj, required: tuple[str, ...]) -> dict[str, Obj | None]:
    """Each required condition that is not True, as the controller wrote it; None when it is not reported."""
    found = conditions(obj)
    return {t: found.get(t) for t in required if (found.get(t) or {}).get("status") != "True"}


def unhealthy_conditions(obj: Obj, required: tuple[str, ...]) -> dict[str, str]:
    """For each required condition that is not True: why, in the controller's own words."""
    problems = {}
    for condition_type, condition in unmet_conditions(obj, required).items():
        if condition is None:
            problems[condition_type] = "not reported"
        else:
            detail = condition.get("message") or condition.get("reason") or ""
            problems[condition_type] = f"{condition.get('status')}" + (f" ({detail})" if detail else "")
    return problems


def quote_condition(condition_type: str, condition: Obj | None) -> str:
    """A condition as a finding quotes it: status, reason and the controller's message verbatim.

    The reason is what Ramen's code branches on (UploadError, Progressing); the message is what an operator searches
    the logs for. A finding needs both.
    """
    if condition is None:
        return f"{condition_type} is not reported"
    text = f"{condition_type} is {condition.get('status') or 'unset'}"
    if condition.get("reason"):
        text += f", reason {condition['reason']}"
    message = condition.get("message")
    if message:
        quote = "'" if '"' in message else '"'
        text += f": {quote}{message}{quote}"
    return text


def protected_pvcs(vrg: Obj) -> dict[tuple[str | None, str], Obj]:
    """VRG status.protectedPVCs keyed by (namespace, name); older VRGs omit the namespace (the VRG's own)."""
    entries = ((vrg.get("status") or {}).get("protectedPVCs")) or []
    return {
        (entry.get("namespace") or namespace_of(vrg), entry.get("name", "")): entry
        for entry in entries
        if isinstance(entry, dict)  # as conditions(): one malformed entry must not hide the others
    }


# Per-PVC conditions judged as ramenctl does: DataProtected tracks async replication progress and is not a
# protection failure; conditions a controller marks "Unused" do not apply to this replication mode.
_PVC_CONDITIONS_NOT_JUDGED = {"DataProtected"}


def unhealthy_pvc_conditions(entry: Obj) -> dict[str, str]:
    found = entry.get("conditions") or []
    if not found:
        return {"conditions": "none reported yet"}
    return {
        c.get("type", "?"): f"{c.get('status')} ({c.get('message') or c.get('reason') or 'no reason given'})"
        for c in found
        if c.get("type") not in _PVC_CONDITIONS_NOT_JUDGED and c.get("reason") != "Unused" and c.get("status") != "True"
    }


# --- DRPolicy replication mode ---------------------------------------------------------------------------------

# Ramen treats an empty or zero schedulingInterval as synchronous (checkMetroSupportUsingSchedulingInterval).
_SYNC_INTERVAL = re.compile(r"0*[mhd]?")


def is_metro(policy: Obj) -> bool:
    """Whether a DRPolicy asks for Metro-DR (synchronous) replication, judged from spec.schedulingInterval as Ramen
    does before it has peer classes; every CRD release has the field."""
    return bool(_SYNC_INTERVAL.fullmatch(str((policy.get("spec") or {}).get("schedulingInterval") or "")))


def policy_kind(policy: Obj) -> str:
    """What a report calls the policy's DR kind, e.g. "Metro-DR (synchronous)"."""
    if is_metro(policy):
        return "Metro-DR (synchronous)"
    return f"Regional-DR (asynchronous, every {(policy.get('spec') or {}).get('schedulingInterval')})"


# --- Ramen operators and their configuration -------------------------------------------------------------------

# Deployment names: Ramen's config/manager/manager.yaml Deployment "operator" under the kustomize namePrefix
# "ramen-hub-" (config/hub/default) or "ramen-dr-cluster-" (config/dr-cluster/default). ODF's odr-hub-operator and
# odr-cluster-operator bundles are built from the same kustomize (red-hat-storage/ramen release-4.18), and ramenctl
# looks for these two names on OpenShift as well (pkg/ramen/ramen.go), so upstream and ODF share them. Only the
# namespace differs (upstream ramen-system; ODF openshift-operators on the hub, openshift-dr-system on managed
# clusters), so they are looked up by name in every namespace.
HUB_OPERATOR = "ramen-hub-operator"
DR_CLUSTER_OPERATOR = "ramen-dr-cluster-operator"
# internal/controller/ramenconfig.go: HubOperatorConfigMapName and ConfigMapRamenConfigKeyName.
HUB_OPERATOR_CONFIG = HUB_OPERATOR + "-config"
RAMEN_CONFIG_KEY = "ramen_manager_config.yaml"


@dataclass(frozen=True)
class RamenConfigMap:
    """A Ramen operator ConfigMap and the S3 profile names its RamenConfig defines (names only: a profile holds no
    key itself, it names a Secret, and nothing from that Secret is read)."""

    configmap: Obj
    s3_profile_names: tuple[str, ...] | None  # None when the RamenConfig cannot be read; ``problem`` says why
    problem: str | None = None

    @property
    def key(self) -> str:
        return f"{namespace_of(self.configmap)}/{name_of(self.configmap)}"


def hub_config_maps(hub: Inventory) -> list[RamenConfigMap]:
    """Every ConfigMap of the Ramen hub operator's configuration (normally one; its namespace depends on the
    installation), with its RamenConfig read as the operator reads it."""
    found = sorted(hub.named("ConfigMap", HUB_OPERATOR_CONFIG), key=lambda cm: namespace_of(cm) or "")
    return [_read_ramen_config(configmap) for configmap in found]


def _read_ramen_config(configmap: Obj) -> RamenConfigMap:
    text = (configmap.get("data") or {}).get(RAMEN_CONFIG_KEY)
    if text is None:
        return RamenConfigMap(configmap, None, f"it has no data key {RAMEN_CONFIG_KEY}")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        return RamenConfigMap(configmap, None, f"its {RAMEN_CONFIG_KEY} is not valid YAML ({detail})")
    if not isinstance(config, dict):
        return RamenConfigMap(configmap, None, f"its {RAMEN_CONFIG_KEY} is not a RamenConfig mapping")
    profiles = config.get("s3StoreProfiles") or []
    names = [p.get("s3ProfileName") for p in profiles if isinstance(p, dict)] if isinstance(profiles, list) else []
    return RamenConfigMap(configmap, tuple(str(n) for n in names if n))
