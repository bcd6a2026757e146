"""Filter `minicluster_bytes`: a Kubernetes memory quantity ("110G", "512Mi", "1e9") in bytes; empty is no limit."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

# k8s.io/apimachinery/pkg/api/resource: decimal (k, M, G, T, P, E) and binary (Ki, Mi, Gi, Ti, Pi, Ei) suffixes
SUFFIXES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


def minicluster_bytes(quantity):
    text = str(quantity).strip()
    if not text:
        return float("inf")
    match = QUANTITY.match(text)
    if not match:
        raise AnsibleFilterError(f"minicluster_bytes: {text!r} is not a Kubernetes memory quantity (e.g. 110G, 512Mi)")
    return float(match.group(1)) * SUFFIXES[match.group(2) or ""]


class FilterModule:
    def filters(self):
        return {"minicluster_bytes": minicluster_bytes}
