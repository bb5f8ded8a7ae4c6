#!/usr/bin/env bash
# Render every overlay of deploy/k8s, validate it strictly against two Kubernetes versions with
# offline schemas (two validators), then run the policy check (tests/k8s/policy_check.py).
#
#   tests/k8s/render_test.sh
#
# - kubectl kustomize renders each overlay, and deploy/k8s/secrets.sh OVERLAY --print its
#   Secrets, with no network (unshare -n);
# - kubernetes-validate (PyPI, pinned) and kubeconform (Go, pinned, built once) validate every
#   object against the schemas of each version in K8S_VERSIONS. Unknown kinds and removed APIs
#   fail: kubeconform fails on a missing schema, and kubernetes-validate's warnings (it only
#   warns about them) are failures here. A self-test first proves it on a temporary file (a
#   policy/v1beta1 PodDisruptionBudget, an unknown kind, a misspelt field): each must fail
#   both validators at both versions, and a good object must pass;
# - deploy/k8s/base/topics.conf must be a copy of deploy/topics.conf;
# - the policy check runs on each overlay, after its own self-test (mutated copies must fail).
#
# Tools are kept across runs in /var/cache/polyglot: venv/ (kubernetes-validate, PyYAML),
# bin/kubeconform-<version>, k8s-schemas/<kubernetes-validate version>/ (the wheel's schemas
# rewritten for kubeconform by tools/k8s/validate/schemas.py). First run: pip ~5 s, the
# kubeconform build ~50 s (under flock /tmp/polyglot-heavy.lock); later runs take seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${POLYGLOT_CACHE:-/var/cache/polyglot}
VENV=$CACHE/venv
KV_VERSION=1.37.0
PYYAML_VERSION=6.0.2
KC_VERSION=v0.8.0
KC=$CACHE/bin/kubeconform-$KC_VERSION
SCHEMAS=$CACHE/k8s-schemas/kubernetes-validate-$KV_VERSION
K8S_VERSIONS=(1.33.0 1.34.0)
OVERLAYS=(upstream upstream-opensearch local)

say() { printf '==> %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# No network for anything that reads the manifests: the validators must never go online.
offline() { unshare -n -- "$@"; }
unshare -n true 2>/dev/null || fail "unshare -n does not work here (needs root or user namespaces)"

# ---- tools ----------------------------------------------------------------------------------

setup_venv() {
    if "$VENV/bin/python" -c "import kubernetes_validate, yaml, sys
sys.exit(kubernetes_validate.__version__ != '$KV_VERSION')" 2>/dev/null; then
        return 0
    fi
    say "installing kubernetes-validate $KV_VERSION into $VENV"
    mkdir -p "$CACHE"
    (
        flock 9
        [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check \
            "kubernetes-validate==$KV_VERSION" "PyYAML==$PYYAML_VERSION"
    ) 9>"$CACHE/.venv.lock" || fail "pip install kubernetes-validate==$KV_VERSION failed"
}

setup_kubeconform() {
    [ -x "$KC" ] && return 0
    command -v go >/dev/null || fail "go is needed to build kubeconform $KC_VERSION"
    say "building kubeconform $KC_VERSION (once, ~50 s)"
    mkdir -p "$CACHE/bin"
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    flock /tmp/polyglot-heavy.lock bash -c '
        set -e
        [ -x "$1" ] && exit 0
        gobin=$(mktemp -d)
        trap "rm -rf \"$gobin\"" EXIT
        GOBIN=$gobin GOFLAGS=-modcacherw GOTOOLCHAIN=local CGO_ENABLED=0 \
            go install "github.com/yannh/kubeconform/cmd/kubeconform@$2"
        mv "$gobin/kubeconform" "$1.tmp"
        mv "$1.tmp" "$1"
    ' _ "$KC" "$KC_VERSION" || fail "building kubeconform $KC_VERSION failed"
}

setup_schemas() {
    local v missing=()
    for v in "${K8S_VERSIONS[@]}"; do
        [ -d "$SCHEMAS/v$v-standalone-strict" ] || missing+=("$v")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    "$VENV/bin/python" "$ROOT/tools/k8s/validate/schemas.py" "$SCHEMAS" "${missing[@]}" ||
        fail "converting the kubernetes-validate schemas failed"
}

setup_venv
setup_kubeconform
setup_schemas
PY=$VENV/bin/python

# ---- validators -----------------------------------------------------------------------------

# validate VERSION FILE...: both validators; prints what they said on failure; status 0 if clean.
validate() {
    local version=$1 out rc=0
    shift
    out=$(offline "$KC" -strict -summary -kubernetes-version "$version" \
        -schema-location "$SCHEMAS/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
        "$@" 2>&1) || rc=1
    [ $rc -eq 0 ] || printf '%s\n' "$out" | sed 's/^/    kubeconform: /'
    # kubernetes-validate exits 0 on unknown kinds and removed APIs (WARN): any line but the
    # INFO ones is a failure.
    out=$(offline "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$@" 2>&1) || rc=1
    if printf '%s\n' "$out" | grep -q .; then
        printf '%s\n' "$out" | sed 's/^/    kubernetes-validate: /'
        rc=1
    fi
    return $rc
}

say "validator self-test: broken objects must fail, a good one must pass"
cat >"$TMP/removed-api.yaml" <<'EOF'
apiVersion: policy/v1beta1
kind: PodDisruptionBudget
metadata: {name: removed-in-1-25, namespace: polyglot}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app.kubernetes.io/name: user-svc}}
EOF
cat >"$TMP/unknown-kind.yaml" <<'EOF'
apiVersion: polyglot.dev/v1
kind: Frobnicator
metadata: {name: nobody-knows-me, namespace: polyglot}
spec: {}
EOF
cat >"$TMP/misspelt-field.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: misspelt, namespace: polyglot}
spec:
  selector: {app.kubernetes.io/name: user-svc}
  prots: [{port: 8080}]
