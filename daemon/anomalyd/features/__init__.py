"""Online features per series: bounded memory, each point judged only by the past."""

from anomalyd.features.ewstats import RobustEW
from anomalyd.features.online import Features, OnlineFeatures

__all__ = ["Features", "OnlineFeatures", "RobustEW"]
