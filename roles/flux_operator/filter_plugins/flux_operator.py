"""Filter `flux_operator_pin`: the manifest's documents with the controller's image replaced by a pinned one.

The upstream manifests name the controller image by a tag (`:arm`, `:latest`) that moves as the project
publishes; the role applies the image its variables pin by digest instead, so the controller that runs is
the one that was reviewed, as the manifest itself is pinned by its sha256.
"""

from __future__ import annotations

import copy
import re

from ansible.errors import AnsibleFilterError

DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")


def flux_operator_pin(docs, namespace, deployment, container, image):
    """`docs` (a manifest's documents) with `container` of Deployment `namespace/deployment` running `image`."""
    if not DIGEST.match(str(image)):
        raise AnsibleFilterError(f"flux_operator_pin: {image!r} is not an image pinned by digest "
                                 "(<repository>@sha256:<64 hex digits>)")
    pinned, found = [], False
    for doc in docs:
        doc = copy.deepcopy(doc)
        meta = (doc or {}).get("metadata") or {}
        if (doc or {}).get("kind") == "Deployment" and (meta.get("namespace"), meta.get("name")) == (namespace,
                                                                                                      deployment):
            for spec in doc["spec"]["template"]["spec"]["containers"]:
                if spec.get("name") == container:
                    spec["image"], spec["imagePullPolicy"], found = image, "IfNotPresent", True
        pinned.append(doc)
    if not found:
        raise AnsibleFilterError(f"flux_operator_pin: the manifest has no container {container} in Deployment "
                                 f"{namespace}/{deployment}")
    return pinned


class FilterModule:
    def filters(self):
        return {"flux_operator_pin": flux_operator_pin}
