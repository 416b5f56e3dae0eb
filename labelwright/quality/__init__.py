"""labelwright.quality: truth inference and agreement, as a library that needs nothing from the server."""

from labelwright.quality.dawid_skene import DawidSkene, OneCoinDawidSkene
from labelwright.quality.errors import QualityInputError
from labelwright.quality.glad import GLAD
from labelwright.quality.mace import MACE
from labelwright.quality.majority_vote import MajorityVote, Wawa

__all__ = ["GLAD", "MACE", "DawidSkene", "MajorityVote", "OneCoinDawidSkene", "QualityInputError", "Wawa"]
