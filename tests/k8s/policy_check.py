#!/usr/bin/env python3
"""The static half of the compliance check, over the objects an overlay renders to.

    policy_check.py RENDERED.yaml [SECRETS.yaml]    check; print the reachability matrices
    policy_check.py --self-test RENDERED.yaml [SECRETS.yaml]
                                                    mutate copies that must fail (and one that
                                                    must pass) and say so

RENDERED.yaml is `kubectl kustomize deploy/k8s/overlays/NAME`; SECRETS.yaml is
`deploy/k8s/secrets.sh NAME --print` (then every Secret a pod names must exist there, with the
keys it names). Exit status 1 when a rule is broken, each broken rule on its own line.

Rules:
- every pod template (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod): requests and
  limits (cpu, memory) on every container; runAsNonRoot and a non-zero runAsUser (the engines
  in RUN_AS_ROOT excepted, each with its reason); allowPrivilegeEscalation false, not
  privileged, capabilities drop ALL and add nothing; seccomp RuntimeDefault (or Localhost);
  no service-account token mounted; imagePullPolicy never Always;
- services: readiness /readyz, liveness /healthz and a startup probe, read-only root filesystem;
  setup Jobs: read-only root filesystem; engines: a readiness probe, and a read-only root
  filesystem unless WRITABLE_ROOT lists them with the reason;
- a pod uses only its owner's Secrets: service S only S-credentials; engine E and its setup
  Job only E-admin;
- the NetworkPolicies, evaluated as Kubernetes does (a connection needs the egress of the source
  AND the ingress of the target; a pod no policy selects for a direction is open in it;
  podSelector, namespaceSelector, ipBlock, ports, named ports, endPort): each engine is reachable
  from its owner and setup Job and from nobody else; a service is reachable only from the
  services that call it (CALLS); nothing reaches outside the namespace but DNS in kube-system;
- selectors: Deployments', StatefulSets', Services', PDBs' selectors match a pod template;
  HPAs and PDBs name something that exists.
"""
import copy
import ipaddress
import sys

import yaml

NAMESPACE = "polyglot"

# The platform: service -> its engine. Adding a service is one line here (and its manifests).
SERVICES = {
    "user-svc": "postgres",
    "product-svc": "search",
    "cart-svc": "redis",
    "analytics-svc": "clickhouse",
    "message-svc": "mongodb",
}
# The services each service calls through their APIs (cart-svc's checkout).
CALLS = {"cart-svc": {"product-svc", "user-svc"}}
# Setup Jobs and the engine they set up.
SETUP_JOBS = {
    "postgres-setup": "postgres",
    "clickhouse-setup": "clickhouse",
    "search-setup": "search",
    "mongodb-setup": "mongodb",
    "kafka-topics": "kafka",
}
ENGINES = {svc_engine: svc for svc, svc_engine in SERVICES.items()}
ENGINES["kafka"] = "shared"
# Kafka has no authentication on main: every service uses it (and only the services).
KAFKA_CLIENTS = set(SERVICES)

# Engines allowed to run as root, each with why. None in base: every upstream image runs as its
# own user (deploy/k8s/base/engines/*.yaml say which).
RUN_AS_ROOT = {}
# Engines whose root filesystem stays writable, each with why.
WRITABLE_ROOT = {
    "kafka": "apache/kafka's launcher writes the generated server.properties into /opt/kafka/config",
    "search": "Elasticsearch's entrypoint creates its keystore in /usr/share/elasticsearch/config",
}

POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


