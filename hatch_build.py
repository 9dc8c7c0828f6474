"""Ship ``agentdistill_gym.pth`` at site-packages root, in wheels and editable installs.

The .pth imports :mod:`agentdistill._gym_hook`, which registers our gymnasium ids when
gymnasium is imported (gymnasium 1.x no longer loads entry-point plugins).
"""

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class GymHookBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        key = "force_include_editable" if version == "editable" else "force_include"
        build_data.setdefault(key, {})["agentdistill_gym.pth"] = "agentdistill_gym.pth"
