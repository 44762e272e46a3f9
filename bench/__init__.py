"""Benchmarks: the graded suite harness behind `mlestar bench` (suite, systems, runner) and the scripts that
measure MLE-STAR Graph itself; their results are committed under bench/results/."""