class Pod:
    """A workload's pod template, as the policy check sees it."""

    def __init__(self, obj):
        self.kind = obj["kind"]
        self.name = obj["metadata"]["name"]
        self.ns = obj["metadata"].get("namespace", "default")
        spec = obj["spec"]
        if self.kind == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if self.kind == "Pod":
            self.labels, self.spec = obj["metadata"].get("labels", {}), spec
        else:
            self.labels = spec["template"].get("metadata", {}).get("labels", {}) or {}
            self.spec = spec["template"]["spec"]
        self.app = self.labels.get("app.kubernetes.io/name", self.name)
        self.role = self.labels.get("app.kubernetes.io/component", "?")

    def containers(self):
        return list(self.spec.get("initContainers", [])) + list(self.spec.get("containers", []))

    def container_ports(self):
        """{name or number: (number, protocol)} of every container."""
        ports = {}
        for c in self.spec.get("containers", []):
            for p in c.get("ports", []):
                entry = (p["containerPort"], p.get("protocol", "TCP"))
                ports[p["containerPort"]] = entry
                if "name" in p:
                    ports[p["name"]] = entry
        return ports


def owner_of_secret(name):
    for suffix in ("-credentials", "-admin"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def identity(pod):
    """Whose Secrets a pod may use: a service's, or an engine's (engine and setup Job)."""
    if pod.app in SERVICES:
        return pod.app, "%s-credentials" % pod.app
    if pod.app in ENGINES:
        return pod.app, "%s-admin" % pod.app
    if pod.app in SETUP_JOBS:
        engine = SETUP_JOBS[pod.app]
        return engine, "%s-admin" % engine
    return None, None


def secret_refs(pod):
    """[(secret name, key or None, where)] of every Secret the pod names."""
    refs = []
    for c in pod.containers():
        for e in c.get("env", []) or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                refs.append((ref["name"], ref.get("key"), "%s env %s" % (c["name"], e["name"])))
        for e in c.get("envFrom", []) or []:
            if "secretRef" in e:
                refs.append((e["secretRef"]["name"], None, "%s envFrom" % c["name"]))
    for v in pod.spec.get("volumes", []) or []:
        if "secret" in v:
            refs.append((v["secret"]["secretName"], None, "volume %s" % v["name"]))
        for src in (v.get("projected") or {}).get("sources", []) or []:
            if "secret" in src:
                refs.append((src["secret"]["name"], None, "projected volume %s" % v["name"]))
    return refs


def check_pod(pod, sas, secrets, errors):
    where = "%s/%s" % (pod.kind, pod.name)
    psc = pod.spec.get("securityContext", {}) or {}
    is_service = pod.app in SERVICES
    is_engine = pod.app in ENGINES
    if pod.role == "service" and not is_service:
        errors.append("%s: a service this check does not know (add it to SERVICES)" % where)
    if pod.role == "engine" and not is_engine:
        errors.append("%s: an engine this check does not know (add it to ENGINES)" % where)
    if pod.kind in ("Job", "CronJob") and pod.app not in SETUP_JOBS:
        errors.append("%s: a Job this check does not know (add it to SETUP_JOBS)" % where)

    # The service-account token: the pod's setting, else its ServiceAccount's (default true).
    automount = pod.spec.get("automountServiceAccountToken")
    if automount is None:
        sa = sas.get(pod.spec.get("serviceAccountName", "default"))
        automount = True if sa is None else sa.get("automountServiceAccountToken", True)
    if automount is not False:
        errors.append("%s: mounts a service-account token (automountServiceAccountToken)" % where)

    for c in pod.containers():
        cw = "%s container %s" % (where, c["name"])
        csc = c.get("securityContext", {}) or {}
        res = c.get("resources", {}) or {}
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(kind) or {}):
                    errors.append("%s: no %s.%s" % (cw, kind, r))
        non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        if (non_root is not True or uid == 0) and pod.app not in RUN_AS_ROOT:
            errors.append("%s: runAsNonRoot is not true (or runAsUser is 0)" % cw)
        if csc.get("allowPrivilegeEscalation") is not False:
            errors.append("%s: allowPrivilegeEscalation is not false" % cw)
        if csc.get("privileged"):
            errors.append("%s: privileged" % cw)
        caps = csc.get("capabilities", {}) or {}
        if "ALL" not in (caps.get("drop") or []):
            errors.append("%s: capabilities do not drop ALL" % cw)
        if caps.get("add"):
            errors.append("%s: adds capabilities %s" % (cw, caps["add"]))
        seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            errors.append("%s: seccompProfile is %s, not RuntimeDefault" % (cw, seccomp))
        if c.get("imagePullPolicy") == "Always":
            errors.append("%s: imagePullPolicy Always" % cw)
        if csc.get("readOnlyRootFilesystem") is not True and not (
            is_engine and pod.app in WRITABLE_ROOT
        ):
            errors.append("%s: readOnlyRootFilesystem is not true" % cw)

    main = pod.spec.get("containers", [{}])[0]
    if is_service:
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            got = ((main.get(probe) or {}).get("httpGet") or {}).get("path")
            if got != path:
                errors.append("%s: %s is not GET %s (got %s)" % (where, probe, path, got))
        if not main.get("startupProbe"):
            errors.append("%s: no startupProbe" % where)
    if is_engine and not main.get("readinessProbe"):
        errors.append("%s: no readinessProbe" % where)

    _, allowed = identity(pod)
    for name, key, how in secret_refs(pod):
        if name != allowed:
            errors.append("%s: %s uses Secret %s, which belongs to %s (allowed: %s)"
                          % (where, how, name, owner_of_secret(name) or "nobody", allowed))
        if secrets is not None:
            if name not in secrets:
                errors.append("%s: %s names Secret %s, which secrets.sh does not make"
                              % (where, how, name))
            elif key is not None and key not in (secrets[name].get("data") or {}):
                errors.append("%s: %s names key %s, which Secret %s does not have"
                              % (where, how, key, name))


