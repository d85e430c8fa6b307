"""tinylm: the offline pipeline that makes the served model (PanGu-π Pro recipe at small scale).

Entry points call cpu.tune_malloc() themselves; importing the package changes nothing.
"""
