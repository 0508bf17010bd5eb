"""Localization metrics: points from output maps, matched one-to-one to the true dots.

peaks      maps -> local maxima (``find_peaks``), upsampling (``upsample``), the two rules
threshold  the threshold rule's threshold, chosen on validation (``choose_threshold``)
matching   Hungarian matching within a radius (``match_points``, ``match_radii``)
metrics    tp/fp/fn and precision, recall, F1 with NaN where undefined (``Counts``, ``total``)
radii      matching radii per dataset from the cell spacing (``radii_for``)
geometry   patch pixels -> original-image pixels (``to_original``, ``image_peaks``)
"""

from .geometry import image_peaks, image_points, inside_image, to_original, true_points
from .matching import Match, match_points, match_radii
from .metrics import Counts, total
from .peaks import Peaks, as_map, count_rule, find_peaks, rounded_count, threshold_rule, upsample
from .radii import Radii, median_spacing, radii_for
from .threshold import ThresholdChoice, choose_threshold, prefix_true_positives

__all__ = [
    "Counts", "Match", "Peaks", "Radii", "ThresholdChoice", "as_map", "choose_threshold", "count_rule",
    "find_peaks", "image_peaks", "image_points", "inside_image", "match_points", "match_radii",
    "median_spacing", "prefix_true_positives", "radii_for", "rounded_count", "threshold_rule", "to_original",
    "total", "true_points", "upsample",
]
