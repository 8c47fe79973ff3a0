"""pod-tasks benchmarks: ``python bench/run.py [--quick]`` (see README.md, Performance).

Every figure is a ratio against a baseline measured in the same run, on the same data,
against moto's S3 server on 127.0.0.1 (and the directory store).
"""
