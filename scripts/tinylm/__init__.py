"""tinylm: the offline pipeline that makes the served model (PanGu-π Pro recipe at small scale)."""
from .cpu import tune_malloc

tune_malloc()