# ---- NetworkPolicies, evaluated ------------------------------------------------------------

def selector_matches(sel, labels):
    if sel is None:
        return False
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


class Endpoint:
    """Something a connection goes from or to: a pod of ours, or a stand-in for the rest."""

    def __init__(self, name, ns, labels, ns_labels, ports=None, ip=None, pod=True):
        self.name, self.ns, self.labels, self.ns_labels = name, ns, labels, ns_labels
        self.ports = ports or {}
        self.ip = ip
        self.is_pod = pod


def peer_matches(peer, policy_ns, ep):
    if "ipBlock" in peer:
        # A pod's address may fall in any block: counted as matching (the strict reading).
        block = peer["ipBlock"]
        if ep.ip is None:
            return True
        net = ipaddress.ip_network(block["cidr"])
        ip = ipaddress.ip_address(ep.ip)
        return ip in net and not any(ip in ipaddress.ip_network(x) for x in block.get("except", []))
    if not ep.is_pod:
        return False
    nsel, psel = peer.get("namespaceSelector"), peer.get("podSelector")
    if nsel is None:
        ns_ok = ep.ns == policy_ns
    else:
        ns_ok = selector_matches(nsel, ep.ns_labels)
    pod_ok = True if psel is None else selector_matches(psel, ep.labels)
    return ns_ok and pod_ok


def port_matches(rule_ports, dst, port, proto):
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != proto:
            continue
        want = p.get("port")
        if want is None:
            return True
        if isinstance(want, str):
            named = dst.ports.get(want)
            if named and named == (port, proto):
                return True
            continue
        if want == port or (p.get("endPort") and want <= port <= p["endPort"]):
            return True
    return False


def policy_types(pol):
    spec = pol["spec"]
    if "policyTypes" in spec:
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if "egress" in spec else set())


def allowed(policies, src, dst, port, proto="TCP"):
    """Does Kubernetes let src open port/proto on dst? Both sides' policies must agree."""
    def side(direction, subject, other, key, peer_key):
        selecting = [p for p in policies if p["metadata"].get("namespace", "default") == subject.ns
                     and subject.is_pod and selector_matches(p["spec"].get("podSelector", {}), subject.labels)
                     and direction in policy_types(p)]
        if not subject.is_pod or not selecting:
            return True  # not ours to decide, or no policy isolates it in this direction
        for p in selecting:
            for rule in p["spec"].get(key) or []:
                peers = rule.get(peer_key)
                if not peers:
                    peer_ok = True  # missing or empty: every peer
                else:
                    peer_ok = any(peer_matches(peer, p["metadata"].get("namespace", "default"), other)
                                  for peer in peers)
                if peer_ok and port_matches(rule.get("ports"), dst, port, proto):
                    return True
        return False

    return side("Egress", src, dst, "egress", "to") and side("Ingress", dst, src, "ingress", "from")


