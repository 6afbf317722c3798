"""Registry entries for Unity builds downloaded from a URL (``mlagents_envs.registry.remote_registry_entry``)."""

from __future__ import annotations

import sys
import urllib.error
import zipfile
from typing import Any

from mlagents_fast.envs.base_env import BaseEnv
from mlagents_fast.envs.exception import UnityEnvironmentException
from mlagents_fast.envs.registry.base_registry_entry import BaseRegistryEntry
from mlagents_fast.envs.registry.binary_utils import get_local_binary_path

__all__ = ["RemoteRegistryEntry"]


class RemoteRegistryEntry(BaseRegistryEntry):
    """A Unity build fetched once from a URL per platform, then launched like ``--env``."""

    def __init__(
        self,
        identifier: str,
        expected_reward: float | None,
        description: str | None,
        linux_url: str | None,
        darwin_url: str | None,
        win_url: str | None,
        additional_args: list[str] | None = None,
        tmp_dir: str | None = None,
    ) -> None:
        """
        :param linux_url: ``.zip`` of the Linux build (one folder, the executable at its
            root); likewise ``darwin_url`` (macOS) and ``win_url`` (Windows).
        :param additional_args: command-line arguments always given to the build.
        :param tmp_dir: where builds are kept (default: the system's temporary folder).
        """
        super().__init__(identifier, expected_reward, description)
        self._urls = {"linux": linux_url, "darwin": darwin_url, "win32": win_url}
        self._add_args = list(additional_args or [])
        self._tmp_dir_override = tmp_dir

    def _url(self) -> str:
        platform = "linux" if sys.platform.startswith("linux") else sys.platform
        url = self._urls.get(platform)
        if url is None:
            raise FileNotFoundError(
                f"The entry {self.identifier} does not contain a valid url for this platform"
            )
        return url

    def make(self, **kwargs: Any) -> BaseEnv:
        """A UnityEnvironment running the build (downloaded on first use); keywords go to
        UnityEnvironment (``file_name`` is the build's)."""
        url = self._url()
        try:
            path = get_local_binary_path(self.identifier, url, tmp_dir=self._tmp_dir_override)
        except (urllib.error.URLError, OSError, zipfile.BadZipFile) as err:
            if isinstance(err, FileNotFoundError):
                raise
            raise UnityEnvironmentException(
                f"could not download the Unity build of '{self.identifier}' from {url}: "
                f"{getattr(err, 'reason', err)}. Without network access only the built-in "
                "entries of the registry (no download) can be made."
            ) from err
        from mlagents_fast.envs.environment import UnityEnvironment

        kwargs.pop("file_name", None)
        kwargs["additional_args"] = list(kwargs.get("additional_args") or []) + self._add_args
        return UnityEnvironment(file_name=path, **kwargs)
