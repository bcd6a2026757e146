"""compat-lab's state directory, as the planner computes it: the planner is the one owner of the rule."""

from __future__ import annotations

DOCUMENTATION = r"""
name: compat_lab_state_dir
short_description: compat-lab's state directory, from the planner
description:
  - Returns planner.edges.cloud.default_state_dir() (COMPAT_LAB_STATE_DIR, else $XDG_STATE_HOME/compat-lab,
    else ~/.local/state/compat-lab), so the playbooks and the planner never disagree on it.
  - Needs compat-lab importable by the Python running Ansible (pip install -e . in the project's environment).
options: {}
"""

RETURN = r"""
_raw:
  description: One path.
  type: list
  elements: path
"""

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        try:
            from planner.edges.cloud import default_state_dir
        except ImportError as err:
            raise AnsibleError(f"compat-lab is not importable by the Python running Ansible ({err}); "
                               "install it there with `pip install -e .` from the repository") from None
        return [str(default_state_dir())]