def reachable_ports(policies, src, dst):
    ports = sorted({v for v in dst.ports.values()})
    return [p for p in ports if allowed(policies, src, dst, p[0], p[1])]


def check_network(docs, pods, errors, show=True):
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    ns_labels = {"kubernetes.io/metadata.name": NAMESPACE}
    for d in docs:
        if d["kind"] == "Namespace" and d["metadata"]["name"] == NAMESPACE:
            ns_labels.update(d["metadata"].get("labels") or {})
    eps = {p.app: Endpoint(p.app, p.ns, p.labels, ns_labels, p.container_ports()) for p in pods}
    names = sorted(eps, key=lambda n: (n not in SERVICES, n not in ENGINES, n))
    engines = [n for n in names if n in ENGINES]
    services = [n for n in names if n in SERVICES]

    def matrix(title, cols):
        width = max(len(n) for n in names) + 2
        lines = ["%s (rows: from; columns: to; ports reachable)" % title,
                 "".ljust(width) + "".join(c.ljust(14) for c in cols)]
        for src in names:
            row = src.ljust(width)
            for dst in cols:
                if src == dst:
                    cell = "."
                else:
                    got = reachable_ports(policies, eps[src], eps[dst])
                    cell = ",".join(str(p[0]) for p in got) or "-"
                row += cell.ljust(14)
            lines.append(row)
        return "\n".join(lines)

    if show:
        print(matrix("==> engines", engines))
        print(matrix("==> services", services))

    for dst in engines:
        owner = ENGINES[dst]
        want = set(KAFKA_CLIENTS) if owner == "shared" else {owner}
        want |= {j for j, e in SETUP_JOBS.items() if e == dst and j in eps}
        for src in names:
            if src == dst:
                continue
            got = reachable_ports(policies, eps[src], eps[dst])
            if src in want and not got:
                errors.append("network: %s cannot reach its engine %s" % (src, dst))
            if src not in want and got:
                errors.append("network: %s can reach %s (ports %s), which belongs to %s"
                              % (src, dst, ",".join(str(p[0]) for p in got), owner))
        if owner != "shared" and eps[dst].labels.get("polyglot.dev/owner") != owner:
            errors.append("%s: label polyglot.dev/owner is %s, not %s"
                          % (dst, eps[dst].labels.get("polyglot.dev/owner"), owner))
    for dst in services:
        want = {s for s, called in CALLS.items() if dst in called}
        for src in names:
            if src == dst:
                continue
            got = reachable_ports(policies, eps[src], eps[dst])
            if src in want and not got:
                errors.append("network: %s cannot reach %s, which it calls" % (src, dst))
            if src not in want and got:
                errors.append("network: %s can reach service %s, which it does not call" % (src, dst))

    # Outside the namespace: DNS in kube-system, nothing else (a pod of another namespace, a
    # pod of kube-system on another port, an address on the internet).
    dns = Endpoint("kube-dns", "kube-system", {"k8s-app": "kube-dns"},
                   {"kubernetes.io/metadata.name": "kube-system"},
                   {53: (53, "UDP"), "dns-tcp": (53, "TCP")}, ip="10.96.0.10")
    other = Endpoint("elsewhere", "other", {"app": "x"}, {"kubernetes.io/metadata.name": "other"},
                     {443: (443, "TCP"), 80: (80, "TCP"), 53: (53, "UDP")}, ip="10.1.2.3")
    internet = Endpoint("internet", "", {}, {}, {443: (443, "TCP")}, ip="93.184.216.34", pod=False)
    for src in names:
        if not allowed(policies, eps[src], dns, 53, "UDP"):
            errors.append("network: %s cannot reach DNS (kube-system, 53/UDP)" % src)
        if allowed(policies, eps[src], dns, 443, "TCP"):
            errors.append("network: %s can reach kube-system on 443" % src)
        for ep in (other, internet):
            for port, proto in sorted(set(ep.ports.values())):
                if allowed(policies, eps[src], ep, port, proto):
                    errors.append("network: %s can reach %s on %s/%s" % (src, ep.name, port, proto))
        # And nobody from elsewhere gets in, but to a service's port (then the user's choice).
        for dst in names:
            for port, proto in reachable_ports(policies, other, eps[dst]):
                errors.append("network: a pod of another namespace can reach %s on %s" % (dst, port))
                break


