#!/usr/bin/env bash
# The PKI and kubeconfigs of a local Kubernetes control plane, made with openssl.
#
#   tools/k8s/pki.sh DIR [--address IP] [--server URL] [--node-name NAME]
#
#   --address IP      the node/apiserver address, added to the apiserver's certificate
#                     (env NODE_IP; default 127.0.0.1, which is always in the certificate)
#   --server URL      the apiserver URL written into every kubeconfig
#                     (default https://<address>:6443)
#   --node-name NAME  the kubelet's node name (env NODE_NAME; default: hostname, lowercased)
#
# Writes into DIR (idempotent: existing keys and certificates are kept; the apiserver's and the
# kubelet's are remade when their names or addresses change; kubeconfigs are rewritten):
#   ca.crt ca.key                          cluster CA (also signs CSRs in controller-manager)
#   apiserver.crt/.key                     serving: 127.0.0.1, 10.96.0.1, <address>, localhost,
#                                          kubernetes, kubernetes.default{,.svc,.svc.cluster.local}
#   apiserver-kubelet-client.crt/.key      apiserver -> kubelet (O=system:masters)
#   front-proxy-ca.crt/.key, front-proxy-client.crt/.key   aggregation layer
#   admin.crt/.key                         CN=admin, O=system:masters
#   controller-manager.crt/.key            CN=system:kube-controller-manager
#   scheduler.crt/.key                     CN=system:kube-scheduler
#   kube-proxy.crt/.key                    CN=system:kube-proxy
#   kubelet.crt/.key                       CN=system:node:<name>, O=system:nodes (client)
#   kubelet-serving.crt/.key               the kubelet's serving certificate (<name>, <address>)
#   sa.key sa.pub                          service-account token signing pair
#   admin.kubeconfig controller-manager.kubeconfig scheduler.kubeconfig kube-proxy.kubeconfig
#   kubelet.kubeconfig                     credentials embedded, so each file stands alone
# Keys are ECDSA P-256 (RSA 2048 for the service-account pair); certificates last 10 years.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
    exit 2
}
die() {
    printf 'pki.sh: %s\n' "$*" >&2
    exit 1
}

[[ $# -ge 1 && $1 != -* ]] || usage
dir=$1
shift
address=${NODE_IP:-127.0.0.1}
server=
node_name=${NODE_NAME:-$(hostname | tr '[:upper:]' '[:lower:]')}
while [[ $# -gt 0 ]]; do
    case $1 in
    --address) address=${2:?--address needs an IP} && shift 2 ;;
    --server) server=${2:?--server needs a URL} && shift 2 ;;
    --node-name) node_name=${2:?--node-name needs a name} && shift 2 ;;
    -h | --help) usage ;;
    *) die "unknown argument '$1'" ;;
    esac
done
[[ $address =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--address '$address' is not an IPv4 address"
server=${server:-https://$address:6443}
days=3650

mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
umask 077

key() { # NAME: an ECDSA P-256 private key, unless it exists
    [[ -s $1.key ]] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
}

ca() { # NAME CN
    [[ -s $1.crt && -s $1.key ]] && return 0
    key "$1"
    openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days "$days" -out "$1.crt" \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature
}

# NAME CA SUBJECT USAGE [SANS]: a leaf certificate signed by CA. The SANs and subject are
# recorded next to it (NAME.spec), and a change remakes the certificate with the same key.
cert() {
    local name=$1 ca=$2 subj=$3 usage=$4 sans=${5:-} spec ext
    spec="$subj|$usage|$sans|$ca"
    if [[ -s $name.crt && -s $name.key && -f $name.spec && $(<"$name.spec") == "$spec" ]]; then
        return 0
    fi
    key "$name"
    ext=$(mktemp)
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$usage"
        [[ -z $sans ]] || echo "subjectAltName=$sans"
    } >"$ext"
    openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
    openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial \
        -days "$days" -extfile "$ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$ext"
    printf '%s' "$spec" >"$name.spec"
}

b64() { base64 -w0 <"$1"; }

kubeconfig() { # NAME USER
    cat >"$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: polyglot
  cluster:
    server: $server
    certificate-authority-data: $(b64 ca.crt)
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$1.crt")
    client-key-data: $(b64 "$1.key")
contexts:
- name: $2@polyglot
  context:
    cluster: polyglot
    user: $2
current-context: $2@polyglot
EOF
}

ca ca polyglot-kubernetes-ca
ca front-proxy-ca polyglot-front-proxy-ca

api_sans="IP:127.0.0.1,IP:10.96.0.1"
[[ $address == 127.0.0.1 ]] || api_sans+=",IP:$address"
api_sans+=",DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
api_sans+=",DNS:kubernetes.default.svc.cluster.local"
cert apiserver ca /CN=kube-apiserver serverAuth "$api_sans"
cert apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert front-proxy-client front-proxy-ca /CN=front-proxy-client clientAuth
cert admin ca "/O=system:masters/CN=admin" clientAuth
cert controller-manager ca /CN=system:kube-controller-manager clientAuth
cert scheduler ca /CN=system:kube-scheduler clientAuth
cert kube-proxy ca /CN=system:kube-proxy clientAuth
cert kubelet ca "/O=system:nodes/CN=system:node:$node_name" clientAuth
cert kubelet-serving ca "/O=system:nodes/CN=system:node:$node_name" serverAuth \
    "DNS:$node_name,IP:$address"

if [[ ! -s sa.key || ! -s sa.pub ]]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
    openssl pkey -in sa.key -pubout -out sa.pub
fi

for n in admin controller-manager scheduler kube-proxy kubelet; do
    kubeconfig "$n" "$n"
done