EOF
cat >"$TMP/good.yaml" <<'EOF'
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: fine, namespace: polyglot}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app.kubernetes.io/name: user-svc}}
EOF
for v in "${K8S_VERSIONS[@]}"; do
    for bad in removed-api unknown-kind misspelt-field; do
        # Each validator on its own must refuse it.
        offline "$KC" -strict -kubernetes-version "$v" \
            -schema-location "$SCHEMAS/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
            "$TMP/$bad.yaml" >/dev/null 2>&1 && fail "kubeconform accepted $bad.yaml for $v"
        out=$(offline "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "$TMP/$bad.yaml" 2>&1) || true
        [ -n "$out" ] || fail "kubernetes-validate said nothing about $bad.yaml for $v"
        validate "$v" "$TMP/$bad.yaml" >/dev/null && fail "validate accepted $bad.yaml for $v"
    done
    validate "$v" "$TMP/good.yaml" || fail "validate refused a good PodDisruptionBudget for $v"
done
say "validator self-test: ok (removed API, unknown kind, misspelt field refused by both at ${K8S_VERSIONS[*]})"

# ---- the manifests --------------------------------------------------------------------------

cmp -s "$ROOT/deploy/topics.conf" "$ROOT/deploy/k8s/base/topics.conf" ||
    fail "deploy/k8s/base/topics.conf differs from deploy/topics.conf: cp deploy/topics.conf deploy/k8s/base/topics.conf"
say "deploy/k8s/base/topics.conf is deploy/topics.conf"

status=0
for o in "${OVERLAYS[@]}"; do
    r=$TMP/$o.yaml s=$TMP/$o-secrets.yaml
    offline kubectl kustomize "$ROOT/deploy/k8s/overlays/$o" >"$r" 2>"$TMP/err" ||
        { cat "$TMP/err" >&2; fail "kubectl kustomize deploy/k8s/overlays/$o failed"; }
    offline "$ROOT/deploy/k8s/secrets.sh" "$o" --print >"$s" 2>"$TMP/err" ||
        { cat "$TMP/err" >&2; fail "deploy/k8s/secrets.sh $o --print failed"; }
    say "$o: rendered $(grep -c '^kind:' "$r") objects, $(grep -c '^kind: Secret' "$s") Secrets"
    for v in "${K8S_VERSIONS[@]}"; do
        if validate "$v" "$r" "$s"; then
            say "$o: valid for Kubernetes $v (kubeconform and kubernetes-validate, strict)"
        else
            printf 'FAIL: %s is not valid for Kubernetes %s (above)\n' "$o" "$v" >&2
            status=1
        fi
    done
    # What the local cluster needs of its images: never pulled from anywhere.
    if [ "$o" = local ]; then
        if grep -E '^\s+image: ' "$r" | grep -Ev 'image: localhost/' | grep -q .; then
            say "$o: engine images not yet local (components/local-engines): $(grep -E '^\s+image: ' "$r" | grep -Ev 'localhost/' | sort -u | awk '{print $2}' | tr '\n' ' ')"
        fi
        for svc in user-svc product-svc cart-svc analytics-svc message-svc; do
            grep -q "image: localhost/polyglot/$svc:dev$" "$r" ||
                { printf 'FAIL: %s: %s is not localhost/polyglot/%s:dev\n' "$o" "$svc" "$svc" >&2; status=1; }
        done
    fi
    if ! offline "$PY" "$ROOT/tests/k8s/policy_check.py" --self-test "$r" "$s"; then
        printf 'FAIL: %s: the policy check self-test went wrong (above)\n' "$o" >&2
        status=1
    fi
    if ! offline "$PY" "$ROOT/tests/k8s/policy_check.py" "$r" "$s"; then
        printf 'FAIL: %s: the policy check failed (above)\n' "$o" >&2
        status=1
    fi
done

[ $status -eq 0 ] || fail "render test failed"
say "render test: ${#OVERLAYS[@]} overlays rendered, valid at ${K8S_VERSIONS[*]}, policy check ok"
