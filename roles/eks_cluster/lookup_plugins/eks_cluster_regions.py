"""Lookup `eks_cluster_regions`: the AWS regions where EKS has an endpoint, from botocore's own data.

Offline: botocore ships the partitions' region and endpoint data (botocore/data/endpoints.json), so a
mistyped region is caught before any call is made (one that would otherwise fail on name resolution, or
in a teardown find no cluster and remove its state while the nodes keep billing). A region newer than
the installed botocore is missing from it: upgrading botocore adds it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: eks_cluster_regions
short_description: AWS regions where EKS has an endpoint, from botocore's endpoint data (no AWS call)
description:
  - Every region of every partition (aws, aws-cn, aws-us-gov...) where botocore knows an EKS endpoint.
options: {}
"""

RETURN = r"""
_raw:
  description: Region names, sorted.
  type: list
  elements: str
"""

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        try:
            import botocore.session
        except ImportError as err:
            raise AnsibleLookupError(f"eks_cluster_regions needs botocore: {err}") from err
        session = botocore.session.get_session()
        return sorted({region for partition in session.get_available_partitions()
                       for region in session.get_available_regions("eks", partition_name=partition)})
