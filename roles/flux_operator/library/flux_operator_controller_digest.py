#!/usr/bin/python
"""Resolve the Flux Operator controller image's tag to a digest, for one architecture, read-only."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: flux_operator_controller_digest
short_description: The digest of the controller image's tag for one architecture, checked to be that arch
description:
  - Reads the manifest the registry serves for O(image) (a tag) with compat-lab's OCI client
    (planner.edges.registry, oras-py). An image index is narrowed to its C(linux/<arch>) entry; the
    chosen image's config must then say it runs on O(arch). Returns C(<repository>@sha256:<digest>) of
    that image, the digest Kubernetes pulls by.
  - Refuses, in one line naming what to set, a registry it cannot reach, a tag it does not have, an index
    without a C(linux/<arch>) image, an image of another architecture and a manifest without a digest.
  - Changes nothing and makes no call to AWS; runs where Ansible runs (the controller).
options:
  image:
    description: The image the operator's manifest names, by tag (C(ghcr.io/flux-framework/flux-operator:arm)).
    type: str
    required: true
  arch:
    description: The nodes' architecture (Go/OCI names).
    type: str
    choices: [arm64, amd64]
    required: true
  mirrors:
    description:
      - C(FROM=TO[,FROM=TO]) registry hosts to read from another host (a mirror, a local registry), as the
        planner's C(COMPAT_LAB_REGISTRY_MIRRORS). The digest returned names the image's own registry.
    type: str
    default: ""
author:
  - compat-lab
"""

EXAMPLES = r"""
- name: Resolve the arm64 controller image
  flux_operator_controller_digest:
    image: ghcr.io/flux-framework/flux-operator:arm
    arch: arm64
"""

RETURN = r"""
image:
  description: The image pinned by digest, in the image's own registry.
  returned: success
  type: str
  sample: ghcr.io/flux-framework/flux-operator@sha256:0123...
digest:
  description: The digest of the image manifest for O(arch).
  returned: success
  type: str
index_digest:
  description: The digest of the image index the tag named, when it named one.
  returned: success
  type: str
"""

# Ansible modules put their documentation first, so the imports follow it.
import json  # noqa: E402
import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


class Refused(Exception):
    pass


def resolve(image: str, arch: str, mirrors_text: str) -> dict:
    from planner.core import compspec
    from planner.edges import registry

    ref = compspec.image_ref(image)
    if ref is None or ref.tag is None:
        raise Refused(f"{image!r} is not an image named by registry, repository and tag")
    try:
        mirrors = compspec.parse_mirrors(mirrors_text)
    except ValueError as err:
        raise Refused(f"COMPAT_LAB_REGISTRY_MIRRORS: {err}") from None
    source = compspec.mirrored(ref, mirrors)
    client = registry.Client(source.registry, attempts=2)
    try:
        found = client.manifest(source)
        if found is None:
            raise Refused(f"registry {source.registry} has no tag {ref.tag} of {ref.repository}")
        index_digest, manifest, _ = found
        chosen = index_digest
        if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
            offered = [(m.get("platform") or {}) for m in manifest.get("manifests", [])]
            matches = [m for m in manifest.get("manifests", [])
                       if (m.get("platform") or {}).get("os") == "linux"
                       and (m.get("platform") or {}).get("architecture") == arch]
            if not matches:
                names = ", ".join(f"{p.get('os')}/{p.get('architecture')}" for p in offered) or "nothing"
                raise Refused(f"{image} (index {index_digest}) has no linux/{arch} image; it has {names}")
            chosen = matches[0].get("digest", "")
            if not DIGEST.match(chosen):
                raise Refused(f"{image}: the index's linux/{arch} entry has no sha256 digest ({chosen!r})")
            found = client.manifest(source, chosen)
            if found is None:
                raise Refused(f"{image}: the index names {chosen} for linux/{arch}, which the registry does not have")
            manifest = found[1]
        else:
            index_digest = None
        config = (manifest.get("config") or {}).get("digest", "")
        if not DIGEST.match(config):
            raise Refused(f"{image}: image {chosen} has no config to say its architecture")
        runs_on = json.loads(client.blob(source, config)).get("architecture")
    except registry.RegistryError as err:
        raise Refused(str(err)) from None
    if runs_on != arch:
        raise Refused(f"{image} resolves to {chosen}, an image for {runs_on}, not {arch}")
    return {"image": f"{ref.registry}/{ref.repository}@{chosen}", "digest": chosen, "index_digest": index_digest}


def main() -> None:
    module = AnsibleModule(
        argument_spec={"image": {"type": "str", "required": True},
                       "arch": {"type": "str", "required": True, "choices": ["arm64", "amd64"]},
                       "mirrors": {"type": "str", "default": ""}},
        supports_check_mode=True,
    )
    try:
        result = resolve(module.params["image"], module.params["arch"], module.params["mirrors"])
    except Refused as err:
        module.fail_json(msg=str(err))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