def check_selectors(docs, pods, errors):
    templates = [p.labels for p in pods]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            sel = d["spec"].get("selector")
            labels = d["spec"]["template"].get("metadata", {}).get("labels", {})
            if not selector_matches(sel, labels):
                errors.append("%s/%s: selector does not match its pod template" % (kind, name))
        if kind == "StatefulSet" and d["spec"].get("serviceName") not in by_kind.get("Service", {}):
            errors.append("StatefulSet/%s: serviceName names no Service" % name)
        if kind == "Service" and d["spec"].get("selector"):
            if not any(all(t.get(k) == v for k, v in d["spec"]["selector"].items()) for t in templates):
                errors.append("Service/%s: selector matches no pod template" % name)
        if kind == "PodDisruptionBudget":
            if not any(selector_matches(d["spec"].get("selector"), t) for t in templates):
                errors.append("PodDisruptionBudget/%s: selector matches no pod template" % name)
            if "minAvailable" in d["spec"] and "maxUnavailable" in d["spec"]:
                errors.append("PodDisruptionBudget/%s: both minAvailable and maxUnavailable" % name)
        if kind == "HorizontalPodAutoscaler":
            ref = d["spec"]["scaleTargetRef"]
            if ref["name"] not in by_kind.get(ref["kind"], {}):
                errors.append("HorizontalPodAutoscaler/%s: its target %s/%s does not exist"
                              % (name, ref["kind"], ref["name"]))


def check(docs, secret_docs, show=True):
    errors = []
    pods = [Pod(d) for d in docs if d["kind"] in POD_KINDS]
    sas = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    secrets = None
    if secret_docs is not None:
        secrets = {d["metadata"]["name"]: d for d in secret_docs if d["kind"] == "Secret"}
    for want in list(SERVICES) + list(ENGINES):
        if not any(p.app == want for p in pods):
            errors.append("%s: no workload renders it" % want)
    for p in pods:
        check_pod(p, sas, secrets, errors)
    check_network(docs, pods, errors, show)
    check_selectors(docs, pods, errors)
    return errors


# ---- self-test --------------------------------------------------------------------------------

def find(docs, kind, name):
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise KeyError("%s/%s" % (kind, name))


def np(name, selector, ingress=None, egress=None):
    spec = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": selector}}, "policyTypes": []}
    if ingress is not None:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = ingress
    if egress is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}


def to(name, port):
    return [{"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}}],
             "ports": [{"protocol": "TCP", "port": port}]}]


def frm(name, port):
    return [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}}],
             "ports": [{"protocol": "TCP", "port": port}]}]


