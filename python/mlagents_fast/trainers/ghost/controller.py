"""The GhostController (the counterpart of ``mlagents.trainers.ghost.controller``): which team
learns, when it changes, and the ELO ratings of adversarial self-play."""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlagents_fast.trainers.ghost.trainer import GhostTrainer

__all__ = ["GhostController"]

logger = logging.getLogger(__name__)


class GhostController:
    """One per training run, shared by every GhostTrainer.

    Teams (``Behavior?team=N``) line up in a queue; at any time one of them learns and the
    others play fixed snapshots. A GhostTrainer asks for :meth:`change_training_team` every
    ``team_change`` steps: the learning team goes to the back of the queue and the next one
    learns; the trainer controller then resets the environments (:meth:`should_reset`).
    """

    def __init__(self, maxlen: int = 10):
        """
        :param maxlen: the most teams the queue holds.
        """
        self._queue: deque[int] = deque(maxlen=maxlen)
        self._learning_team: int = -1
        # Team id -> the GhostTrainer that manages it (for the opponents' ELO).
        self._ghost_trainers: dict[int, GhostTrainer] = {}
        self._changed_training_team = False

    @property
    def get_learning_team(self) -> int:
        """The id of the team that learns now (-1 before any team subscribed)."""
        return self._learning_team

    def should_reset(self) -> bool:
        """True once after each change of the learning team (the environments are reset)."""
        changed = self._changed_training_team
        self._changed_training_team = False
        return changed

    def subscribe_team_id(self, team_id: int, trainer: GhostTrainer) -> None:
        """Register ``team_id``, managed by ``trainer``; the first team registered learns."""
        if team_id in self._ghost_trainers:
            return
        self._ghost_trainers[team_id] = trainer
        if self._learning_team < 0:
            self._learning_team = team_id
        else:
            self._queue.append(team_id)

    def change_training_team(self, step: int) -> None:
        """The next team in line learns; the current one goes to the back of the line."""
        self._queue.append(self._learning_team)
        self._learning_team = self._queue.popleft()
        logger.debug("Learning team %d swapped on step %d", self._learning_team, step)
        self._changed_training_team = True

    def compute_elo_rating_changes(self, rating: float, result: float) -> float:
        """The ELO change of the learning team after a game, as ML-Agents 1.1.0 computes it.

        ``result`` is 1 (win), 0.5 (draw) or 0 (loss) for the learning team, whose rating is
        ``rating``; the opponent is the snapshot another team's trainer deploys now. The
        change is ``result - expected`` (ML-Agents applies no K factor), with ``expected =
        1 / (1 + 10 ** ((opponent - rating) / 400))``; the opponent's rating moves by the
        opposite amount. Two-team games: with more teams, the last one's opponent counts.
        """
        opponent_rating = 0.0
        for team_id, trainer in self._ghost_trainers.items():
            if team_id != self._learning_team:
                opponent_rating = trainer.get_opponent_elo()
        r1 = pow(10, rating / 400)
        r2 = pow(10, opponent_rating / 400)
        change = result - r1 / (r1 + r2)
        for team_id, trainer in self._ghost_trainers.items():
            if team_id != self._learning_team:
                trainer.change_opponent_elo(change)
        return change
