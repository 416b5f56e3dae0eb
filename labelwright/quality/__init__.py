"""labelwright.quality: truth inference, agreement and calibration, as a library with no server imports.

Categorical answers (a long table with columns ``task``, ``worker``, ``label``, crowd-kit's convention):
:class:`MajorityVote`, :class:`Wawa`, :class:`DawidSkene`, :class:`OneCoinDawidSkene`, :class:`GLAD`,
:class:`MACE`. Pairwise preferences (``worker``, ``left``, ``right``, ``label``): :class:`BradleyTerry`,
:class:`NoisyBradleyTerry`. Numbers: :class:`NumericMean`, :class:`NumericMedian`, :class:`GaussianWorkers`;
ratings on a scale: :class:`OrdinalWorkers`.
:func:`aggregate` runs the default method; :class:`AutoSelect` picks one per question from held-out answers;
the agreement measures are in :mod:`.agreement`.
See docs/quality.md for what each method assumes and when to use it.
"""

from labelwright.quality.aggregate import aggregate, aggregate_proba
from labelwright.quality.agreement import cohen_kappa, fleiss_kappa, krippendorff_alpha, percent_agreement
from labelwright.quality.calibration import expected_calibration_error, reliability_table
from labelwright.quality.dawid_skene import DawidSkene, OneCoinDawidSkene
from labelwright.quality.errors import QualityInputError
from labelwright.quality.glad import GLAD
from labelwright.quality.label_model import LabelModel, lf_analysis
from labelwright.quality.mace import MACE
from labelwright.quality.majority_vote import MajorityVote, Wawa
from labelwright.quality.numeric import GaussianWorkers, NumericMean, NumericMedian
from labelwright.quality.ordinal import OrdinalWorkers
from labelwright.quality.pairwise import BradleyTerry, NoisyBradleyTerry, bootstrap_scores
from labelwright.quality.selection import AutoSelect, select_proba

__all__ = [
    "GLAD", "MACE", "AutoSelect", "BradleyTerry", "DawidSkene", "GaussianWorkers", "LabelModel", "MajorityVote",
    "NoisyBradleyTerry",
    "NumericMean", "NumericMedian", "OneCoinDawidSkene", "OrdinalWorkers", "QualityInputError", "Wawa", "aggregate",
    "aggregate_proba",
    "bootstrap_scores", "cohen_kappa", "expected_calibration_error", "fleiss_kappa", "krippendorff_alpha",
    "lf_analysis", "percent_agreement", "reliability_table", "select_proba",
]