def mutations():
    """(description, mutate(docs), must the check fail?)"""
    def both_sides(docs):
        docs.append(np("evil-in", "postgres", ingress=frm("cart-svc", 5432)))
        docs.append(np("evil-out", "cart-svc", egress=to("postgres", 5432)))

    def ingress_only(docs):
        docs.append(np("half-open", "postgres", ingress=frm("cart-svc", 5432)))

    def egress_everywhere(docs):
        docs.append(np("evil-out", "analytics-svc", egress=[{}]))
        find(docs, "NetworkPolicy", "redis")["spec"]["ingress"][0]["from"].append(
            {"namespaceSelector": {}})

    def no_default_deny(docs):
        docs.remove(find(docs, "NetworkPolicy", "default-deny"))
        docs.remove(find(docs, "NetworkPolicy", "mongodb"))
        docs.append(np("evil-out", "user-svc", egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]))

    def foreign_secret(docs):
        c = find(docs, "Deployment", "user-svc")["spec"]["template"]["spec"]["containers"][0]
        c["envFrom"].append({"secretRef": {"name": "cart-svc-credentials"}})

    def no_probe(docs):
        c = find(docs, "Deployment", "cart-svc")["spec"]["template"]["spec"]["containers"][0]
        del c["readinessProbe"]

    def root(docs):
        spec = find(docs, "StatefulSet", "redis")["spec"]["template"]["spec"]
        spec["securityContext"]["runAsNonRoot"] = False

    def no_limits(docs):
        spec = find(docs, "Job", "postgres-setup")["spec"]["template"]["spec"]
        del spec["containers"][0]["resources"]["limits"]

    def token(docs):
        spec = find(docs, "Deployment", "message-svc")["spec"]["template"]["spec"]
        spec["automountServiceAccountToken"] = True

    def writable(docs):
        c = find(docs, "Deployment", "product-svc")["spec"]["template"]["spec"]["containers"][0]
        c["securityContext"]["readOnlyRootFilesystem"] = False

    def service_to_service(docs):
        docs.append(np("evil-out", "message-svc", egress=to("user-svc", 8080)))

    def bad_selector(docs):
        find(docs, "Service", "redis")["spec"]["selector"] = {"app.kubernetes.io/name": "rediss"}

    return [
        ("a policy pair letting cart-svc reach postgres", both_sides, True),
        ("postgres admitting cart-svc while cart-svc's egress does not allow it", ingress_only, False),
        ("analytics-svc egress to everything, redis admitting every namespace", egress_everywhere, True),
        ("no default-deny, no mongodb policy, user-svc egress 0.0.0.0/0", no_default_deny, True),
        ("user-svc mounting cart-svc-credentials", foreign_secret, True),
        ("cart-svc without a readiness probe", no_probe, True),
        ("redis with runAsNonRoot false", root, True),
        ("postgres-setup without limits", no_limits, True),
        ("message-svc mounting its token", token, True),
        ("product-svc with a writable root filesystem", writable, True),
        ("message-svc allowed to call user-svc", service_to_service, True),
        ("a Service whose selector matches nothing", bad_selector, True),
    ]


def self_test(docs, secret_docs):
    base = check(docs, secret_docs, show=False)
    if base:
        print("self-test: the unmutated input already fails:\n  " + "\n  ".join(base))
        return 1
    bad = 0
    for desc, mutate, must_fail in mutations():
        mutated = copy.deepcopy(docs)
        mutate(mutated)
        errs = check(mutated, secret_docs, show=False)
        ok = bool(errs) == must_fail
        bad += not ok
        print("==> self-test: %-75s %s (%s)" % (
            desc, "ok" if ok else "WRONG",
            ("fails: " + errs[0]) if errs else "passes"))
    return 1 if bad else 0


def main(argv):
    test = argv[:1] == ["--self-test"]
    args = argv[1:] if test else argv
    if not 1 <= len(args) <= 2:
        sys.exit(__doc__)
    docs = load(args[0])
    secret_docs = load(args[1]) if len(args) > 1 else None
    if test:
        return self_test(docs, secret_docs)
    errors = check(docs, secret_docs)
    for e in errors:
        print("FAIL " + e)
    pods = sum(1 for d in docs if d["kind"] in POD_KINDS)
    print("==> policy check: %d objects, %d pod templates, %d NetworkPolicies: %s"
          % (len(docs), pods, sum(1 for d in docs if d["kind"] == "NetworkPolicy"),
             "%d problems" % len(errors) if errors else "ok"))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
